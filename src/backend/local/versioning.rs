//! Object versioning as Swift's `object_versioning` defines it (`X-Versions-Enabled`).
//!
//! A versioned container keeps every version of its objects in a hidden container,
//! `\0versions\0<container>`, each named `\0<object>\0<inverted version id>` so that an
//! object's versions list newest first. The container itself holds, for each object,
//! a link to its current version. A DELETE writes a delete marker version; `?versions`
//! lists the versions and `?version-id=` addresses one of them. An object written while
//! versioning was off is the "null" version, kept as a version of its own when the
//! next versioned write or delete replaces it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::db::{ContainerRow, Meta, ObjectRow};
use super::headers;
use super::listing::{self, Entry, Params};
use super::object::{self, authorize, current, encode, not_found};
use super::{Caller, LocalStore, set, slo, symlink};
use crate::body::{Body, RequestBody, full, status_only};
use crate::error::{Error, Result};
use crate::http_util::header_str;
use crate::swift::op::{Manifest, Operation};
use crate::swift::query;
use crate::swift::versions::{
    TICKS_PER_SECOND, hidden_container, parse_version, split_version_object, ticks_of, version_id,
    version_object,
};

/// Container sysmeta: whether new writes are versioned ("True"/"False").
const ENABLED: &str = "x-container-sysmeta-versions-enabled";
/// Container sysmeta: the hidden container holding the versions.
const CONTAINER: &str = "x-container-sysmeta-versions-container";
/// Object sysmeta of a link to a version.
const LINK: &str = "x-object-sysmeta-versions-symlink";
/// The ETag of the version a link points at (what listings show for the link).
pub(super) const LINK_ETAG: &str = "x-object-sysmeta-versions-target-etag";
/// The large-object ETag of a version that is a static large object.
const LINK_SLO_ETAG: &str = "x-object-sysmeta-versions-target-slo-etag";
/// The content type of a delete marker.
pub(super) const DELETE_MARKER: &str = "application/x-deleted;swift_versions_deleted=1";

/// A fresh version id: the current time, strictly after any id handed out before.
fn new_version() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = ticks_of(headers::now());
    let mut last = LAST.load(Ordering::SeqCst);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "on" | "1" | "t" | "y"
    )
}

/// The hidden container of a container whose versioning was ever enabled.
pub(super) fn hidden_of(c: &ContainerRow) -> Option<&str> {
    c.meta.get(CONTAINER).map(String::as_str)
}

/// Whether writes to the container are versioned now.
pub(super) fn enabled(c: &ContainerRow) -> bool {
    hidden_of(c).is_some() && c.meta.get(ENABLED).is_some_and(|v| truthy(v))
}

/// Whether an object row is a link to a version.
pub(super) fn is_link(row: &ObjectRow) -> bool {
    row.meta.get(LINK).is_some_and(|v| v == "true")
}

/// The version a link points at.
fn linked_version(row: &ObjectRow) -> Option<u64> {
    if !is_link(row) {
        return None;
    }
    let t = symlink::target(row)?;
    split_version_object(&t.object).map(|(_, v)| v)
}

/// `X-Versions-Enabled` of a container PUT or POST.
pub(super) fn requested(headers: &HeaderMap) -> Result<Option<bool>> {
    Ok(header_str(headers, "x-versions-enabled")?.map(truthy))
}

/// Checks a change of versioning before it is recorded; enabling creates the hidden
/// container first, so the flag never points at a container that does not exist.
pub(super) async fn prepare(
    store: &LocalStore,
    account: &str,
    container: &str,
    existing: Option<&ContainerRow>,
    on: bool,
) -> Result<()> {
    // legacy versioning (`X-Versions-Location`, `X-History-Location`) excludes this mode
    if existing.is_some_and(|c| c.meta.contains_key(super::history::LOCATION)) {
        return Err(Error::bad_request(
            "Cannot enable object versioning on a container that is already using the legacy versioned writes feature.",
        ));
    }
    if on {
        let (a, h) = (account.to_owned(), hidden_container(container));
        store
            .db(move |db| db.put_container(&a, &h, headers::now(), |_: &mut Meta| Ok(())))
            .await?
            .map_err(Error::BadRequest)?;
    }
    Ok(())
}

/// Records a change of versioning in the container's metadata.
pub(super) fn record(meta: &mut Meta, container: &str, on: bool) {
    meta.insert(ENABLED.into(), if on { "True" } else { "False" }.into());
    if on {
        meta.insert(CONTAINER.into(), hidden_container(container));
    }
}

async fn hidden_row(
    store: &LocalStore,
    account: &str,
    c: &ContainerRow,
) -> Result<Option<ContainerRow>> {
    match hidden_of(c) {
        Some(h) => store.container(account, h).await,
        None => Ok(None),
    }
}

/// The bytes a container's versions use (counted with the container, as in Swift).
pub(super) async fn versions_bytes(
    store: &LocalStore,
    account: &str,
    c: &ContainerRow,
) -> Result<u64> {
    Ok(hidden_row(store, account, c)
        .await?
        .map_or(0, |h| h.bytes_used))
}

/// `X-Versions-Enabled` and the bytes used, versions included, of a container HEAD or GET.
pub(super) async fn container_headers(
    store: &LocalStore,
    account: &str,
    c: &ContainerRow,
    h: &mut HeaderMap,
) -> Result<()> {
    if let Some(v) = c.meta.get(ENABLED) {
        set(h, "x-versions-enabled", v);
    }
    if hidden_of(c).is_some() {
        let extra = versions_bytes(store, account, c).await?;
        set(h, "x-container-bytes-used", c.bytes_used + extra);
    }
    Ok(())
}

/// Before a container is deleted: it goes only with all its versions (409), and takes
/// its hidden container with it.
pub(super) async fn delete_container(
    store: &LocalStore,
    account: &str,
    c: &ContainerRow,
) -> Result<()> {
    let Some(hidden) = hidden_of(c) else {
        return Ok(());
    };
    if c.object_count > 0 {
        // the container's own DELETE refuses, with its own reason
        return Ok(());
    }
    let (a, h) = (account.to_owned(), hidden.to_owned());
    match store.db(move |db| db.delete_container(&a, &h)).await? {
        Some(false) => Err(Error::Conflict(
            "Delete all versions before deleting container.".into(),
        )),
        _ => Ok(()),
    }
}

/// An account listing counts a container's versions in its bytes.
pub(super) async fn add_versions_bytes(
    store: &LocalStore,
    account: &str,
    c: &mut ContainerRow,
) -> Result<()> {
    if hidden_of(c).is_some() {
        c.bytes_used += versions_bytes(store, account, c).await?;
    }
    Ok(())
}

/// The hidden container a versioned write goes to.
async fn versions_container(
    store: &LocalStore,
    account: &str,
    c: &ContainerRow,
) -> Result<ContainerRow> {
    hidden_row(store, account, c).await?.ok_or_else(|| {
        Error::Conflict(
            "The versions container does not exist. You may want to re-enable object versioning."
                .into(),
        )
    })
}

/// An object written while versioning was off becomes a version of its own before the
/// next versioned write or delete replaces it.
async fn archive_current(
    store: &LocalStore,
    c: &ContainerRow,
    hidden: &ContainerRow,
    object: &str,
) -> Result<()> {
    let Some(cur) = current(store, c, object).await? else {
        return Ok(());
    };
    if is_link(&cur) {
        return Ok(());
    }
    let file = store.link_copy(&cur.file).await?;
    let version = ObjectRow {
        name: version_object(object, ticks_of(cur.timestamp)),
        file,
        delete_at: None,
        ..cur
    };
    object::commit(store, hidden, version).await
}

/// The metadata a link keeps from the write that made it: the user's, not what makes
/// the version a large object or a symlink.
fn link_meta(meta: &Meta) -> Meta {
    meta.iter()
        .filter(|(k, _)| {
            !k.contains("-sysmeta-") && *k != "x-static-large-object" && *k != "x-object-manifest"
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Points the container's `object` at a version.
#[allow(clippy::too_many_arguments)]
async fn write_link(
    store: &LocalStore,
    account: &str,
    c: &ContainerRow,
    hidden: &ContainerRow,
    object: &str,
    ticks: u64,
    version: &ObjectRow,
    content_type: &str,
    meta: Meta,
    delete_at: Option<u64>,
) -> Result<()> {
    let mut link = store.empty_row(object.to_owned(), content_type).await?;
    link.meta = meta;
    link.delete_at = delete_at;
    let target = symlink::Target {
        account: account.to_owned(),
        container: hidden.name.clone(),
        object: version_object(object, ticks),
        etag: None,
    };
    symlink::store(&mut link.meta, &target, Some(version.size));
    // the link to a version is as much its writer's as the version
    object::mark_made(&mut link.meta, object::made_by_owner(version));
    link.meta.insert(LINK.into(), "true".into());
    link.meta.insert(LINK_ETAG.into(), version.etag.clone());
    if slo::is_slo(version) {
        link.meta
            .insert(LINK_SLO_ETAG.into(), slo::etag_of(version).to_owned());
    }
    object::commit(store, c, link).await
}

/// Stores a new object in a versioned container: the version, then the link to it.
/// Returns the new version's id.
pub(super) async fn commit(
    store: &LocalStore,
    account: &str,
    c: &ContainerRow,
    mut row: ObjectRow,
) -> Result<String> {
    let hidden = match versions_container(store, account, c).await {
        Ok(h) => h,
        Err(e) => {
            store.files.discard(&row.file);
            return Err(e);
        }
    };
    let object = std::mem::take(&mut row.name);
    if let Err(e) = archive_current(store, c, &hidden, &object).await {
        store.files.discard(&row.file);
        return Err(e);
    }
    let ticks = new_version();
    let meta = link_meta(&row.meta);
    let delete_at = row.delete_at.take();
    // the link's content type is the version's, without parameters
    let content_type = row
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    row.name = version_object(&object, ticks);
    row.timestamp = ticks as f64 / TICKS_PER_SECOND;
    let version = row.clone();
    object::commit(store, &hidden, row).await?;
    write_link(
        store,
        account,
        c,
        &hidden,
        &object,
        ticks,
        &version,
        &content_type,
        meta,
        delete_at,
    )
    .await?;
    Ok(version_id(ticks))
}

fn with_version_header(mut resp: Response<Body>, name: &'static str, v: &str) -> Response<Body> {
    set(resp.headers_mut(), name, v);
    resp
}

fn not_found_with(version: &str, content_type: Option<&str>) -> Response<Body> {
    let mut resp = Error::NotFound("Not Found".into()).into_response("");
    set(resp.headers_mut(), "x-object-version-id", version);
    if let Some(ct) = content_type {
        set(resp.headers_mut(), "content-type", ct);
    }
    resp
}

/// A DELETE in a container whose versioning is on: a delete marker is written and the
/// link removed; the data stays as the older versions.
pub(super) async fn delete(
    store: &LocalStore,
    account: &str,
    c: &ContainerRow,
    object: &str,
) -> Result<Response<Body>> {
    let hidden = versions_container(store, account, c).await?;
    archive_current(store, c, &hidden, object).await?;
    let ticks = new_version();
    let mut marker = store
        .empty_row(version_object(object, ticks), DELETE_MARKER)
        .await?;
    marker.timestamp = ticks as f64 / TICKS_PER_SECOND;
    object::commit(store, &hidden, marker).await?;
    let id = version_id(ticks);
    if object::delete_plain(store, c, object).await? {
        Ok(with_version_header(
            status_only(StatusCode::NO_CONTENT),
            "x-object-version-id",
            &id,
        ))
    } else {
        Ok(not_found_with(&id, None))
    }
}

/// Marks a GET or HEAD answer of a versioned container's object with its version, and
/// names the version instead of the hidden container where the answer points.
pub(super) fn annotate(
    h: &mut HeaderMap,
    account: &str,
    container: &str,
    object: &str,
    hidden: &str,
) {
    set(h, "x-object-version-id", "null");
    let decode = |v: &HeaderValue| {
        percent_decode_str(&String::from_utf8_lossy(v.as_bytes()))
            .decode_utf8_lossy()
            .into_owned()
    };
    let versioned = format!("/v1/{account}/{hidden}/");
    if let Some(loc) = h.get(header::CONTENT_LOCATION).map(decode)
        && let Some(name) = loc.strip_prefix(&versioned)
        && let Some((_, ticks)) = split_version_object(name)
    {
        let id = version_id(ticks);
        set(h, "x-object-version-id", &id);
        set(
            h,
            "content-location",
            format!(
                "{}?version-id={id}",
                encode(&format!("/v1/{account}/{container}/{object}"))
            ),
        );
    }
    if let Some(t) = h.get("x-symlink-target").map(decode)
        && let Some(name) = t.strip_prefix(&format!("{hidden}/"))
        && let Some((_, ticks)) = split_version_object(name)
    {
        let id = version_id(ticks);
        set(h, "x-object-version-id", &id);
        set(
            h,
            "x-symlink-target",
            format!(
                "{}?version-id={id}",
                encode(&format!("{container}/{object}"))
            ),
        );
    }
}

/// The version a link points at; any other row as it is.
pub(super) async fn resolve(store: &LocalStore, row: ObjectRow) -> Result<Option<ObjectRow>> {
    if !is_link(&row) {
        return Ok(Some(row));
    }
    let Some(t) = symlink::target(&row) else {
        return Ok(None);
    };
    match store.container(&t.account, &t.container).await? {
        Some(hidden) => current(store, &hidden, &t.object).await,
        None => Ok(None),
    }
}

/// Older versions are the account owner's alone: neither container ACLs nor the
/// account's read-only or read-write grants reach them (as through the proxy).
fn versions_of(caller: &Caller, account: &str) -> Result<()> {
    if caller.owns(account) {
        Ok(())
    } else {
        Err(caller.denied(account))
    }
}

/// What `?version-id=` of a COPY source names: the container and object to read.
pub(super) async fn copy_source(
    store: &LocalStore,
    account: &str,
    c: ContainerRow,
    object: &str,
    version: &str,
    caller: &Caller,
) -> Result<(ContainerRow, String)> {
    if version == "null" {
        if current(store, &c, object)
            .await?
            .is_some_and(|r| is_link(&r))
        {
            return Err(not_found(&c.name, object));
        }
        return Ok((c, object.to_owned()));
    }
    let ticks =
        parse_version(version).ok_or_else(|| Error::bad_request("Invalid version parameter"))?;
    if hidden_of(&c).is_none() {
        return Err(Error::bad_request(
            "version-aware operations require that the container is versioned",
        ));
    }
    let hidden = hidden_row(store, account, &c).await?;
    versions_of(caller, account)?;
    let hidden = hidden.ok_or_else(|| not_found(&c.name, object))?;
    let name = version_object(object, ticks);
    if current(store, &hidden, &name)
        .await?
        .is_some_and(|r| r.content_type == DELETE_MARKER)
    {
        return Err(not_found(&c.name, object));
    }
    Ok((hidden, name))
}

/// A request with `?version-id=`: GET, HEAD, DELETE or PUT of one version.
#[allow(clippy::too_many_arguments)]
pub(super) async fn with_version<B: RequestBody>(
    store: &LocalStore,
    req: Request<B>,
    op: &Operation,
    account: &str,
    container: &str,
    c: Option<ContainerRow>,
    object: &str,
    version: &str,
    caller: &Caller,
) -> Result<Response<Body>> {
    let method = req.method().clone();
    if method == Method::POST {
        return Err(Error::bad_request(
            "POST to a specific version is not allowed",
        ));
    }
    let versioned = c.as_ref().and_then(hidden_of).is_some();
    if !versioned && version != "null" {
        return Err(Error::bad_request(
            "version-aware operations require that the container is versioned",
        ));
    }
    let ticks = match version {
        "null" => None,
        v => Some(parse_version(v).ok_or_else(|| Error::bad_request("Invalid version parameter"))?),
    };
    match (method, ticks) {
        (Method::GET | Method::HEAD, None) => {
            authorize(caller, account, c.as_ref(), false)?;
            let c = c.ok_or_else(|| not_found(container, object))?;
            if current(store, &c, object)
                .await?
                .is_some_and(|r| is_link(&r))
            {
                return Ok(not_found_with("null", None));
            }
            let resp = object::read(store, &req, op, account, &c, object, caller).await?;
            Ok(with_version_header(resp, "x-object-version-id", "null"))
        }
        (Method::GET | Method::HEAD, Some(ticks)) => {
            let c = c.ok_or_else(|| not_found(container, object))?;
            let hidden = hidden_row(store, account, &c).await?;
            versions_of(caller, account)?;
            let hidden = hidden.ok_or_else(|| not_found(container, object))?;
            let name = version_object(object, ticks);
            let id = version_id(ticks);
            match current(store, &hidden, &name).await? {
                None => return Ok(not_found_with(&id, None)),
                Some(r) if r.content_type == DELETE_MARKER => {
                    return Ok(not_found_with(&id, Some(DELETE_MARKER)));
                }
                Some(_) => {}
            }
            let resp = object::read(store, &req, op, account, &hidden, &name, caller).await?;
            Ok(with_version_header(resp, "x-object-version-id", &id))
        }
        (Method::DELETE, None) => {
            authorize(caller, account, c.as_ref(), true)?;
            let c = c.ok_or_else(|| not_found(container, object))?;
            super::history::delete(store, account, &c, object, caller).await
        }
        (Method::DELETE, Some(ticks)) => {
            let manifest_delete = op.manifest == Some(Manifest::Delete);
            let c = c.ok_or_else(|| not_found(container, object))?;
            let hidden = hidden_row(store, account, &c).await?;
            versions_of(caller, account)?;
            let hidden = hidden.ok_or_else(|| not_found(container, object))?;
            let linked = current(store, &c, object)
                .await?
                .and_then(|r| linked_version(&r));
            let current_id = if linked == Some(ticks) {
                // the current version goes: its link first
                object::delete_plain(store, &c, object).await?;
                "null".to_owned()
            } else {
                linked.map_or_else(|| "null".to_owned(), version_id)
            };
            let name = version_object(object, ticks);
            let mut resp = if manifest_delete {
                slo::delete(store, req.headers(), account, &hidden, &name, caller).await?
            } else if object::delete_plain(store, &hidden, &name).await? {
                status_only(StatusCode::NO_CONTENT)
            } else {
                Error::NotFound("Not Found".into()).into_response("")
            };
            set(resp.headers_mut(), "x-object-version-id", version);
            set(
                resp.headers_mut(),
                "x-object-current-version-id",
                current_id,
            );
            Ok(resp)
        }
        (Method::PUT, None) => Err(Error::bad_request("Invalid version parameter")),
        (Method::PUT, Some(ticks)) => {
            // a restored version is read back by whoever may read the object
            versions_of(caller, account)?;
            authorize(caller, account, c.as_ref(), true)?;
            let c = c.ok_or_else(|| Error::NotFound(format!("no container {container:?}")))?;
            restore(store, req, account, &c, object, ticks).await
        }
        (m, _) => Err(Error::MethodNotAllowed {
            method: m.to_string(),
            allow: "GET, HEAD, PUT, DELETE, COPY",
        }),
    }
}

/// `PUT ?version-id=` with an empty body makes that version the current one.
async fn restore<B: RequestBody>(
    store: &LocalStore,
    req: Request<B>,
    account: &str,
    c: &ContainerRow,
    object: &str,
    ticks: u64,
) -> Result<Response<Body>> {
    let headers = req.headers().clone();
    let chunked = header_str(&headers, "transfer-encoding")?
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
    let has_body = if chunked {
        let mut body = req.into_body();
        let mut seen = false;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::bad_request(format!("reading the body: {e}")))?;
            if frame.data_ref().is_some_and(|d: &Bytes| !d.is_empty()) {
                seen = true;
                break;
            }
        }
        seen
    } else {
        match header_str(&headers, "content-length")? {
            None => {
                return Err(Error::LengthRequired(
                    "Missing Content-Length header.".into(),
                ));
            }
            Some(v) => v.trim() != "0",
        }
    };
    if has_body {
        return Err(Error::bad_request(
            "PUT version-id requests require a zero byte body",
        ));
    }
    let hidden = versions_container(store, account, c).await?;
    let version = current(store, &hidden, &version_object(object, ticks))
        .await?
        .ok_or_else(|| Error::NotFound("The specified version does not exist".into()))?;
    let meta = object::request_meta(&headers)?;
    let delete_at = headers::delete_at(&headers)?;
    write_link(
        store,
        account,
        c,
        &hidden,
        object,
        ticks,
        &version,
        &version.content_type,
        meta,
        delete_at,
    )
    .await?;
    let mut resp = status_only(StatusCode::CREATED);
    let h = resp.headers_mut();
    set(h, "etag", slo::etag_of(&version));
    set(h, "x-object-version-id", version_id(ticks));
    set(h, "last-modified", headers::http_date(headers::now()));
    Ok(resp)
}

/// A link's entry in the container's own listing: the version's size and ETag, and
/// the version it points at.
pub(super) fn listing_json(o: &ObjectRow, account: &str, container: &str) -> Value {
    let mut v = object::listing_json(o);
    if let Some(ticks) = linked_version(o) {
        v["bytes"] = json!(symlink::target_bytes(o).unwrap_or_default());
        v["hash"] = json!(o.meta.get(LINK_ETAG).cloned().unwrap_or_default());
        v["version_symlink"] = json!(true);
        if let Some(e) = o.meta.get(LINK_SLO_ETAG) {
            v["slo_etag"] = json!(format!("\"{e}\""));
        }
        if let Some(m) = v.as_object_mut() {
            m.remove("symlink_etag");
            m.remove("symlink_bytes");
        }
        v["symlink_path"] = json!(format!(
            "{}?version-id={}",
            encode(&format!("/v1/{account}/{container}/{}", o.name)),
            version_id(ticks)
        ));
    }
    v
}

/// A link as the container's XML listing shows it: the version's size and ETag.
pub(super) fn listing_row(o: &ObjectRow) -> ObjectRow {
    let mut row = o.clone();
    if is_link(o) {
        row.size = symlink::target_bytes(o).unwrap_or_default();
        row.etag = o.meta.get(LINK_ETAG).cloned().unwrap_or_default();
    }
    row
}

/// Whether `Accept` allows JSON, the only format of a versions listing.
fn accepts_json(pairs: &[(String, String)], headers: &HeaderMap) -> bool {
    if let Some(f) = query::param(pairs, "format") {
        return f.eq_ignore_ascii_case("json");
    }
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.trim().is_empty()
        || accept.split(',').any(|item| {
            let mut parts = item.split(';');
            let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            !refused && matches!(mime.as_str(), "application/json" | "application/*" | "*/*")
        })
}

/// `GET <container>?versions`: every version of every object, newest first per name,
/// with `version_id` and `is_latest`; objects written while versioning was off are
/// listed as version `null`. JSON only.
pub(super) async fn list_versions<B: RequestBody>(
    req: &Request<B>,
    pairs: &[(String, String)],
    store: &LocalStore,
    account: &str,
    c: &ContainerRow,
) -> Result<Response<Body>> {
    if !accepts_json(pairs, req.headers()) {
        return Err(Error::NotAcceptable);
    }
    let params = crate::swift::listing::params(pairs)?;
    let hidden_marker = match (&params.marker, query::param(pairs, "version_marker")) {
        (Some(m), None) => Some(format!("\0{m}\0:")),
        (Some(m), Some("null")) => Some(format!("\0{m}\0")),
        (Some(m), Some(v)) => Some(version_object(
            m,
            parse_version(v).ok_or_else(|| Error::bad_request("invalid version_marker param"))?,
        )),
        (None, Some(_)) => {
            return Err(Error::bad_request("version_marker param requires marker"));
        }
        (None, None) => None,
    };
    if params
        .delimiter
        .as_ref()
        .is_some_and(|d| d.chars().any(|ch| "0123456789.\0".contains(ch)))
    {
        return Err(Error::bad_request("invalid delimiter param"));
    }
    let hidden = match hidden_of(c) {
        Some(_) => hidden_row(store, account, c).await?,
        None => store.container(account, &hidden_container(&c.name)).await?,
    };
    let hidden_params = Params {
        prefix: format!("\0{}", params.prefix),
        delimiter: params.delimiter.clone(),
        marker: hidden_marker,
        end_marker: None,
        limit: params.limit,
        reverse: params.reverse,
        path: false,
    };
    let (db, id, hidden_id) = (store.db.clone(), c.id, hidden.as_ref().map(|h| h.id));
    let (limit, reverse, marker) = (params.limit, params.reverse, params.marker.clone());
    let (primary, versions) = tokio::task::spawn_blocking(move || -> Result<_> {
        let primary = listing::list(&params, |page| db.list_objects(id, page))?;
        let versions = match hidden_id {
            Some(h) => Some(listing::list(&hidden_params, |page| {
                db.list_objects(h, page)
            })?),
            None => None,
        };
        Ok((primary, versions))
    })
    .await
    .map_err(Error::task_failed)??;

    let mut subdirs = BTreeSet::new();
    let mut null_listing = Vec::new();
    let mut links: HashMap<String, ObjectRow> = HashMap::new();
    let mut latest = BTreeSet::new();
    for e in primary {
        match e {
            Entry::Subdir(s) => {
                subdirs.insert(s);
            }
            Entry::Item(row) => match symlink::target(&row) {
                Some(t) if is_link(&row) => {
                    links.insert(t.object, row);
                }
                _ => {
                    let mut v = object::listing_json(&row);
                    v["version_id"] = json!("null");
                    v["is_latest"] = json!(true);
                    latest.insert(row.name.clone());
                    null_listing.push((row.name, v));
                }
            },
        }
    }
    let mut version_listing = Vec::new();
    let hidden_found = versions.is_some();
    for e in versions.unwrap_or_default() {
        match e {
            Entry::Subdir(s) => {
                let user = s.trim_start_matches('\0');
                subdirs.insert(user.split('\0').next().unwrap_or(user).to_owned());
            }
            Entry::Item(row) => {
                let Some((name, ticks)) = split_version_object(&row.name) else {
                    continue;
                };
                let name = name.to_owned();
                let is_latest = links.remove(&row.name).is_some()
                    || (row.content_type == DELETE_MARKER && !latest.contains(&name));
                if is_latest {
                    latest.insert(name.clone());
                }
                let mut v = object::listing_json(&row);
                v["name"] = json!(name);
                v["version_id"] = json!(version_id(ticks));
                v["is_latest"] = json!(is_latest);
                version_listing.push((name, v));
            }
        }
    }
    // as in a plain listing, the marker's own pseudo-directory was on the page before
    if let Some(m) = &marker {
        subdirs.remove(m);
    }
    // links whose versions this page did not show still name the current version
    let mut broken: Vec<(String, Value)> = links
        .into_iter()
        .filter_map(|(target, row)| {
            let (name, ticks) = split_version_object(&target)?;
            let is_latest = if hidden_found {
                true
            } else {
                latest.insert(name.to_owned())
            };
            Some((
                name.to_owned(),
                json!({
                    "name": name,
                    "is_latest": is_latest,
                    "version_id": version_id(ticks),
                    "content_type": row.content_type,
                    "bytes": symlink::target_bytes(&row).unwrap_or_default(),
                    "hash": row.meta.get(LINK_ETAG).cloned().unwrap_or_default(),
                    "last_modified": headers::iso(row.timestamp),
                }),
            ))
        })
        .collect();
    broken.sort_by(|a, b| a.0.cmp(&b.0));
    let mut all: Vec<(String, Value)> = null_listing;
    all.extend(version_listing);
    all.extend(
        subdirs
            .into_iter()
            .map(|s| (s.clone(), json!({ "subdir": s }))),
    );
    all.extend(broken);
    if reverse {
        all.sort_by(|a, b| b.0.cmp(&a.0));
    } else {
        all.sort_by(|a, b| a.0.cmp(&b.0));
    }
    all.truncate(limit);
    let body = serde_json::to_string(&all.into_iter().map(|(_, v)| v).collect::<Vec<_>>())
        .map_err(|e| Error::internal("encoding a version listing", e))?;
    let mut resp = Response::new(full(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    Ok(resp)
}
