//! Where accounts' objects live. `local` is the embedded object store.

pub mod local;
