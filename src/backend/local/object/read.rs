//! Reading objects: GET and HEAD, with ranges, conditions, `?part-number`, and large
//! objects (dynamic and static) served from their segments; links followed.

use std::fs::File;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use md5::{Digest, Md5};

use super::{authorize, check_manifest, not_found};
use crate::backend::local::db::{ContainerRow, ObjectRow, Page};
use crate::backend::local::files::{Piece, stream};
use crate::backend::local::headers::{self, ByteRange, Ranges, http_date, unquote, x_timestamp};
use crate::backend::local::listing;
use crate::backend::local::{Caller, LocalStore, put_meta, set, slo, symlink, versioning};
use crate::body::{Body, RequestBody, empty, status_only};
use crate::error::{Error, Result};
use crate::swift::limits::SYMLOOP_MAX;
use crate::swift::op::{Manifest, Operation};
use crate::swift::query;

/// A part of a large object: a range of a body file, or bytes held in a manifest.
pub(in crate::backend::local) enum Segment {
    File { file: String, offset: u64, len: u64 },
    Data(Bytes),
}

impl Segment {
    pub(in crate::backend::local) fn len(&self) -> u64 {
        match self {
            Segment::File { len, .. } => *len,
            Segment::Data(b) => b.len() as u64,
        }
    }

    /// `len` bytes of this segment from `from`.
    pub(in crate::backend::local) fn slice(self, from: u64, len: u64) -> Segment {
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
pub(super) struct Served {
    pub(super) row: ObjectRow,
    pub(super) etag: String,
    pub(super) size: u64,
    pub(super) segments: Option<Vec<Segment>>,
    /// The lengths of an SLO's parts (its manifest entries), for `?part-number=`.
    pub(super) parts: Option<Vec<u64>>,
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
pub(super) enum Part {
    All,
    Range { range: ByteRange, count: usize },
    Beyond { count: usize },
}

pub(super) fn part_number(pairs: &[(String, String)]) -> Result<Option<u64>> {
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
pub(super) fn in_memory(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The byte range of part `n`: an SLO's n-th manifest entry; a plain object has one part.
pub(super) fn select_part(served: &Served, n: Option<u64>) -> Part {
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

/// Bodies up to this size are read whole with their row: one trip to the blocking pool.
pub(super) const SMALL_BODY: u64 = 64 * 1024;

/// An object's body, opened (or, when small, read) together with its row.
pub(super) enum Loaded {
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
pub(super) async fn load(
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
        .map_err(crate::backend::local::db_error)?;
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
    let mut file = super::super::files::open_body(&store.files.path(&row.file)).map_err(missing)?;
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
pub(in crate::backend::local) async fn current(
    store: &LocalStore,
    container: &ContainerRow,
    object: &str,
) -> Result<Option<ObjectRow>> {
    Ok(load(store, container, object, |_| false)
        .await?
        .map(|(row, _)| row))
}

/// Resolves a dynamic large object's segments (`X-Object-Manifest`), in name order.
pub(super) async fn dlo_segments(
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
                Some(_) => segments.extend(follow_links(store, &c, o, caller).await?),
                None => segments.push(o),
            }
        }
    }
    Ok(segments)
}

/// Whether an object is served as its own body: no large object to assemble.
pub(super) fn served_whole(row: &ObjectRow, manifest_get: bool) -> bool {
    !row.meta.contains_key("x-object-manifest") && !slo::is_slo(row) && !manifest_get
}

pub(super) async fn served(
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
pub(super) fn segment_pieces(
    store: &LocalStore,
    segments: &[Segment],
    range: ByteRange,
) -> Vec<Piece> {
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

/// The object a chain of symlinks from `row`, an object of `container`, ends at (`row`
/// itself when it is no link); `None` when the chain is broken.
pub(in crate::backend::local) async fn follow_links(
    store: &LocalStore,
    container: &ContainerRow,
    mut row: ObjectRow,
    caller: &Caller,
) -> Result<Option<ObjectRow>> {
    let mut depth = 0;
    let mut narrowed = caller.past(container, &row);
    while let Some(t) = symlink::target(&row) {
        let caller = narrowed.as_ref().unwrap_or(caller);
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
        if let Some(c) = caller.past(&tc, &next) {
            narrowed = Some(c);
        }
        row = next;
    }
    Ok(Some(row))
}

/// A GET or HEAD; symlinks are followed unless `?symlink=get` asks for the link.
pub(in crate::backend::local) async fn read<B: RequestBody>(
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
pub(super) async fn read_at<B: RequestBody>(
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
    // what the object leads to is judged past its container
    let narrowed = caller.past(container, &row);
    let caller = narrowed.as_ref().unwrap_or(caller);
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
pub(super) fn without_body(status: StatusCode, mut h: HeaderMap) -> Response<Body> {
    let mut resp = status_only(status);
    h.remove(header::CONTENT_LENGTH);
    for (name, value) in h {
        if let Some(name) = name {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}
