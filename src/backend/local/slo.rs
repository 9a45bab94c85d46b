//! Static large objects: a manifest (`PUT ?multipart-manifest=put`) lists segments,
//! each checked for existence, ETag and size when the manifest is stored; GET serves
//! the segments in order; `?multipart-manifest=get` returns the manifest;
//! `DELETE ?multipart-manifest=delete` removes the segments with the manifest.

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bulk::{self, Outcome};
use super::db::{ContainerRow, ObjectRow};
use super::headers::{self, iso};
use super::object::{Segment, authorize, current, not_found};
use super::{Caller, LocalStore};
use crate::body::RequestBody;
use crate::error::{Error, Result};
use crate::http_util::read_limited;
use crate::swift::limits::{MAX_MANIFEST_SEGMENTS, MAX_MANIFEST_SIZE};
use crate::swift::manifest;
use crate::swift::names::Reference;

/// How deep manifests may nest (a segment that is itself a manifest).
const MAX_DEPTH: usize = 10;

pub(super) const SLO_ETAG: &str = "x-object-sysmeta-slo-etag";
pub(super) const MANIFEST_SIZE: &str = "x-object-sysmeta-slo-manifest-size";

/// A segment as the stored manifest records it (Swift's format).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Stored {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_slo: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

pub(super) fn is_slo(row: &ObjectRow) -> bool {
    row.meta.contains_key(SLO_ETAG)
}

/// The ETag an object shows: the SLO ETag for manifests, else the MD5.
pub(super) fn etag_of(row: &ObjectRow) -> &str {
    row.meta.get(SLO_ETAG).map_or(&row.etag, String::as_str)
}

/// One requested segment of a manifest PUT.
pub(crate) struct Requested {
    source: Source,
    etag: Option<String>,
    size: Option<u64>,
    range: Option<(Option<u64>, Option<u64>)>,
}

/// What a segment is made of: an object (container, name), or inline bytes.
enum Source {
    Path(String, String),
    Data(Vec<u8>),
}

pub(crate) fn parse_range(s: &str) -> Option<(Option<u64>, Option<u64>)> {
    let (a, b) = s.trim().split_once('-')?;
    if s.contains(',') {
        return None;
    }
    let a = if a.is_empty() {
        None
    } else {
        Some(a.parse().ok()?)
    };
    let b = if b.is_empty() {
        None
    } else {
        Some(b.parse().ok()?)
    };
    match (a, b) {
        (None, None) => None,
        (Some(x), Some(y)) if y < x => None,
        r => Some(r),
    }
}

pub(crate) fn parse_input(body: &[u8]) -> Result<Vec<Requested>> {
    let list = manifest::parse(body)?;
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (i, seg) in list.iter().enumerate() {
        let Some(obj) = seg.as_object() else {
            errors.push(format!("Index {i}: not a JSON object"));
            continue;
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !["path", "etag", "size_bytes", "range", "data"].contains(&k.as_str()))
        {
            errors.push(format!("Index {i}: extraneous key \"{k}\""));
            continue;
        }
        let source = match (obj.get("path"), obj.get("data")) {
            (Some(_), Some(_)) | (None, None) => {
                errors.push(format!(
                    "Index {i}: expected exactly one of \"path\" or \"data\""
                ));
                continue;
            }
            (None, Some(d)) => {
                match d
                    .as_str()
                    .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                {
                    Some(bytes) => out.push(Requested {
                        source: Source::Data(bytes),
                        etag: None,
                        size: None,
                        range: None,
                    }),
                    None => errors.push(format!("Index {i}: \"data\" must be valid base64")),
                }
                continue;
            }
            (Some(p), None) => match p.as_str() {
                Some(s) => match s.trim_start_matches('/').split_once('/') {
                    Some((c, o)) if !c.is_empty() && !o.is_empty() => {
                        match Reference::from_text(s, "a segment path") {
                            Ok(named) => Source::Path(named.container, named.object),
                            Err(e) => {
                                errors.push(format!("Index {i}: {e}"));
                                continue;
                            }
                        }
                    }
                    _ => {
                        errors.push(format!("Index {i}: path does not refer to an object. Path must be of the form /container/object."));
                        continue;
                    }
                },
                None => {
                    errors.push(format!("Index {i}: \"path\" must be a string"));
                    continue;
                }
            },
        };
        let mut r = Requested {
            source,
            etag: None,
            size: None,
            range: None,
        };
        match obj.get("etag") {
            None | Some(Value::Null) => {}
            Some(Value::String(e)) => r.etag = Some(headers::unquote(e).to_owned()),
            Some(_) => errors.push(format!(
                "Index {i}: \"etag\" must be a string or null (if provided)"
            )),
        }
        match obj.get("size_bytes") {
            None | Some(Value::Null) => {}
            Some(v) => match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(n) => r.size = Some(n),
                None => errors.push(format!("Index {i}: invalid size_bytes")),
            },
        }
        match obj.get("range") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => match parse_range(s) {
                Some(rg) => r.range = Some(rg),
                None => errors.push(format!("Index {i}: invalid range")),
            },
            Some(_) => errors.push(format!("Index {i}: invalid range")),
        }
        out.push(r);
    }
    if !errors.is_empty() {
        return Err(Error::bad_request(errors.join("\n") + "\n"));
    }
    if out.is_empty() {
        return Err(Error::bad_request(
            "Manifest must have at least one segment.\n",
        ));
    }
    Ok(out)
}

/// The named object of the caller's account, if the caller may read it.
async fn lookup(
    store: &LocalStore,
    account: &str,
    container: &str,
    object: &str,
    caller: &Caller,
) -> Result<Option<ObjectRow>> {
    let c = store.container(account, container).await?;
    authorize(caller, account, c.as_ref(), false)?;
    match c {
        Some(c) => match current(store, &c, object).await? {
            Some(row) => super::object::follow_links(store, &c, row, caller).await,
            None => Ok(None),
        },
        None => Ok(None),
    }
}

pub(super) async fn put<B: RequestBody>(
    store: &LocalStore,
    headers: &HeaderMap,
    body: B,
    account: &str,
    container: &str,
    object: &str,
    caller: &Caller,
) -> Result<(ObjectRow, String)> {
    if headers.contains_key("x-copy-from") {
        return Err(Error::MethodNotAllowed {
            method: "PUT".into(),
            allow: "GET, HEAD, PUT, POST, DELETE, COPY",
        });
    }
    let raw = read_limited(
        body,
        MAX_MANIFEST_SIZE,
        "reading the manifest failed",
        || Error::PayloadTooLarge(format!("Manifest File > {MAX_MANIFEST_SIZE} bytes")),
    )
    .await?;
    let requested = parse_input(&raw)?;
    if requested
        .iter()
        .filter(|r| matches!(r.source, Source::Path(..)))
        .count()
        > MAX_MANIFEST_SEGMENTS
    {
        return Err(Error::PayloadTooLarge(format!(
            "Number of object-backed segments must be <= {MAX_MANIFEST_SEGMENTS}"
        )));
    }
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut stored = Vec::new();
    let mut total = 0u64;
    let last = requested.len() - 1;
    for (i, r) in requested.into_iter().enumerate() {
        let (c, o) = match r.source {
            Source::Path(c, o) => (c, o),
            Source::Data(data) => {
                total += data.len() as u64;
                stored.push(Stored {
                    name: None,
                    hash: None,
                    bytes: None,
                    content_type: None,
                    last_modified: None,
                    range: None,
                    sub_slo: None,
                    data: Some(base64::engine::general_purpose::STANDARD.encode(&data)),
                });
                continue;
            }
        };
        let quoted = super::object::encode(&format!("/{c}/{o}"));
        if c == container && o == object {
            return Err(Error::bad_request(format!(
                "Index {i}: manifest must not include itself as a segment"
            )));
        }
        let Some(seg) = lookup(store, account, &c, &o, caller).await? else {
            problems.push((quoted, "404 Not Found".into()));
            continue;
        };
        let size = seg.size;
        let mut length = size;
        let mut range = None;
        if let Some((a, b)) = r.range {
            let (start, end) = match (a, b) {
                (Some(a), Some(b)) => (a, b.min(size.saturating_sub(1))),
                (Some(a), None) => (a, size.saturating_sub(1)),
                (None, Some(n)) => (size.saturating_sub(n), size.saturating_sub(1)),
                (None, None) => (0, size.saturating_sub(1)),
            };
            if size == 0 || start >= size || (a.is_none() && b == Some(0)) {
                problems.push((quoted.clone(), "Unsatisfiable Range".into()));
            } else if !(start == 0 && end == size - 1) {
                range = Some(format!("{start}-{end}"));
                length = end - start + 1;
            }
        }
        if length < 1 && i != last {
            problems.push((
                quoted.clone(),
                "Too small; each segment must be at least 1 byte.".into(),
            ));
        }
        if r.size.is_some_and(|s| s != size) {
            problems.push((quoted.clone(), "Size Mismatch".into()));
        }
        if r.etag.as_deref().is_some_and(|e| e != etag_of(&seg)) {
            problems.push((quoted.clone(), "Etag Mismatch".into()));
        }
        total += length;
        stored.push(Stored {
            name: Some(format!("/{c}/{o}")),
            hash: Some(etag_of(&seg).to_owned()),
            bytes: Some(size),
            content_type: Some(seg.content_type.clone()),
            last_modified: Some(iso(seg.timestamp)),
            range,
            sub_slo: is_slo(&seg).then_some(true),
            data: None,
        });
    }
    if !problems.is_empty() {
        let fmt = bulk::accept_format(headers);
        let body = bulk::report(fmt, &[], &problems);
        return Err(Error::Report {
            status: StatusCode::BAD_REQUEST,
            body,
            content_type: fmt.content_type(),
        });
    }
    let mut md5 = Md5::new();
    for s in &stored {
        let part = match (&s.data, &s.range) {
            (Some(d), _) => hex::encode(Md5::digest(
                base64::engine::general_purpose::STANDARD
                    .decode(d)
                    .unwrap_or_default(),
            )),
            (None, Some(r)) => format!("{}:{r};", s.hash.as_deref().unwrap_or_default()),
            (None, None) => s.hash.clone().unwrap_or_default(),
        };
        md5.update(part.as_bytes());
    }
    let slo_etag = hex::encode(md5.finalize());
    if let Some(e) = crate::http_util::header_str(headers, "etag")?
        && headers::unquote(e) != slo_etag
    {
        return Err(Error::Unprocessable(format!(
            "the manifest's ETag is {slo_etag}, not the {e} the request declared"
        )));
    }
    let json =
        serde_json::to_vec(&stored).map_err(|e| Error::internal("encoding a manifest", e))?;
    let files = store.files.clone();
    let written = tokio::task::spawn_blocking(move || files.write_bytes(&json))
        .await
        .map_err(Error::task_failed)??;
    let mut row = super::object::new_row(headers, object, written.id, total, written.md5)?;
    row.meta
        .insert("x-static-large-object".into(), "True".into());
    row.meta.insert(SLO_ETAG.into(), slo_etag.clone());
    row.meta
        .insert(MANIFEST_SIZE.into(), written.size.to_string());
    Ok((row, slo_etag))
}

/// A manifest copied into another account points at that account's segments: each
/// must exist there and be readable by the caller, or the copy is refused (400).
pub(super) async fn check_segments_in(
    store: &LocalStore,
    headers: &HeaderMap,
    account: &str,
    row: &ObjectRow,
    caller: &Caller,
) -> Result<()> {
    let mut problems = Vec::new();
    for s in manifest(store, row).await? {
        let Some(name) = s.name else { continue };
        let Some((c, o)) = name.trim_start_matches('/').split_once('/') else {
            continue;
        };
        let status = match lookup(store, account, c, o, caller).await {
            Ok(Some(_)) => continue,
            Ok(None) => StatusCode::NOT_FOUND,
            Err(e) => e.status(),
        };
        problems.push((
            super::object::encode(&name),
            format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let fmt = bulk::accept_format(headers);
    Err(Error::Report {
        status: StatusCode::BAD_REQUEST,
        body: bulk::report(fmt, &[], &problems),
        content_type: fmt.content_type(),
    })
}

/// The stored manifest of an SLO.
pub(super) async fn manifest(store: &LocalStore, row: &ObjectRow) -> Result<Vec<Stored>> {
    let path = store.files.path(&row.file);
    let raw = tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .map_err(Error::task_failed)?
        .map_err(|e| Error::internal("reading a manifest", e))?;
    serde_json::from_slice(&raw).map_err(|e| Error::internal("a stored manifest is not valid", e))
}

/// The length of each part (manifest entry) of an SLO.
pub(super) fn part_lengths(manifest: &[Stored]) -> Vec<u64> {
    manifest
        .iter()
        .map(
            |s| match (&s.data, s.range.as_deref().and_then(parse_range)) {
                (Some(d), _) => base64::engine::general_purpose::STANDARD
                    .decode(d)
                    .map_or(0, |b| b.len() as u64),
                (None, Some((Some(a), Some(b)))) => b - a + 1,
                (None, _) => s.bytes.unwrap_or_default(),
            },
        )
        .collect()
}

/// The manifest in the form a PUT takes (`?multipart-manifest=get&format=raw`).
pub(super) fn raw_form(segments: &[Stored]) -> Value {
    Value::Array(
        segments
            .iter()
            .map(|s| match &s.data {
                Some(d) => serde_json::json!({"data": d}),
                None => {
                    let mut v = serde_json::json!({
                        "path": s.name,
                        "etag": s.hash,
                        "size_bytes": s.bytes,
                    });
                    if let Some(r) = &s.range {
                        v["range"] = Value::String(r.clone());
                    }
                    v
                }
            })
            .collect(),
    )
}

/// The byte segments an SLO is made of, nested manifests expanded; a segment that
/// is gone or changed since the manifest was stored is a 409.
pub(super) async fn segments(
    store: &LocalStore,
    account: &str,
    row: &ObjectRow,
    caller: &Caller,
    depth: usize,
) -> Result<Vec<Segment>> {
    if depth > MAX_DEPTH {
        return Err(Error::Conflict(
            "too many levels of nested manifests".into(),
        ));
    }
    let mut out = Vec::new();
    for s in manifest(store, row).await? {
        if let Some(d) = &s.data {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(d)
                .unwrap_or_default();
            out.push(Segment::Data(Bytes::from(bytes)));
            continue;
        }
        let name = s.name.clone().unwrap_or_default();
        let (c, o) = name
            .trim_start_matches('/')
            .split_once('/')
            .ok_or_else(|| Error::broken(format!("bad segment name {name:?}")))?;
        // a segment the caller may not read makes the whole object unreadable: 409, as Swift
        let seg = lookup(store, account, c, o, caller)
            .await
            .map_err(|e| {
                let why = format!("segment {name} of the manifest cannot be read");
                match e.rule() {
                    Some(rule) => Error::conflict_by(rule, why),
                    None => Error::Conflict(why),
                }
            })?
            .ok_or_else(|| Error::Conflict(format!("segment {name} of the manifest is gone")))?;
        if s.hash.as_deref().is_some_and(|h| h != etag_of(&seg)) {
            return Err(Error::Conflict(format!(
                "segment {name} changed since the manifest was stored"
            )));
        }
        let (start, len) = match s.range.as_deref().and_then(parse_range) {
            Some((Some(a), Some(b))) => (a, b - a + 1),
            _ => (0, seg.size),
        };
        if is_slo(&seg) {
            let inner = Box::pin(segments(store, account, &seg, caller, depth + 1)).await?;
            out.extend(window(inner, start, len));
        } else {
            out.push(Segment::File {
                file: seg.file.clone(),
                offset: start,
                len,
            });
        }
    }
    Ok(out)
}

/// The part `[start, start + len)` of a sequence of segments.
fn window(segments: Vec<Segment>, start: u64, len: u64) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut at = 0u64;
    let end = start + len;
    for s in segments {
        let l = s.len();
        let (s0, s1) = (at, at + l);
        at = s1;
        if s1 <= start || s0 >= end {
            continue;
        }
        let from = start.max(s0) - s0;
        let to = end.min(s1) - s0;
        out.push(s.slice(from, to - from));
    }
    out
}

/// `DELETE ?multipart-manifest=delete`: the segments, then the manifest.
pub(super) async fn delete(
    store: &LocalStore,
    headers: &HeaderMap,
    account: &str,
    container: &ContainerRow,
    object: &str,
    caller: &Caller,
) -> Result<http::Response<crate::body::Body>> {
    let row = current(store, container, object)
        .await?
        .ok_or_else(|| not_found(&container.name, object))?;
    if !is_slo(&row) {
        return Err(Error::bad_request("Not an SLO manifest"));
    }
    let mut targets: Vec<(String, String)> = Vec::new();
    let mut pending = vec![row];
    while let Some(m) = pending.pop() {
        for s in manifest(store, &m).await? {
            let Some(name) = s.name else { continue };
            let Some((c, o)) = name.trim_start_matches('/').split_once('/') else {
                continue;
            };
            if s.sub_slo == Some(true)
                && let Some(sub) = lookup(store, account, c, o, caller).await?
                && is_slo(&sub)
            {
                pending.push(sub);
            }
            targets.push((c.to_owned(), o.to_owned()));
        }
    }
    targets.push((container.name.clone(), object.to_owned()));
    let mut outcome = Outcome::default();
    for (c, o) in targets {
        bulk::delete_one(store, account, &c, &o, caller, &mut outcome).await;
    }
    Ok(bulk::respond(bulk::accept_format(headers), &outcome))
}
