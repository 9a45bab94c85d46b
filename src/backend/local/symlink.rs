//! Symlinks: a zero-byte object with `X-Symlink-Target: <container>/<object>` (and
//! optionally `X-Symlink-Target-Account`) that GET, HEAD and copies follow, as Swift's
//! symlink middleware. With `X-Symlink-Target-Etag` the link is static: its target must
//! exist when the link is made and still have that ETag when it is followed.

use http::{HeaderMap, HeaderValue};

use super::db::{Meta, ObjectRow};
use super::object::encode;
use super::set;
use crate::error::{Error, Result};
use crate::http_util::header_str;
use crate::swift::limits::SYMLOOP_MAX;
use crate::swift::op::Operation;

const TARGET: &str = "x-object-sysmeta-symlink-target";
const TARGET_ACCOUNT: &str = "x-object-sysmeta-symlink-target-account";
const TARGET_ETAG: &str = "x-object-sysmeta-symlink-target-etag";
const TARGET_BYTES: &str = "x-object-sysmeta-symlink-target-bytes";

/// Where a link points.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub account: String,
    pub container: String,
    pub object: String,
    /// Set for static links.
    pub etag: Option<String>,
}

impl Target {
    /// The target as Swift names it in `Content-Location` and `Location`.
    pub(super) fn location(&self) -> String {
        encode(&format!(
            "/v1/{}/{}/{}",
            self.account, self.container, self.object
        ))
    }
}

/// The target of a symlink row.
pub(super) fn target(row: &ObjectRow) -> Option<Target> {
    let t = row.meta.get(TARGET)?;
    let (container, object) = t.split_once('/')?;
    Some(Target {
        account: row.meta.get(TARGET_ACCOUNT).cloned().unwrap_or_default(),
        container: container.to_owned(),
        object: object.to_owned(),
        etag: row.meta.get(TARGET_ETAG).cloned(),
    })
}

/// The target a PUT asks for; `None` for an ordinary object.
pub(super) fn requested(op: &Operation, headers: &HeaderMap) -> Result<Option<Target>> {
    let Some(t) = op.named("X-Symlink-Target") else {
        return Ok(None);
    };
    let etag = header_str(headers, "x-symlink-target-etag")?
        .map(|e| super::headers::unquote(e).to_owned());
    Ok(Some(Target {
        account: t.account.clone(),
        container: t.reference.container.clone(),
        object: t.reference.object.clone(),
        etag,
    }))
}

/// Records a link in an object's metadata; for a static link, the target's size too.
pub(super) fn store(meta: &mut Meta, t: &Target, target_bytes: Option<u64>) {
    meta.insert(TARGET.into(), format!("{}/{}", t.container, t.object));
    meta.insert(TARGET_ACCOUNT.into(), t.account.clone());
    if let Some(e) = &t.etag {
        meta.insert(TARGET_ETAG.into(), e.clone());
    }
    if let Some(b) = target_bytes {
        meta.insert(TARGET_BYTES.into(), b.to_string());
    }
}

/// The headers that describe the link itself (`?symlink=get`, PUT answers).
pub(super) fn link_headers(row: &ObjectRow, h: &mut HeaderMap) {
    let Some(t) = target(row) else { return };
    set(
        h,
        "x-symlink-target",
        encode(&format!("{}/{}", t.container, t.object)),
    );
    set(h, "x-symlink-target-account", encode(&t.account));
    if let Some(e) = &t.etag {
        set(h, "x-symlink-target-etag", e);
    }
    if let Some(b) = row.meta.get(TARGET_BYTES) {
        set(h, "x-symlink-target-bytes", b);
    }
}

/// Extra keys of a symlink in a JSON container listing.
pub(super) fn listing_keys(row: &ObjectRow, v: &mut serde_json::Value) {
    let Some(t) = target(row) else { return };
    v["symlink_path"] = serde_json::Value::String(t.location());
    if let Some(e) = &t.etag {
        v["symlink_etag"] = serde_json::Value::String(e.clone());
    }
    if let Some(b) = target_bytes(row) {
        v["symlink_bytes"] = serde_json::Value::from(b);
    }
}

/// The size of a static link's target when the link was made.
pub(super) fn target_bytes(row: &ObjectRow) -> Option<u64> {
    row.meta.get(TARGET_BYTES).and_then(|b| b.parse().ok())
}

/// The ETag a static link to this object must name: for a static link, the ETag its
/// own target must have; for a link to an object's version, the version's; else the
/// object's.
pub(super) fn effective_etag(row: &ObjectRow) -> &str {
    row.meta
        .get(TARGET_ETAG)
        .or_else(|| row.meta.get(super::versioning::LINK_ETAG))
        .map_or(&row.etag, String::as_str)
}

pub(super) fn etag_mismatch(found: &str, wanted: &str) -> Error {
    Error::Conflict(format!(
        "Object Etag '{found}' does not match X-Symlink-Target-Etag header '{wanted}'"
    ))
}

pub(super) fn too_deep() -> Error {
    Error::Conflict(format!(
        "Too many levels of symbolic links, maximum allowed is {SYMLOOP_MAX}"
    ))
}

pub(super) fn location_value(t: &Target) -> Option<HeaderValue> {
    HeaderValue::from_str(&t.location()).ok()
}
