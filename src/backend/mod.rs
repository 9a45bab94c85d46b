//! Where accounts' objects live: `local` is the embedded object store, `swift` an
//! upstream cluster reached through the proxy.

pub mod local;
pub mod swift;
