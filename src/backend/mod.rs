//! Where accounts' objects live: `local` is the embedded object store; `swift` an
//! upstream cluster reached through the proxy with the gateway's service credentials;
//! `keystone`, `v1` and `oauth2` upstreams reached with each account's own credentials.

pub mod client;
pub mod credentials;
pub mod local;
pub mod oauth;
pub mod swift;
