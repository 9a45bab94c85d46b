//! Writing objects: PUT (streamed to disk, MD5 checked, quotas), POST (metadata), and
//! the commit of a new body that both share with copies.

use http::{HeaderMap, Request, Response, StatusCode, header};

use super::read::current;
use super::{authorize, content_type, mark_maker, not_found, request_meta};
use crate::backend::local::db::{ContainerRow, ObjectRow};
use crate::backend::local::files::Written;
use crate::backend::local::headers::{self, delete_at, http_date, unquote};
use crate::backend::local::{Caller, LocalStore, history, set, slo, symlink, versioning};
use crate::body::{Body, RequestBody, status_only};
use crate::error::{Error, Result};
use crate::http_util::header_str;
use crate::swift::limits::MAX_FILE_SIZE;
use crate::swift::op::{Manifest, Operation};

/// Checks the preconditions of a PUT: `If-None-Match: *` and the declared length.
pub(super) async fn check_put(
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
pub(in crate::backend::local) async fn check_quota(
    store: &LocalStore,
    account: &str,
    container: &ContainerRow,
    bytes: u64,
) -> Result<()> {
    let limit = |meta: &crate::backend::local::db::Meta, key: &str| {
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
pub(in crate::backend::local) async fn commit(
    store: &LocalStore,
    container: &ContainerRow,
    row: ObjectRow,
) -> Result<()> {
    let files = store.files.clone();
    let id = row.file.clone();
    tokio::task::spawn_blocking(move || files.commit(&id))
        .await
        .map_err(Error::task_failed)?
        .map_err(|e| Error::io("storing an object body", e))?;
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
pub(super) async fn save(
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

pub(super) fn created(etag: &str, timestamp: f64, version: Option<String>) -> Response<Body> {
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
pub(in crate::backend::local) fn new_row(
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

pub(super) async fn put<B: RequestBody>(
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
        let (mut row, slo_etag) = slo::put(
            store,
            &headers,
            req.into_body(),
            account,
            &container.name,
            object,
            caller,
        )
        .await?;
        mark_maker(&mut row.meta, caller, account);
        let timestamp = row.timestamp;
        let version = save(store, account, container, row).await?;
        return Ok(created(&format!("\"{slo_etag}\""), timestamp, version));
    }
    let expected_etag = header_str(&headers, "etag")?.map(|e| unquote(e).to_ascii_lowercase());
    check_quota(store, account, container, length.unwrap_or(0)).await?;
    let written = store
        .files
        .write(req.into_body(), MAX_FILE_SIZE, length)
        .await?;
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
    mark_maker(&mut row.meta, caller, account);
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

pub(super) async fn post(
    store: &LocalStore,
    headers: &HeaderMap,
    account: &str,
    container: &ContainerRow,
    object: &str,
    caller: &Caller,
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
    mark_maker(&mut meta, caller, account);
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
    store.room_for_metadata()?;
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
        return Box::pin(post(store, &h, &t.account, &hc, &t.object, caller)).await;
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
