//! Copies: `COPY` with `Destination` and `PUT` with `X-Copy-From`, within an account or
//! across accounts, with the metadata Swift keeps.

use http::{HeaderMap, Response};

use super::read::{
    Part, current, follow_links, part_number, segment_pieces, select_part, served, without_body,
};
use super::write::{check_quota, created, save};
use super::{authorize, encode, mark_maker, not_found, request_meta};
use crate::backend::local::db::{Meta, ObjectRow};
use crate::backend::local::files::{Piece, stream};
use crate::backend::local::headers::{self, ByteRange, Ranges, delete_at, http_date, unquote};
use crate::backend::local::{Caller, LocalStore, set, slo, versioning};
use crate::body::Body;
use crate::error::{Error, Result};
use crate::http_util::{header_str, header_true};
use crate::swift::limits::MAX_FILE_SIZE;
use crate::swift::op::{Manifest, Operation};

/// Copies `src` to `dest`; the copy gets the source's metadata merged with the
/// request's, or only the request's with `X-Fresh-Metadata: true`.
pub(super) async fn copy(
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
        source = follow_links(store, &sc, source, caller)
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
    // as Swift: a copy's conditions judge its source
    if let Some(status) = headers::conditional(headers, unquote(&served.etag), source.timestamp) {
        let mut h = HeaderMap::new();
        set(&mut h, "etag", format!("\"{}\"", unquote(&served.etag)));
        set(&mut h, "last-modified", http_date(source.timestamp));
        return Ok(without_body(status, h));
    }
    if header_str(headers, "if-none-match")?.is_some_and(|m| m.trim() != "*") {
        return Err(Error::bad_request("If-None-Match only supports *"));
    }
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
    mark_maker(&mut meta, caller, dest_account);
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
    // refused before a body is made: a refusal leaves nothing in the store's files
    let delete_at = delete_at(headers)?;
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
                .await?;
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
        delete_at,
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
