//! Authentication: who a request comes from. v1 logins, Keystone's identity API, tokens,
//! user keys,
//! failed-login throttling, and the in-memory identity service they share.

pub mod identity;
pub mod keys;
pub mod keystone;
pub mod ring;
pub mod s3;
pub mod throttle;
pub mod token;
pub mod v1;
