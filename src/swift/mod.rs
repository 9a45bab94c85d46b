//! Swift's storage vocabulary, shared by the embedded store, the proxy and the
//! policies: what a valid name is, and how a request names objects besides its path.

pub mod names;
pub mod query;
pub mod tempurl;
pub mod versions;
