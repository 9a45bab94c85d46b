//! Objects: an object request to its handler, DELETE, and what reading (`read`),
//! writing (`write`) and copying (`copy`) share: who may, the metadata a request sets,
//! names as Swift answers them, listing entries.

use http::{HeaderMap, Method, Request, Response};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

use super::db::{ContainerRow, Meta, ObjectRow};
use super::headers::{check_metadata, iso, value_text};
use super::listing::Named;
use super::{Caller, LocalStore, acl, history, slo, symlink, versioning};
use crate::body::{Body, RequestBody};
use crate::error::{Error, Result};
use crate::http_util::xml_escape;
use crate::http_util::{header_str, header_true};
use crate::swift::names;
use crate::swift::op::{Manifest, Operation};

mod copy;
mod read;
mod write;

use copy::copy;
pub(super) use read::{Segment, current, follow_links, read};
pub(super) use write::{commit, new_row};
use write::{post, put};

/// Headers stored with an object besides `x-object-meta-*` (Swift's `allowed_headers`).
const STORED_HEADERS: &[&str] = &[
    "content-disposition",
    "content-encoding",
    "content-language",
    "cache-control",
    "expires",
    "x-robots-tag",
    "x-object-manifest",
];

impl Named for ObjectRow {
    fn name(&self) -> &str {
        &self.name
    }
}

pub(super) fn listing_json(o: &ObjectRow) -> serde_json::Value {
    let mut v = json!({
        "name": o.name,
        "hash": o.etag,
        "bytes": o.size,
        "content_type": o.content_type,
        "last_modified": iso(o.timestamp),
    });
    if let Some(e) = o.meta.get(slo::SLO_ETAG) {
        v["slo_etag"] = json!(format!("\"{e}\""));
    }
    symlink::listing_keys(o, &mut v);
    v
}

pub(super) fn listing_xml(o: &ObjectRow) -> String {
    format!(
        "<object><name>{}</name><hash>{}</hash><bytes>{}</bytes><content_type>{}</content_type><last_modified>{}</last_modified></object>",
        xml_escape(&o.name),
        o.etag,
        o.size,
        xml_escape(&o.content_type),
        iso(o.timestamp)
    )
}

pub(super) fn not_found(container: &str, object: &str) -> Error {
    Error::NotFound(format!("no object {object:?} in container {container:?}"))
}

/// Reads need the container's read ACL, writes its write ACL, unless the caller owns the account.
pub(super) fn authorize(
    caller: &Caller,
    account: &str,
    container: Option<&ContainerRow>,
    write: bool,
) -> Result<()> {
    let reach = acl::Reach::Object(container.map(ContainerRow::acls));
    if caller.may(account, &reach, write) {
        Ok(())
    } else {
        Err(caller.denied(account))
    }
}

/// Marks an object an owner of its account wrote last: a temporary URL's scope passes
/// through its links and manifests ([`acl::scope_passes`]). Every write sets or clears it,
/// so that no copy or metadata change carries it from another writer.
const MADE_BY_OWNER: &str = "x-object-sysmeta-swiftgate-made-by-owner";

pub(super) fn mark_maker(meta: &mut Meta, caller: &Caller, account: &str) {
    mark_made(meta, caller.owns(account));
}

/// Sets or clears the mark of [`MADE_BY_OWNER`].
pub(super) fn mark_made(meta: &mut Meta, by_owner: bool) {
    if by_owner {
        meta.insert(MADE_BY_OWNER.into(), "1".into());
    } else {
        meta.remove(MADE_BY_OWNER);
    }
}

pub(super) fn made_by_owner(row: &ObjectRow) -> bool {
    row.meta.contains_key(MADE_BY_OWNER)
}

/// A link or a dynamic manifest is followed with the rights of whoever reads it, a
/// temporary URL's among them, which reach the whole account: one that names a place in
/// its own account may be made only by a caller who may read that place.
async fn authorize_references(store: &LocalStore, op: &Operation, caller: &Caller) -> Result<()> {
    for via in ["X-Symlink-Target", "X-Object-Manifest"] {
        if let Some(named) = op.named(via)
            && named.account == op.target.account
        {
            let c = store
                .container(&named.account, &named.reference.container)
                .await?;
            authorize(caller, &named.account, c.as_ref(), false)?;
        }
    }
    Ok(())
}

/// The content type a PUT declares, or one guessed from the name.
fn content_type(headers: &HeaderMap, name: &str) -> Result<String> {
    let declared = header_str(headers, "content-type")?
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let detect = header_true(headers, "x-detect-content-type")?;
    match declared {
        Some(ct) if !detect => Ok(ct.to_owned()),
        _ => Ok(guess_type(name).to_owned()),
    }
}

fn guess_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "text" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "js" => "text/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "wav" => "audio/x-wav",
        "ogg" => "audio/ogg",
        "avi" => "video/x-msvideo",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "webp" => "image/webp",
        "ico" => "image/vnd.microsoft.icon",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "doc" => "application/msword",
        "xls" => "application/vnd.ms-excel",
        "ppt" => "application/vnd.ms-powerpoint",
        "rtf" => "application/rtf",
        "md" => "text/markdown",
        "py" => "text/x-python",
        "sh" => "application/x-sh",
        "bz2" => "application/x-bzip2",
        "xz" => "application/x-xz",
        "7z" => "application/x-7z-compressed",
        "iso" => "application/x-iso9660-image",
        _ => "application/octet-stream",
    }
}

/// The metadata a PUT or POST sets: `x-object-meta-*` and the stored headers.
pub(super) fn request_meta(headers: &HeaderMap) -> Result<Meta> {
    check_metadata(headers, "object")?;
    let mut meta = Meta::new();
    for (name, value) in headers {
        let n = name.as_str();
        if n.starts_with("x-object-meta-") || STORED_HEADERS.contains(&n) {
            let v = value_text(n, value)?;
            if !v.is_empty() {
                meta.insert(n.to_owned(), v);
            }
        }
    }
    if let Some(m) = meta.get("x-object-manifest") {
        check_manifest(m)?;
    }
    Ok(meta)
}

/// `X-Object-Manifest: <container>/<prefix>`.
fn check_manifest(value: &str) -> Result<(String, String)> {
    let decoded = names::decode(value).ok_or_else(|| {
        Error::PreconditionFailed(
            "Invalid UTF8 or contains NULL: X-Object-Manifest must be UTF-8 text without NUL"
                .into(),
        )
    })?;
    match decoded.trim_start_matches('/').split_once('/') {
        Some((c, p)) if !c.is_empty() => {
            names::check_container(c)?;
            Ok((c.to_owned(), p.to_owned()))
        }
        _ => Err(Error::bad_request(
            "X-Object-Manifest must be in the format container/prefix",
        )),
    }
}

/// Percent-encodes as Python's `quote` does (Swift's answers name paths this way).
pub(super) fn encode(s: &str) -> String {
    const QUOTE: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'_')
        .remove(b'.')
        .remove(b'-')
        .remove(b'~')
        .remove(b'/');
    utf8_percent_encode(s, QUOTE).to_string()
}

pub(super) async fn handle<B: RequestBody>(
    store: &LocalStore,
    req: Request<B>,
    op: &Operation,
    (container, object): (&str, &str),
    caller: &Caller,
) -> Result<Response<Body>> {
    let account = op.target.account.as_str();
    names::check_object(object)?;
    let method = req.method().clone();
    let c = store.container(account, container).await?;
    if matches!(method, Method::PUT | Method::POST) || method.as_str() == "COPY" {
        authorize_references(store, op, caller).await?;
    }
    // a temporary URL is for the current version: it ignores `version-id`, as Swift's;
    // a copy's `version-id` names a version of its source (Swift's copy middleware)
    if caller.temp_url.is_none()
        && !op.copies()
        && let Some(v) = &op.version_id
    {
        return Box::pin(versioning::with_version(
            store, req, op, account, container, c, object, v, caller,
        ))
        .await;
    }
    match method {
        Method::GET | Method::HEAD => {
            authorize(caller, account, c.as_ref(), false)?;
            let c = c.ok_or_else(|| not_found(container, object))?;
            let mut resp = read(store, &req, op, account, &c, object, caller).await?;
            if let Some(hidden) = versioning::hidden_of(&c) {
                versioning::annotate(resp.headers_mut(), account, container, object, hidden);
            }
            Ok(resp)
        }
        Method::PUT => {
            if let Some(from) = op.named("X-Copy-From") {
                let r = &from.reference;
                return Box::pin(copy(
                    store,
                    req.headers(),
                    op,
                    (&from.account, &r.container, &r.object),
                    (account, container, object),
                    caller,
                ))
                .await;
            }
            authorize(caller, account, c.as_ref(), true)?;
            let c = c.ok_or_else(|| Error::NotFound(format!("no container {container:?}")))?;
            Box::pin(put(store, req, op, account, &c, object, caller)).await
        }
        ref m if m.as_str() == "COPY" => {
            let dest = op
                .named("Destination")
                .ok_or_else(|| Error::PreconditionFailed("Destination header required".into()))?;
            let r = &dest.reference;
            Box::pin(copy(
                store,
                req.headers(),
                op,
                (account, container, object),
                (&dest.account, &r.container, &r.object),
                caller,
            ))
            .await
        }
        Method::POST => {
            authorize(caller, account, c.as_ref(), true)?;
            let c = c.ok_or_else(|| not_found(container, object))?;
            Box::pin(post(store, req.headers(), account, &c, object, caller)).await
        }
        Method::DELETE => {
            authorize(caller, account, c.as_ref(), true)?;
            let c = c.ok_or_else(|| not_found(container, object))?;
            if op.manifest == Some(Manifest::Delete) {
                return Box::pin(slo::delete(
                    store,
                    req.headers(),
                    account,
                    &c,
                    object,
                    caller,
                ))
                .await;
            }
            if let Some(v) = header_str(req.headers(), "x-if-delete-at")? {
                let want: u64 = v
                    .trim()
                    .parse()
                    .map_err(|_| Error::bad_request("Bad X-If-Delete-At header value"))?;
                let row = current(store, &c, object)
                    .await?
                    .ok_or_else(|| not_found(container, object))?;
                if row.delete_at != Some(want) {
                    return Err(Error::PreconditionFailed(
                        "X-If-Delete-At does not match".into(),
                    ));
                }
            }
            if versioning::enabled(&c) {
                return Box::pin(versioning::delete(store, account, &c, object)).await;
            }
            Box::pin(history::delete(store, account, &c, object, caller)).await
        }
        _ => Err(Error::MethodNotAllowed {
            method: method.to_string(),
            allow: "GET, HEAD, PUT, POST, DELETE, COPY",
        }),
    }
}

/// Deletes an object's row and body; false when there was none.
pub(super) async fn delete_plain(
    store: &LocalStore,
    container: &ContainerRow,
    object: &str,
) -> Result<bool> {
    let (id, name) = (container.id, object.to_owned());
    match store.db(move |db| db.delete_object(id, &name)).await? {
        Some(file) => {
            store.files.remove(&file);
            Ok(true)
        }
        None => Ok(false),
    }
}
