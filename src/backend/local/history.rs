//! Swift's legacy versioned writes: `X-Versions-Location` (stack mode) and
//! `X-History-Location` (history mode) name an archive container in the same account.
//!
//! An overwrite first copies the current object to the archive, as
//! `<3-hex-digit name length><name>/<timestamp>`. A DELETE in stack mode restores the
//! newest archived copy in place of the object; in history mode it archives the object
//! and writes a delete marker.

use http::{HeaderMap, Response, StatusCode};
use percent_encoding::percent_decode_str;

use super::db::{ContainerRow, Meta, ObjectRow};
use super::headers::{self, x_timestamp};
use super::listing::{self, Entry, Params};
use super::object::{self, current, not_found};
use super::versioning::DELETE_MARKER;
use super::{Caller, LocalStore, set};
use crate::body::{Body, status_only};
use crate::error::{Error, Result};
use crate::http_util::header_str;
use crate::swift::limits::LISTING_LIMIT;
use crate::swift::names;

/// Container sysmeta: the archive container, as the client named it (URL-encoded).
pub(super) const LOCATION: &str = "x-container-sysmeta-versions-location";
/// Container sysmeta: `stack` or `history`.
const MODE: &str = "x-container-sysmeta-versions-mode";

const VERSIONS: &str = "x-versions-location";
const HISTORY: &str = "x-history-location";

/// What a container PUT or POST asks of legacy versioning.
#[derive(Debug, Clone)]
pub(super) enum Change {
    Set { location: String, history: bool },
    Remove,
}

/// Reads `X-Versions-Location`, `X-History-Location` and their `X-Remove-` forms.
pub(super) fn requested(headers: &HeaderMap) -> Result<Option<Change>> {
    let mut versions = header_str(headers, VERSIONS)?;
    let mut history = header_str(headers, HISTORY)?;
    if let (Some(v), Some(h)) = (versions, history) {
        if h.is_empty() {
            history = None;
        } else if !v.is_empty() {
            return Err(Error::bad_request(
                "Only one of X-Versions-Location or X-History-Location may be specified",
            ));
        } else {
            versions = None;
        }
    }
    let set = match (versions, history) {
        (Some(v), _) => Some((v, false)),
        (None, Some(h)) => Some((h, true)),
        (None, None) => None,
    };
    match set {
        Some(("", _)) => Ok(Some(Change::Remove)),
        Some((location, _)) if location.contains('/') => Err(Error::PreconditionFailed(
            "Container name cannot contain slashes".into(),
        )),
        Some((location, history)) => {
            // the archive is a container like any other: never one of the store's own
            let name = names::decode(location).ok_or_else(|| {
                Error::PreconditionFailed(
                    "Invalid UTF8 or contains NULL: the versions location must be UTF-8 text \
                     without NUL"
                        .into(),
                )
            })?;
            names::check_container(&name)?;
            Ok(Some(Change::Set {
                location: location.to_owned(),
                history,
            }))
        }
        None => {
            let remove = ["x-remove-versions-location", "x-remove-history-location"]
                .iter()
                .any(|k| headers.get(*k).is_some_and(|v| !v.is_empty()));
            Ok(remove.then_some(Change::Remove))
        }
    }
}

/// Records a change in the container's metadata.
pub(super) fn record(meta: &mut Meta, change: &Change) {
    match change {
        Change::Set { location, history } => {
            meta.insert(LOCATION.into(), location.clone());
            meta.insert(
                MODE.into(),
                if *history { "history" } else { "stack" }.into(),
            );
        }
        Change::Remove => {
            meta.remove(LOCATION);
            meta.remove(MODE);
        }
    }
}

fn history_mode(c: &ContainerRow) -> bool {
    c.meta.get(MODE).is_some_and(|m| m == "history")
}

/// `X-Versions-Location` or `X-History-Location` of a container HEAD or GET.
pub(super) fn container_headers(c: &ContainerRow, h: &mut HeaderMap) {
    if let Some(location) = c.meta.get(LOCATION) {
        let name = if history_mode(c) { HISTORY } else { VERSIONS };
        set(h, name, location);
    }
}

/// The archive container of a container with legacy versioning.
fn archive_name(c: &ContainerRow) -> Option<String> {
    let location = c.meta.get(LOCATION)?;
    let decoded = percent_decode_str(location).decode_utf8_lossy();
    Some(decoded.split('/').next().unwrap_or_default().to_owned())
}

/// The archive container when there is one to write to; a missing one fails the write
/// (412), as in Swift.
async fn archive(store: &LocalStore, account: &str, name: &str) -> Result<ContainerRow> {
    store.container(account, name).await?.ok_or_else(|| {
        Error::PreconditionFailed(format!("the versions container {name:?} does not exist"))
    })
}

fn prefix(object: &str) -> String {
    format!("{:03x}{object}/", object.len())
}

/// A copy of `row` named `name` in `into`, sharing no file with it.
async fn copy_row(
    store: &LocalStore,
    into: &ContainerRow,
    row: &ObjectRow,
    name: String,
) -> Result<()> {
    let file = store.link_copy(&row.file).await?;
    let copy = ObjectRow {
        name,
        file,
        timestamp: headers::now(),
        ..row.clone()
    };
    object::commit(store, into, copy).await
}

/// Before an object is overwritten: its current version goes to the archive.
pub(super) async fn before_write(
    store: &LocalStore,
    account: &str,
    c: &ContainerRow,
    object: &str,
) -> Result<()> {
    let Some(archive_name) = archive_name(c) else {
        return Ok(());
    };
    if let Some(cur) = current(store, c, object).await? {
        let archive = archive(store, account, &archive_name).await?;
        let name = format!("{}{}", prefix(object), x_timestamp(cur.timestamp));
        copy_row(store, &archive, &cur, name).await?;
    }
    Ok(())
}

fn deleted(found: bool, container: &str, object: &str) -> Result<Response<Body>> {
    if found {
        Ok(status_only(StatusCode::NO_CONTENT))
    } else {
        Err(not_found(container, object))
    }
}

/// A DELETE in a container with legacy versioning (or none: then a plain delete).
/// A DELETE by `caller`; in stack mode the newest archived copy comes back, as made by
/// `caller` (see `object::mark_maker`).
pub(super) async fn delete(
    store: &LocalStore,
    account: &str,
    c: &ContainerRow,
    object: &str,
    caller: &Caller,
) -> Result<Response<Body>> {
    let by_owner = caller.owns(account);
    let Some(archive_name) = archive_name(c) else {
        return deleted(
            object::delete_plain(store, c, object).await?,
            &c.name,
            object,
        );
    };
    if history_mode(c) {
        before_write(store, account, c, object).await?;
        let archive = archive(store, account, &archive_name).await?;
        let name = format!("{}{}", prefix(object), x_timestamp(headers::now()));
        let marker = store.empty_row(name, DELETE_MARKER).await?;
        object::commit(store, &archive, marker).await?;
        return deleted(
            object::delete_plain(store, c, object).await?,
            &c.name,
            object,
        );
    }
    // stack mode: the newest archived copy takes the object's place
    let Some(archive) = store.container(account, &archive_name).await? else {
        return deleted(
            object::delete_plain(store, c, object).await?,
            &c.name,
            object,
        );
    };
    let params = Params {
        prefix: prefix(object),
        limit: LISTING_LIMIT,
        reverse: true,
        ..Default::default()
    };
    let (db, id) = (store.db.clone(), archive.id);
    let versions: Vec<ObjectRow> = tokio::task::spawn_blocking(move || {
        listing::list(&params, |page| db.list_objects(id, page))
    })
    .await
    .map_err(Error::task_failed)??
    .into_iter()
    .filter_map(|e| match e {
        Entry::Item(row) => Some(row),
        Entry::Subdir(_) => None,
    })
    .collect();
    for (i, newest) in versions.iter().enumerate() {
        if newest.content_type == DELETE_MARKER {
            if current(store, c, object).await?.is_some() {
                // back to the deleted state the marker records
                break;
            }
            for older in &versions[i + 1..] {
                if older.content_type == DELETE_MARKER {
                    break;
                }
                if restore(store, c, &archive, object, older, by_owner).await? {
                    object::delete_plain(store, &archive, &older.name).await?;
                    break;
                }
            }
            return deleted(
                object::delete_plain(store, &archive, &newest.name).await?,
                &archive.name,
                &newest.name,
            );
        }
        if restore(store, c, &archive, object, newest, by_owner).await? {
            return deleted(
                object::delete_plain(store, &archive, &newest.name).await?,
                &archive.name,
                &newest.name,
            );
        }
    }
    deleted(
        object::delete_plain(store, c, object).await?,
        &c.name,
        object,
    )
}

/// Copies an archived version back in place; false when it vanished meanwhile. It stays
/// an owner's only when an owner both made it and brings it back.
async fn restore(
    store: &LocalStore,
    c: &ContainerRow,
    archive: &ContainerRow,
    object: &str,
    version: &ObjectRow,
    by_owner: bool,
) -> Result<bool> {
    match current(store, archive, &version.name).await? {
        Some(mut row) => {
            let owners = by_owner && object::made_by_owner(&row);
            object::mark_made(&mut row.meta, owners);
            copy_row(store, c, &row, object.to_owned()).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}
