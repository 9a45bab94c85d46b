//! swiftgate: authentication, authorization and secure delivery for OpenStack
//! Swift object storage, in one binary.
//!
//! A request flows listener → [`endpoint::classify`] → authenticate ([`auth`]) →
//! authorize → handle ([`auth::v1`], [`admin`]); every failure is an [`error::Error`]
//! that knows its response.

pub mod admin;
mod app;
pub mod auth;
pub mod backend;
mod body;
pub mod cli;
pub mod config;
mod endpoint;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod http_util;
pub mod metrics;
mod ops;
mod policy;
mod proxy;
mod request;
mod server;
pub mod store;
mod swift;
mod tls;
mod web;

pub use config::Config;
pub use server::{Gateway, GatewayHandle, Reloaded, Reloader};
