//! Swift's constraints, as `/info` publishes them: what a request may hold at most.

use http::HeaderMap;

use crate::error::Error;

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

/// Refuses user metadata (`X-Account-Meta-*`, `X-Container-Meta-*`, `X-Object-Meta-*`)
/// whose value is not UTF-8 text: what the proxy sends on is what the embedded store
/// takes (it refuses any value to store that is not text, with [`not_text`]). Swift
/// refuses it on accounts and containers; on objects it keeps the bytes, where the
/// embedded store keeps text and would give back other bytes than were sent.
pub(crate) fn check_metadata_text(headers: &HeaderMap) -> Result<(), Error> {
    let user_metadata = |n: &str| {
        ["x-account-meta-", "x-container-meta-", "x-object-meta-"]
            .iter()
            .any(|p| n.starts_with(p))
    };
    match headers
        .iter()
        .find(|(n, v)| user_metadata(n.as_str()) && std::str::from_utf8(v.as_bytes()).is_err())
    {
        Some((n, _)) => Err(not_text(n.as_str())),
        None => Ok(()),
    }
}

/// The refusal of a header value to store that is not UTF-8 text (Swift's words for
/// metadata).
pub(crate) fn not_text(name: &str) -> Error {
    if name.contains("-meta-") {
        Error::bad_request("Metadata must be valid UTF-8")
    } else {
        Error::bad_request(format!("{name} must be valid UTF-8"))
    }
}
