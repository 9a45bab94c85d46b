//! Swift's storage vocabulary, shared by the embedded store, the proxy and the
//! policies: what a request addresses, what a valid name is, how a request names objects
//! besides its path (headers, manifests), what its query and ACLs say, what a request does (`op`, classified
//! once), and Swift's limits.

pub(crate) mod acl;
pub(crate) mod expiry;
pub(crate) mod limits;
pub(crate) mod listing;
pub(crate) mod manifest;
pub(crate) mod names;
pub(crate) mod op;
pub(crate) mod privileged;
pub(crate) mod query;
pub(crate) mod target;
pub(crate) mod tempurl;
pub(crate) mod versions;
