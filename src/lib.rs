//! swiftgate: authentication, authorization and secure delivery for OpenStack
//! Swift object storage, in one binary.
//!
//! A request flows listener → [`endpoint::classify`] → authenticate ([`auth`]) →
//! authorize → handle ([`auth::v1`], [`admin`]); every failure is an [`error::Error`]
//! that knows its response.

#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod auth;
pub mod backend;
pub mod body;
pub mod cli;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod http_util;
pub mod policy;
pub mod proxy;
pub mod request;
pub mod server;
pub mod store;
pub mod swift;
pub mod tls;
pub mod web;

pub use config::Config;
pub use server::{Gateway, GatewayHandle};
