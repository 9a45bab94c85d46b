//! Swift's storage vocabulary, shared by the embedded store, the proxy and the
//! policies: what a request addresses, what a valid name is, how a request names objects
//! besides its path, what its query and ACLs say, and Swift's limits.

pub mod acl;
pub mod limits;
pub mod listing;
pub mod names;
pub mod privileged;
pub mod query;
pub mod target;
pub mod tempurl;
pub mod versions;
