//! Swift's constraints, as `/info` publishes them: what a request may hold at most.

/// Object size: 5 GiB + 2 bytes (Swift's `MAX_FILE_SIZE`).
pub(crate) const MAX_FILE_SIZE: u64 = 5 * 1024 * 1024 * 1024 + 2;
pub(crate) const MAX_META_NAME_LENGTH: usize = 128;
pub(crate) const MAX_META_VALUE_LENGTH: usize = 256;
pub(crate) const MAX_META_COUNT: usize = 90;
pub(crate) const MAX_META_OVERALL_SIZE: usize = 4096;
/// Entries in one listing answer, and the largest `limit=`.
pub(crate) const LISTING_LIMIT: usize = 10_000;
/// Links a read follows from the object it names.
pub(crate) const SYMLOOP_MAX: usize = 2;
pub(crate) const MAX_MANIFEST_SEGMENTS: usize = 1000;
/// Bytes of a static large object's manifest.
pub(crate) const MAX_MANIFEST_SIZE: usize = 8 * 1024 * 1024;
/// Paths in one bulk delete.
pub(crate) const MAX_DELETES_PER_REQUEST: usize = 10_000;
