//! Objects: PUT (streamed to disk, MD5 checked), GET/HEAD (ranges, conditions,
//! dynamic large objects), POST (metadata), DELETE, and copies (`COPY` with
//! `Destination`, `PUT` with `X-Copy-From`).

use std::fs::File;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use md5::{Digest, Md5};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

use super::db::{ContainerRow, Meta, ObjectRow, Page};
use super::files::{Piece, WriteError, Written, stream};
use super::headers::{
    self, ByteRange, Ranges, check_metadata, http_date, iso, unquote, value_text, x_timestamp,
};
use super::listing::{self, Named};
use super::{Caller, LocalStore, acl, history, put_meta, set, slo, symlink, versioning};
use crate::body::{Body, RequestBody, empty, status_only};
use crate::error::{Error, Result};
use crate::http_util::xml_escape;
use crate::http_util::{header_str, header_true};
use crate::swift::limits::{MAX_FILE_SIZE, SYMLOOP_MAX};
use crate::swift::names;
use crate::swift::op::{Manifest, Operation};
use crate::swift::query;

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

/// `X-Delete-At` / `X-Delete-After` of a PUT or POST, as a Unix time.
pub(super) fn delete_at(headers: &HeaderMap) -> Result<Option<u64>> {
    let now = headers::now();
    if let Some(v) = header_str(headers, "x-delete-at")? {
        let at: f64 = v
            .trim()
            .parse()
            .map_err(|_| Error::bad_request("Non-integer X-Delete-At"))?;
        if at <= now {
            return Err(Error::bad_request("X-Delete-At in past"));
        }
        // Swift's largest timestamp
        return Ok(Some(headers::whole(at.min(9_999_999_999.0))));
    }
    if let Some(v) = header_str(headers, "x-delete-after")? {
        let after: i64 = v
            .trim()
            .parse()
            .map_err(|_| Error::bad_request("Non-integer X-Delete-After"))?;
        if after <= 0 {
            return Err(Error::bad_request("X-Delete-After in past"));
        }
        return Ok(Some(headers::whole(now) + after.unsigned_abs()));
    }
    Ok(None)
}

/// The metadata a PUT or POST sets: `x-object-meta-*` and the stored headers.
pub(super) fn request_meta(headers: &HeaderMap) -> Result<Meta> {
    check_metadata(headers, "object")?;
    let mut meta = Meta::new();
    for (name, value) in headers {
        let n = name.as_str();
        if n.starts_with("x-object-meta-") || STORED_HEADERS.contains(&n) {
            let v = value_text(value);
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

fn write_error(e: WriteError) -> Error {
    match e {
        WriteError::TooLarge(n) => {
            Error::PayloadTooLarge(format!("the body is larger than {n} bytes"))
        }
        WriteError::Short { got, expected } => Error::bad_request(format!(
            "the request body ended after {got} of {expected} bytes"
        )),
        WriteError::Client(m) => Error::bad_request(m),
        WriteError::Disk(e) => Error::internal("writing an object body", e),
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

/// A part of a large object: a range of a body file, or bytes held in a manifest.
pub(super) enum Segment {
    File { file: String, offset: u64, len: u64 },
    Data(Bytes),
}

impl Segment {
    pub(super) fn len(&self) -> u64 {
        match self {
            Segment::File { len, .. } => *len,
            Segment::Data(b) => b.len() as u64,
        }
    }

    /// `len` bytes of this segment from `from`.
    pub(super) fn slice(self, from: u64, len: u64) -> Segment {
        match self {
            Segment::File { file, offset, .. } => Segment::File {
                file,
                offset: offset + from,
                len,
            },
            Segment::Data(b) => Segment::Data(b.slice(in_memory(from)..in_memory(from + len))),
        }
    }
}

/// What a GET or HEAD serves: the object's own body, or its segments.
struct Served {
    row: ObjectRow,
    etag: String,
    size: u64,
    segments: Option<Vec<Segment>>,
    /// The lengths of an SLO's parts (its manifest entries), for `?part-number=`.
    parts: Option<Vec<u64>>,
}

impl Served {
    /// An object served as its own body.
    fn whole(row: ObjectRow) -> Served {
        Served {
            etag: row.etag.clone(),
            size: row.size,
            segments: None,
            parts: None,
            row,
        }
    }
}

/// What `?part-number=N` selects.
enum Part {
    All,
    Range { range: ByteRange, count: usize },
    Beyond { count: usize },
}

fn part_number(pairs: &[(String, String)]) -> Result<Option<u64>> {
    match query::param(pairs, "part-number") {
        None => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| Error::bad_request("Part number must be an integer greater than 0")),
    }
}

/// An offset or length within a body held in memory, which `usize` holds.
fn in_memory(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The byte range of part `n`: an SLO's n-th manifest entry; a plain object has one part.
fn select_part(served: &Served, n: Option<u64>) -> Part {
    let Some(n) = n else { return Part::All };
    let single = [served.size];
    let parts = served.parts.as_deref().unwrap_or(&single);
    let count = parts.len();
    let n = match usize::try_from(n) {
        Ok(n) if n <= count => n,
        _ => return Part::Beyond { count },
    };
    let start: u64 = parts[..n - 1].iter().sum();
    let len = parts[n - 1];
    Part::Range {
        range: ByteRange {
            start,
            end: (start + len).saturating_sub(1),
        },
        count,
    }
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
            Box::pin(post(store, req.headers(), &c, object)).await
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
            Box::pin(history::delete(store, account, &c, object)).await
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

/// Bodies up to this size are read whole with their row: one trip to the blocking pool.
const SMALL_BODY: u64 = 64 * 1024;

/// An object's body, opened (or, when small, read) together with its row.
enum Loaded {
    File(File),
    Small(Bytes),
}

impl Loaded {
    fn piece(self, r: ByteRange) -> Piece {
        match self {
            Loaded::File(file) => Piece::Open {
                file,
                offset: r.start,
                len: r.len(),
            },
            Loaded::Small(b) => {
                // clamped: a body shorter than its record ends the response early
                let end = (in_memory(r.end) + 1).min(b.len());
                Piece::Bytes(b.slice(in_memory(r.start).min(end)..end))
            }
        }
    }
}

/// The current version of an object and, if `wants_body` says so, its body.
async fn load(
    store: &LocalStore,
    container: &ContainerRow,
    object: &str,
    wants_body: impl FnOnce(&ObjectRow) -> bool,
) -> Result<Option<(ObjectRow, Option<Loaded>)>> {
    // on the calling thread: an indexed read, and for a small body one read of a file
    // the page cache most likely holds, cost less than two trips through the blocking pool
    let row = store
        .db
        .object(container.id, object)
        .map_err(super::db_error)?;
    let now = headers::now();
    let Some(row) = row.filter(|r| r.delete_at.is_none_or(|at| (at as f64) > now)) else {
        return Ok(None);
    };
    if !wants_body(&row) {
        return Ok(Some((row, None)));
    }
    if let Some(body) = store.files.kept(&row.file) {
        return Ok(Some((row, Some(Loaded::Small(body)))));
    }
    let missing = |e: std::io::Error| Error::internal("object body missing", e);
    let mut file = File::open(store.files.path(&row.file)).map_err(missing)?;
    let body = match file.metadata().map_err(missing)?.len() {
        n if n <= SMALL_BODY => {
            let mut buf = Vec::with_capacity(in_memory(n));
            std::io::Read::read_to_end(&mut file, &mut buf).map_err(missing)?;
            let body = Bytes::from(buf);
            store.files.keep(&row.file, body.clone());
            Loaded::Small(body)
        }
        _ => Loaded::File(file),
    };
    Ok(Some((row, Some(body))))
}

/// The current, unexpired version of an object.
pub(super) async fn current(
    store: &LocalStore,
    container: &ContainerRow,
    object: &str,
) -> Result<Option<ObjectRow>> {
    Ok(load(store, container, object, |_| false)
        .await?
        .map(|(row, _)| row))
}

/// Resolves a dynamic large object's segments (`X-Object-Manifest`), in name order.
async fn dlo_segments(
    store: &LocalStore,
    account: &str,
    manifest: &str,
    caller: &Caller,
) -> Result<Vec<ObjectRow>> {
    let (sc, prefix) = check_manifest(manifest)?;
    let Some(c) = store.container(account, &sc).await? else {
        return Ok(Vec::new());
    };
    authorize(caller, account, Some(&c), false)?;
    let params = listing::Params {
        prefix,
        limit: usize::MAX,
        ..Default::default()
    };
    let db = store.db.clone();
    let id = c.id;
    let now = headers::now();
    let entries = tokio::task::spawn_blocking(move || {
        listing::list(&params, |page: &Page<'_>| db.list_objects(id, page))
    })
    .await
    .map_err(Error::task_failed)??;
    let mut segments = Vec::new();
    for e in entries {
        if let listing::Entry::Item(o) = e
            && o.delete_at.is_none_or(|at| (at as f64) > now)
        {
            // a segment that is a link (a versioned object) contributes its target
            match symlink::target(&o) {
                Some(_) => segments.extend(follow_links(store, o, caller).await?),
                None => segments.push(o),
            }
        }
    }
    Ok(segments)
}

/// Whether an object is served as its own body: no large object to assemble.
fn served_whole(row: &ObjectRow, manifest_get: bool) -> bool {
    !row.meta.contains_key("x-object-manifest") && !slo::is_slo(row) && !manifest_get
}

async fn served(
    store: &LocalStore,
    account: &str,
    row: ObjectRow,
    manifest_get: bool,
    caller: &Caller,
) -> Result<Served> {
    if !manifest_get && let Some(m) = row.meta.get("x-object-manifest").cloned() {
        let segs = dlo_segments(store, account, &m, caller).await?;
        let mut md5 = Md5::new();
        for s in &segs {
            md5.update(s.etag.as_bytes());
        }
        return Ok(Served {
            etag: format!("\"{}\"", hex::encode(md5.finalize())),
            size: segs.iter().map(|s| s.size).sum(),
            parts: None,
            segments: Some(
                segs.into_iter()
                    .map(|s| Segment::File {
                        file: s.file,
                        offset: 0,
                        len: s.size,
                    })
                    .collect(),
            ),
            row,
        });
    }
    if !manifest_get && slo::is_slo(&row) {
        let segs = slo::segments(store, account, &row, caller, 0).await?;
        let parts = slo::part_lengths(&slo::manifest(store, &row).await?);
        return Ok(Served {
            etag: format!("\"{}\"", slo::etag_of(&row)),
            size: segs.iter().map(Segment::len).sum(),
            segments: Some(segs),
            parts: Some(parts),
            row,
        });
    }
    if manifest_get && slo::is_slo(&row) {
        let size = row
            .meta
            .get(slo::MANIFEST_SIZE)
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        return Ok(Served {
            etag: row.etag.clone(),
            size,
            segments: None,
            parts: None,
            row,
        });
    }
    Ok(Served::whole(row))
}

/// The pieces that make up `range` of a body laid out as `segments`.
fn segment_pieces(store: &LocalStore, segments: &[Segment], range: ByteRange) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut at = 0u64;
    for s in segments {
        let len = s.len();
        let (start, end) = (at, at + len);
        at = end;
        if len == 0 || end <= range.start || start > range.end {
            continue;
        }
        let from = range.start.max(start) - start;
        let to = (range.end + 1).min(end) - start;
        pieces.push(match s {
            Segment::File { file, offset, .. } => Piece::Path {
                path: store.files.path(file),
                offset: offset + from,
                len: to - from,
            },
            Segment::Data(b) => Piece::Bytes(b.slice(in_memory(from)..in_memory(to))),
        });
    }
    pieces
}

/// The object a chain of symlinks ends at (`row` itself when it is no link); `None`
/// when the chain is broken.
pub(super) async fn follow_links(
    store: &LocalStore,
    mut row: ObjectRow,
    caller: &Caller,
) -> Result<Option<ObjectRow>> {
    let mut depth = 0;
    while let Some(t) = symlink::target(&row) {
        // a versioned container's link to its current version is part of the object
        let version_link = versioning::is_link(&row);
        if !version_link {
            if depth >= SYMLOOP_MAX {
                return Err(symlink::too_deep());
            }
            depth += 1;
        }
        let tc = store.container(&t.account, &t.container).await?;
        if !version_link {
            authorize(caller, &t.account, tc.as_ref(), false)?;
        }
        let Some(tc) = tc else { return Ok(None) };
        let Some(next) = current(store, &tc, &t.object).await? else {
            return Ok(None);
        };
        if let Some(e) = &t.etag
            && e != symlink::effective_etag(&next)
        {
            return Err(symlink::etag_mismatch(symlink::effective_etag(&next), e));
        }
        row = next;
    }
    Ok(Some(row))
}

/// A GET or HEAD; symlinks are followed unless `?symlink=get` asks for the link.
pub(super) async fn read<B: RequestBody>(
    store: &LocalStore,
    req: &Request<B>,
    op: &Operation,
    account: &str,
    container: &ContainerRow,
    object: &str,
    caller: &Caller,
) -> Result<Response<Body>> {
    read_at(store, req, op, account, container, object, caller, 0, None).await
}

/// `depth` counts the links followed so far; `link_etag` is a static link's ETag that
/// the object reached must have.
#[allow(clippy::too_many_arguments)]
async fn read_at<B: RequestBody>(
    store: &LocalStore,
    req: &Request<B>,
    op: &Operation,
    account: &str,
    container: &ContainerRow,
    object: &str,
    caller: &Caller,
    depth: usize,
    link_etag: Option<String>,
) -> Result<Response<Body>> {
    let manifest_get = op.manifest == Some(Manifest::Get);
    let symlink_get = op.symlink_get;
    // the row and the body are read in one go; the body file is opened at once, so a
    // concurrent overwrite cannot pull it away, and a small body is read whole
    let (row, body) = load(store, container, object, move |row| {
        let large = row.meta.contains_key("x-object-manifest") || slo::is_slo(row);
        let link = !symlink_get && symlink::target(row).is_some();
        !link && (!large || manifest_get)
    })
    .await?
    .ok_or_else(|| not_found(&container.name, object))?;
    if let Some(e) = link_etag
        && e != symlink::effective_etag(&row)
    {
        return Err(symlink::etag_mismatch(symlink::effective_etag(&row), &e));
    }
    if !symlink_get && let Some(t) = symlink::target(&row) {
        // a versioned container's link to its current version is part of the object:
        // it counts no hop and needs no other authorization
        let version_link = versioning::is_link(&row);
        if !version_link && depth >= SYMLOOP_MAX {
            return Err(symlink::too_deep());
        }
        let tc = store.container(&t.account, &t.container).await?;
        let allowed = if version_link {
            Ok(())
        } else {
            authorize(caller, &t.account, tc.as_ref(), false)
        };
        let inner = match (allowed, tc) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(c)) => {
                Box::pin(read_at(
                    store,
                    req,
                    op,
                    &t.account,
                    &c,
                    &t.object,
                    caller,
                    depth + usize::from(!version_link),
                    t.etag.clone(),
                ))
                .await
            }
            (Ok(()), None) => Err(not_found(&t.container, &t.object)),
        };
        // a target that is missing, changed or forbidden is answered with where the
        // link points
        let mut resp = match inner {
            Ok(resp) => resp,
            Err(
                e @ (Error::NotFound(_)
                | Error::Conflict(_)
                | Error::Denied { .. }
                | Error::Unauthorized { .. }),
            ) => e.into_response(""),
            Err(e) => return Err(e),
        };
        if !resp.headers().contains_key(header::CONTENT_LOCATION)
            && let Some(v) = symlink::location_value(&t)
        {
            resp.headers_mut().insert(header::CONTENT_LOCATION, v);
        }
        return Ok(resp);
    }
    let raw_manifest = manifest_get && slo::is_slo(&row) && op.param("format") == Some("raw");
    let served = if served_whole(&row, manifest_get) {
        Served::whole(row)
    } else {
        Box::pin(served(store, account, row, manifest_get, caller)).await?
    };
    let mut h = HeaderMap::new();
    let row = &served.row;
    if manifest_get && slo::is_slo(row) && !raw_manifest {
        set(&mut h, "content-type", "application/json; charset=utf-8");
    } else {
        set(&mut h, "content-type", &row.content_type);
    }
    if slo::is_slo(row) && !manifest_get {
        set(&mut h, "x-manifest-etag", &row.etag);
    }
    symlink::link_headers(row, &mut h);
    if let Ok(v) = HeaderValue::from_str(&served.etag) {
        h.insert(header::ETAG, v);
    }
    set(&mut h, "last-modified", http_date(row.timestamp));
    set(&mut h, "x-timestamp", x_timestamp(row.timestamp));
    set(&mut h, "accept-ranges", "bytes");
    put_meta(&mut h, &row.meta);
    if let Some(at) = row.delete_at {
        set(&mut h, "x-delete-at", at);
    }
    if let Some(status) = headers::conditional(req.headers(), unquote(&served.etag), row.timestamp)
    {
        // the answer still describes the object, as Swift's does
        return Ok(without_body(status, h));
    }
    if raw_manifest {
        let segments = Box::pin(slo::manifest(store, row)).await?;
        let body = slo::raw_form(&segments).to_string();
        set(&mut h, "content-length", body.len());
        set(&mut h, "etag", hex::encode(Md5::digest(body.as_bytes())));
        let mut resp = Response::new(if req.method() == Method::HEAD {
            empty()
        } else {
            crate::body::full(body)
        });
        *resp.headers_mut() = h;
        return Ok(resp);
    }
    let size = served.size;
    let whole = ByteRange {
        start: 0,
        end: size.saturating_sub(1),
    };
    let pieces_for = |r: ByteRange| -> Vec<Piece> {
        match &served.segments {
            Some(segs) => segment_pieces(store, segs, r),
            None => vec![Piece::Path {
                path: store.files.path(&row.file),
                offset: r.start,
                len: r.len(),
            }],
        }
    };
    let is_dlo = served.segments.is_some() && served.parts.is_none();
    let selected = match select_part(&served, part_number(&op.query)?) {
        // Swift serves a dynamic large object whole when asked for several ranges
        Part::All => match headers::ranges(req.headers(), size) {
            Ranges::Some(r) if is_dlo && r.len() > 1 => Ranges::Whole,
            r => r,
        },
        Part::Range { range, count } => {
            if served.parts.is_some() {
                set(&mut h, "x-parts-count", count);
            }
            Ranges::Some(vec![range])
        }
        Part::Beyond { count } => {
            if served.parts.is_some() {
                set(&mut h, "x-parts-count", count);
            }
            set(&mut h, "content-range", format!("bytes */{size}"));
            let body = "The requested part number is not satisfiable";
            set(
                &mut h,
                "content-length",
                if req.method() == Method::HEAD {
                    0
                } else {
                    body.len()
                },
            );
            let mut resp = Response::new(if req.method() == Method::HEAD {
                empty()
            } else {
                crate::body::full(body)
            });
            *resp.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            *resp.headers_mut() = h;
            return Ok(resp);
        }
    };
    let (status, pieces, length) = match selected {
        Ranges::Whole => {
            let pieces = match (body, size) {
                (_, 0) => Vec::new(),
                (Some(b), _) => vec![b.piece(whole)],
                (None, _) => pieces_for(whole),
            };
            (StatusCode::OK, pieces, size)
        }
        Ranges::Unsatisfiable => {
            set(&mut h, "content-range", format!("bytes */{size}"));
            return Ok(without_body(StatusCode::RANGE_NOT_SATISFIABLE, h));
        }
        Ranges::Some(ranges) if ranges.len() == 1 => {
            let r = ranges[0];
            set(
                &mut h,
                "content-range",
                format!("bytes {}-{}/{size}", r.start, r.end),
            );
            let pieces = match body {
                Some(b) => vec![b.piece(r)],
                None => pieces_for(r),
            };
            (StatusCode::PARTIAL_CONTENT, pieces, r.len())
        }
        Ranges::Some(ranges) => {
            let boundary = hex::encode(rand::random::<[u8; 16]>());
            let mut pieces = Vec::new();
            let mut length = 0u64;
            for r in &ranges {
                let head = format!(
                    "--{boundary}\r\nContent-Type: {}\r\nContent-Range: bytes {}-{}/{size}\r\n\r\n",
                    row.content_type, r.start, r.end
                );
                length += head.len() as u64 + r.len() + 2;
                pieces.push(Piece::Bytes(Bytes::from(head)));
                pieces.extend(pieces_for(*r));
                pieces.push(Piece::Bytes(Bytes::from_static(b"\r\n")));
            }
            let tail = format!("--{boundary}--");
            length += tail.len() as u64;
            pieces.push(Piece::Bytes(Bytes::from(tail)));
            set(
                &mut h,
                "content-type",
                format!("multipart/byteranges;boundary={boundary}"),
            );
            (StatusCode::PARTIAL_CONTENT, pieces, length)
        }
    };
    set(&mut h, "content-length", length);
    let body = match pieces.as_slice() {
        _ if req.method() == Method::HEAD => empty(),
        [] => empty(),
        [Piece::Bytes(b)] => crate::body::full(b.clone()),
        _ => stream(pieces),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = h;
    Ok(resp)
}

/// A bodiless answer (304, 412, 416) carrying the object's headers.
fn without_body(status: StatusCode, mut h: HeaderMap) -> Response<Body> {
    let mut resp = status_only(status);
    h.remove(header::CONTENT_LENGTH);
    for (name, value) in h {
        if let Some(name) = name {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

/// Checks the preconditions of a PUT: `If-None-Match: *` and the declared length.
async fn check_put(
    store: &LocalStore,
    headers: &HeaderMap,
    container: &ContainerRow,
    object: &str,
) -> Result<Option<u64>> {
    if let Some(inm) = header_str(headers, "if-none-match")? {
        if inm.trim() != "*" {
            return Err(Error::bad_request("If-None-Match only supports *"));
        }
        if current(store, container, object).await?.is_some() {
            return Err(Error::PreconditionFailed(
                "the object already exists".into(),
            ));
        }
    }
    let chunked = crate::http_util::is_chunked(headers)?;
    let length = match header_str(headers, "content-length")? {
        Some(v) => Some(
            v.trim()
                .parse::<u64>()
                .map_err(|_| Error::bad_request(format!("Invalid Content-Length {v:?}")))?,
        ),
        None if chunked => None,
        None => {
            return Err(Error::LengthRequired(
                "Missing Content-Length header.".into(),
            ));
        }
    };
    if length.is_some_and(|l| l > MAX_FILE_SIZE) {
        return Err(Error::PayloadTooLarge(format!(
            "Your request is too large; the limit is {MAX_FILE_SIZE} bytes"
        )));
    }
    Ok(length)
}

/// Container and account quotas (`X-Container-Meta-Quota-Bytes`, `-Quota-Count`,
/// `X-Account-Meta-Quota-Bytes`): 413 when `bytes` more would exceed one.
pub(super) async fn check_quota(
    store: &LocalStore,
    account: &str,
    container: &ContainerRow,
    bytes: u64,
) -> Result<()> {
    let limit = |meta: &super::db::Meta, key: &str| {
        meta.get(key).and_then(|v| v.trim().parse::<u64>().ok())
    };
    let over = || Error::PayloadTooLarge("Upload exceeds quota.".into());
    // a container's versions count against its quota
    let used = container.bytes_used + versioning::versions_bytes(store, account, container).await?;
    if limit(&container.meta, "x-container-meta-quota-bytes").is_some_and(|q| used + bytes > q)
        || limit(&container.meta, "x-container-meta-quota-count")
            .is_some_and(|q| container.object_count + 1 > q)
    {
        return Err(over());
    }
    let a = account.to_owned();
    let acct = store.db(move |db| db.account(&a)).await?;
    let byte_quotas = [
        "x-account-meta-quota-bytes",
        "x-account-quota-bytes",
        "x-account-quota-bytes-policy-policy-0",
    ];
    let count_quotas = [
        "x-account-quota-count",
        "x-account-quota-count-policy-policy-0",
    ];
    if byte_quotas
        .iter()
        .any(|k| limit(&acct.meta, k).is_some_and(|q| acct.bytes_used + bytes > q))
        || count_quotas
            .iter()
            .any(|k| limit(&acct.meta, k).is_some_and(|q| acct.object_count + 1 > q))
    {
        return Err(over());
    }
    Ok(())
}

/// Commits a written body as an object version and removes the body it replaces.
pub(super) async fn commit(
    store: &LocalStore,
    container: &ContainerRow,
    row: ObjectRow,
) -> Result<()> {
    let files = store.files.clone();
    let id = row.file.clone();
    tokio::task::spawn_blocking(move || files.commit(&id))
        .await
        .map_err(Error::task_failed)?
        .map_err(|e| Error::internal("storing an object body", e))?;
    let cid = container.id;
    let file = row.file.clone();
    let result = store.db(move |db| db.put_object(cid, &row)).await;
    match result {
        Ok(Ok(old)) => {
            if let Some(old) = old {
                store.files.remove(&old);
            }
            Ok(())
        }
        Ok(Err(())) => {
            store.files.remove(&file);
            Err(Error::NotFound(format!(
                "container {:?} was deleted",
                container.name
            )))
        }
        Err(e) => {
            store.files.remove(&file);
            Err(e)
        }
    }
}

/// Stores a new object; where versioning is on, as a new version. The version's id.
async fn save(
    store: &LocalStore,
    account: &str,
    container: &ContainerRow,
    row: ObjectRow,
) -> Result<Option<String>> {
    if versioning::enabled(container) {
        return versioning::commit(store, account, container, row)
            .await
            .map(Some);
    }
    if let Err(e) = history::before_write(store, account, container, &row.name).await {
        store.files.discard(&row.file);
        return Err(e);
    }
    commit(store, container, row).await.map(|()| None)
}

fn created(etag: &str, timestamp: f64, version: Option<String>) -> Response<Body> {
    let mut resp = status_only(StatusCode::CREATED);
    let h = resp.headers_mut();
    set(h, "etag", etag);
    set(h, "last-modified", http_date(timestamp));
    if let Some(v) = version {
        set(h, "x-object-version-id", v);
    }
    resp
}

/// A new version of an object from a PUT's headers and a written body.
pub(super) fn new_row(
    headers: &HeaderMap,
    object: &str,
    file: String,
    size: u64,
    md5: String,
) -> Result<ObjectRow> {
    Ok(ObjectRow {
        name: object.to_owned(),
        file,
        size,
        etag: md5,
        content_type: content_type(headers, object)?,
        timestamp: headers::now(),
        meta: request_meta(headers)?,
        delete_at: delete_at(headers)?,
    })
}

async fn put<B: RequestBody>(
    store: &LocalStore,
    req: Request<B>,
    op: &Operation,
    account: &str,
    container: &ContainerRow,
    object: &str,
    caller: &Caller,
) -> Result<Response<Body>> {
    let headers = req.headers().clone();
    let length = check_put(store, &headers, container, object).await?;
    // fail on bad headers before reading the body
    request_meta(&headers)?;
    delete_at(&headers)?;
    let manifest_put = op.manifest == Some(Manifest::Put);
    let link = symlink::requested(op, &headers)?;
    let mut link_target: Option<(u64, String)> = None;
    if let Some(t) = &link {
        if t.account == account && t.container == container.name && t.object == object {
            return Err(Error::bad_request("Symlink cannot target itself"));
        }
        if length != Some(0) {
            return Err(Error::bad_request(
                "Symlink requests require a zero byte body",
            ));
        }
        if manifest_put {
            return Err(Error::bad_request("Manifest requests cannot be symlinks"));
        }
        if let Some(e) = &t.etag {
            // a static link needs its target now, with that ETag
            let tc = store.container(&t.account, &t.container).await?;
            authorize(caller, &t.account, tc.as_ref(), false)?;
            let target = match tc {
                Some(c) => match current(store, &c, &t.object).await? {
                    Some(row) => versioning::resolve(store, row).await?,
                    None => None,
                },
                None => None,
            }
            .ok_or_else(|| Error::Conflict("X-Symlink-Target does not exist".into()))?;
            if symlink::effective_etag(&target) != e {
                return Err(symlink::etag_mismatch(symlink::effective_etag(&target), e));
            }
            link_target = Some((target.size, target.content_type));
        }
    }
    if manifest_put {
        let (row, slo_etag) = slo::put(
            store,
            &headers,
            req.into_body(),
            account,
            &container.name,
            object,
            caller,
        )
        .await?;
        let timestamp = row.timestamp;
        let version = save(store, account, container, row).await?;
        return Ok(created(&format!("\"{slo_etag}\""), timestamp, version));
    }
    let expected_etag = header_str(&headers, "etag")?.map(|e| unquote(e).to_ascii_lowercase());
    check_quota(store, account, container, length.unwrap_or(0)).await?;
    let written = store
        .files
        .write(req.into_body(), MAX_FILE_SIZE, length)
        .await
        .map_err(write_error)?;
    if length.is_none()
        && let Err(e) = check_quota(store, account, container, written.size).await
    {
        store.files.discard(&written.id);
        return Err(e);
    }
    if let Some(e) = expected_etag
        && e != written.md5
    {
        store.files.discard(&written.id);
        return Err(Error::Unprocessable(format!(
            "the body's MD5 is {}, not the ETag {e} the request declared",
            written.md5
        )));
    }
    let Written { id, size, md5 } = written;
    let mut row = new_row(&headers, object, id, size, md5.clone())?;
    if let Some(t) = &link {
        symlink::store(&mut row.meta, t, link_target.as_ref().map(|(b, _)| *b));
        if header_str(&headers, "content-type")?.is_none_or(|c| c.trim().is_empty()) {
            row.content_type = match &link_target {
                Some((_, ct)) => ct.clone(),
                None => "application/symlink".into(),
            };
        }
    }
    let timestamp = row.timestamp;
    let mut h = HeaderMap::new();
    symlink::link_headers(&row, &mut h);
    let version = save(store, account, container, row).await?;
    let mut resp = created(&md5, timestamp, version);
    resp.headers_mut().extend(h);
    Ok(resp)
}

async fn post(
    store: &LocalStore,
    headers: &HeaderMap,
    container: &ContainerRow,
    object: &str,
) -> Result<Response<Body>> {
    if headers.contains_key("x-symlink-target") {
        return Err(Error::bad_request(
            "A PUT request is required to set a symlink target",
        ));
    }
    let existing = current(store, container, object)
        .await?
        .ok_or_else(|| not_found(&container.name, object))?;
    let mut meta = request_meta(headers)?;
    // a POST replaces the user's metadata (a DLO manifest included, as in Swift);
    // what makes an object an SLO stays
    for (k, v) in &existing.meta {
        let keep = k.contains("-sysmeta-") || k == "x-static-large-object";
        if keep {
            meta.insert(k.clone(), v.clone());
        }
    }
    let delete_at = match (
        header_str(headers, "x-remove-delete-at")?,
        delete_at(headers)?,
    ) {
        (Some(_), _) => None,
        (None, Some(at)) => Some(at),
        (None, None) => existing.delete_at,
    };
    let content_type = header_str(headers, "content-type")?
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let (id, name) = (container.id, object.to_owned());
    let found = store
        .db(move |db| {
            db.post_object(
                id,
                &name,
                content_type.as_deref(),
                &meta,
                delete_at,
                headers::now(),
            )
        })
        .await?;
    if !found {
        return Err(not_found(&container.name, object));
    }
    // a POST to a versioned object's link changes its current version too, but not
    // when that version expires
    if versioning::is_link(&existing)
        && let Some(t) = symlink::target(&existing)
        && let Some(hc) = store.container(&t.account, &t.container).await?
    {
        let mut h = headers.clone();
        for k in ["x-delete-at", "x-delete-after", "x-remove-delete-at"] {
            h.remove(k);
        }
        return Box::pin(post(store, &h, &hc, &t.object)).await;
    }
    // a POST to a link changes the link, and points at the target
    if let Some(t) = symlink::target(&existing) {
        let mut resp = status_only(StatusCode::TEMPORARY_REDIRECT);
        if let Some(v) = symlink::location_value(&t) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(resp);
    }
    Ok(status_only(StatusCode::ACCEPTED))
}

/// Copies `src` to `dest`; the copy gets the source's metadata merged with the
/// request's, or only the request's with `X-Fresh-Metadata: true`.
async fn copy(
    store: &LocalStore,
    headers: &HeaderMap,
    op: &Operation,
    src: (&str, &str, &str),
    dest: (&str, &str, &str),
    caller: &Caller,
) -> Result<Response<Body>> {
    let (src_account, src_container, src_object) = src;
    let (dest_account, dest_container_name, dest_object) = dest;
    let sc = store.container(src_account, src_container).await?;
    authorize(caller, src_account, sc.as_ref(), false)?;
    let sc = sc.ok_or_else(|| not_found(src_container, src_object))?;
    let (sc, src_name) = match op.version_id.as_deref() {
        Some(v) => versioning::copy_source(store, src_account, sc, src_object, v, caller).await?,
        None => (sc, src_object.to_owned()),
    };
    let mut source = current(store, &sc, &src_name)
        .await?
        .ok_or_else(|| not_found(src_container, src_object))?;
    // copying a link copies its target, unless `?symlink=get` asks for the link
    if !op.symlink_get {
        source = follow_links(store, source, caller)
            .await?
            .ok_or_else(|| not_found(src_container, src_object))?;
    }
    // as Swift: the source is checked first, then the destination
    let dest_row = store.container(dest_account, dest_container_name).await?;
    authorize(caller, dest_account, dest_row.as_ref(), true)?;
    let dest_container = &dest_row
        .ok_or_else(|| Error::NotFound(format!("no container {dest_container_name:?}")))?;
    let manifest_get = op.manifest == Some(Manifest::Get);
    let served = served(store, src_account, source, manifest_get, caller).await?;
    let source = &served.row;
    check_quota(store, dest_account, dest_container, served.size).await?;
    if manifest_get && slo::is_slo(source) && src_account != dest_account {
        slo::check_segments_in(store, headers, dest_account, source, caller).await?;
    }
    if let Some(e) = header_str(headers, "etag")?
        && unquote(e) != unquote(&served.etag)
    {
        return Err(Error::Unprocessable(
            "the ETag does not match the source object".into(),
        ));
    }
    let mut meta = if header_true(headers, "x-fresh-metadata")? {
        Meta::new()
    } else {
        source.meta.clone()
    };
    if served.segments.is_some() {
        for k in [
            "x-object-manifest",
            "x-static-large-object",
            slo::SLO_ETAG,
            slo::MANIFEST_SIZE,
        ] {
            meta.remove(k);
        }
    }
    meta.extend(request_meta(headers)?);
    let content_type = match header_str(headers, "content-type")?
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(ct) => ct.to_owned(),
        None => source.content_type.clone(),
    };
    // a Range or a part number on the copy request copies that part of the source
    let selected = match select_part(&served, part_number(&op.query)?) {
        Part::All => headers::ranges(headers, served.size),
        Part::Range { range, .. } => Ranges::Some(vec![range]),
        Part::Beyond { .. } => Ranges::Unsatisfiable,
    };
    let range = match selected {
        Ranges::Whole => None,
        Ranges::Some(r) if r.len() == 1 => Some(r[0]),
        Ranges::Some(_) => return Err(Error::bad_request("a copy takes at most one range")),
        Ranges::Unsatisfiable => {
            return Err(Error::RangeNotSatisfiable(format!(
                "the source object has {} bytes",
                served.size
            )));
        }
    };
    let (file, size, etag) = match (&served.segments, range) {
        (None, None) => (
            store.link_copy(&source.file).await?,
            source.size,
            source.etag.clone(),
        ),
        (segments, range) => {
            let r = range.unwrap_or(ByteRange {
                start: 0,
                end: served.size.saturating_sub(1),
            });
            let len = if served.size == 0 { 0 } else { r.len() };
            let pieces = match segments {
                _ if len == 0 => Vec::new(),
                Some(segs) => segment_pieces(store, segs, r),
                None => vec![Piece::Path {
                    path: store.files.path(&source.file),
                    offset: r.start,
                    len,
                }],
            };
            let w = store
                .files
                .write(stream(pieces), MAX_FILE_SIZE, Some(len))
                .await
                .map_err(write_error)?;
            (w.id, w.size, w.md5)
        }
    };
    let timestamp = headers::now();
    let row = ObjectRow {
        name: dest_object.to_owned(),
        file,
        size,
        etag: etag.clone(),
        content_type,
        timestamp,
        meta,
        delete_at: delete_at(headers)?,
    };
    let version = save(store, dest_account, dest_container, row).await?;
    let mut resp = created(&etag, timestamp, version);
    let h = resp.headers_mut();
    set(
        h,
        "x-copied-from",
        encode(&format!("{src_container}/{src_object}")),
    );
    set(
        h,
        "x-copied-from-last-modified",
        http_date(source.timestamp),
    );
    if src_account != dest_account {
        set(h, "x-copied-from-account", encode(src_account));
    }
    Ok(resp)
}
