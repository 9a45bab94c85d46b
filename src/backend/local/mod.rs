//! The embedded object store: Swift's storage API (accounts, containers, objects)
//! served from this machine's disk. Metadata lives in SQLite (`db`), bodies in files
//! (`files`); requests are authorized here because container ACLs live with the
//! containers.

pub mod backup;
pub(crate) mod bulk;
mod db;
mod files;
pub(crate) mod headers;
mod history;
mod listing;
mod object;
pub(crate) mod slo;
mod symlink;
mod tempurl;
mod versioning;

use std::path::Path;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::json;

use self::db::{ContainerRow, Db, DbError, Meta, ObjectRow};
use self::files::Files;
use self::headers::{
    check_metadata, http_date, iso, merge_checked, text_value, title_case, x_timestamp,
};
use self::listing::{Format, Named};
use crate::auth::identity::Principal;
use crate::body::{Body, RequestBody, full, status_only};
use crate::config::DiskReserve;
use crate::error::{Error, Result};
use crate::http_util::xml_escape;

use crate::swift::acl;
use crate::swift::op::{Kind, Operation};
use crate::swift::privileged::{ACCOUNT_QUOTAS, is_quota_header, strip_privileged};
use crate::swift::query;
use crate::swift::target::realm;

/// Headers stored with an account besides its user metadata.
const ACCOUNT_EXTRA: &[&str] = &[
    acl::ACCOUNT_ACL,
    "x-account-quota-bytes",
    "x-account-quota-count",
    "x-account-quota-bytes-policy-policy-0",
    "x-account-quota-count-policy-policy-0",
];

/// Headers stored with a container besides its user metadata.
const CONTAINER_EXTRA: &[&str] = &["x-container-read", "x-container-write"];

/// Who asks: the token's principal (none for anonymous requests) and the `Referer`.
pub struct Caller {
    pub principal: Option<Principal>,
    pub referer: Option<String>,
    /// Set when a valid temporary URL authorizes this one request.
    pub temp_url: Option<crate::swift::tempurl::Scope>,
    /// What the ACL (`X-Account-Access-Control`) of the request's account grants this
    /// caller, and that account: the grant holds in that account only.
    pub account_access: Option<(String, acl::AccountAccess)>,
}

impl Caller {
    /// Account admins of the account, and reseller admins, own it; so do those the
    /// account's ACL makes its admins. A temporary URL owns nothing.
    pub fn owns(&self, account: &str) -> bool {
        self.principal.as_ref().is_some_and(|p| p.owns(account))
            || self.access_in(account) == acl::AccountAccess::Admin
    }

    /// What the account's ACL grants the caller in `account`: nothing in an account
    /// other than the one whose ACL was read.
    fn access_in(&self, account: &str) -> acl::AccountAccess {
        match &self.account_access {
            Some((a, access)) if a == account => *access,
            _ => acl::AccountAccess::None,
        }
    }

    fn groups(&self) -> Vec<String> {
        self.principal
            .as_ref()
            .map(Principal::acl_groups)
            .unwrap_or_default()
    }

    /// Whether the caller may read (or write) `reach` in `account`, by the one access
    /// decision of [`acl::allows`]; the groups are worked out only when the container's
    /// ACL decides.
    fn may(&self, account: &str, reach: &acl::Reach<'_>, write: bool) -> bool {
        let mut standing = acl::Standing {
            owner: self.principal.as_ref().is_some_and(|p| p.owns(account)),
            access: self.access_in(account),
            groups: &[],
            referer: self.referer.as_deref(),
            temp_url: self.temp_url.as_ref(),
        };
        if let Some(decided) = acl::settled(&standing, reach, write) {
            return decided;
        }
        let groups = self.groups();
        standing.groups = &groups;
        acl::allows(&standing, account, reach, write)
    }

    /// The caller as it reads on past `row`, an object of `container`: without its
    /// temporary URL's scope where [`acl::scope_passes`] says the scope ends; `None` when
    /// nothing changes.
    fn past(&self, container: &ContainerRow, row: &ObjectRow) -> Option<Caller> {
        let ends = self.temp_url.is_some()
            && !acl::scope_passes(&container.acls(), object::made_by_owner(row));
        ends.then(|| Caller {
            principal: self.principal.clone(),
            referer: self.referer.clone(),
            temp_url: None,
            account_access: self.account_access.clone(),
        })
    }

    /// 401 for anonymous callers, 403 for known ones.
    fn denied(&self, account: &str) -> Error {
        match &self.principal {
            None => Error::unauthorized(&realm(account), "this needs a token: send X-Auth-Token"),
            Some(p) => {
                Error::forbidden("acl", format!("{} may not do this in {account}", p.label()))
            }
        }
    }
}

pub struct LocalStore {
    db: Arc<Db>,
    files: Arc<Files>,
    /// Where the database was opened.
    path: std::path::PathBuf,
}

fn db_error(e: DbError) -> Error {
    let sqlite = match &e {
        DbError::Sqlite(e) => Some(e),
        _ => None,
    };
    if sqlite.is_some_and(crate::store::is_full) {
        return Error::InsufficientStorage(
            "There was not enough space to save the resource (the object database)".into(),
        );
    }
    if sqlite.is_some_and(|e| {
        crate::store::is_busy(e) || e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly)
    }) {
        tracing::error!(error = %e, "the object database cannot be written now");
        return Error::Unavailable {
            retry_after: 10,
            message: "the object database cannot be written now (locked by another process, \
                      or on a read-only file system)"
                .into(),
        };
    }
    Error::internal("the object database failed", e)
}

/// What salvaging the object database kept, beyond the rows it copied.
#[derive(Debug)]
pub struct ObjectSalvage {
    pub salvaged: crate::store::salvage::Salvaged,
    /// The database was missing (or empty) beside bodies, and was made anew.
    pub missing: bool,
    /// Object rows dropped: their body is missing or of another size.
    pub without_body: usize,
    /// Bodies no row names any more, moved to `objects.lost/` (never deleted).
    pub lost_bodies: usize,
}

/// Refuses a salvage that would set bodies aside outside the data directory: its
/// `objects.lost` is a link, or not a directory.
pub fn check_salvage(data_dir: &Path) -> std::result::Result<(), String> {
    files::check_lost(&data_dir.join("objects.lost")).map_err(|e| e.to_string())
}

/// Salvages `DIR/objects.db` when it is damaged, or missing (or empty) beside bodies: the
/// readable rows are copied into a fresh database made beside it, rows whose container or
/// body is gone are dropped, the counts are made again; the new database then takes the
/// old one's place, and bodies no row names are moved aside. `None` when there is nothing
/// to salvage.
pub fn salvage(data_dir: &Path) -> std::result::Result<Option<ObjectSalvage>, String> {
    use crate::store::salvage as s;
    let path = data_dir.join("objects.db");
    let root = data_dir.join("objects");
    let lost = data_dir.join("objects.lost");
    let fail = |e: &dyn std::fmt::Display| format!("salvaging {}: {e}", path.display());
    check_salvage(data_dir)?;
    let bodies = files::count_bodies(&root).map_err(|e| fail(&e))?;
    // a sound database that holds nothing beside bodies is as good as missing
    let sound = !is_missing(&path) && s::is_sound(&path);
    let missing = is_missing(&path)
        || (sound
            && Db::open(&path)
                .and_then(|db| db.is_empty())
                .unwrap_or(false));
    if missing && bodies == 0 || !missing && sound {
        return Ok(None);
    }
    let (kept, (mut salvaged, without_body)) = s::rebuild(&path, |fresh| {
        drop(Db::open(fresh).map_err(|e| crate::store::StoreError::Open {
            path: fresh.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?);
        let conn = rusqlite::Connection::open(fresh)?;
        let salvaged = if missing {
            s::Salvaged::default()
        } else {
            s::copy_rows(&path, &conn)?
        };
        let (orphans, without_body) = drop_rows_without_body(&conn, &root)?;
        Ok((
            s::Salvaged {
                orphans: salvaged.orphans + orphans,
                ..salvaged
            },
            without_body,
        ))
    })
    .map_err(|e| fail(&e))?;
    salvaged.kept_as = kept.unwrap_or_default();
    let db = Db::open(&path).map_err(|e| fail(&e))?;
    let unnamed = files::unnamed_bodies(&root, &db).map_err(|e| fail(&e))?;
    let lost_bodies = files::set_aside(&unnamed, &lost).map_err(|e| fail(&e))?;
    Ok(Some(ObjectSalvage {
        salvaged,
        missing,
        without_body,
        lost_bodies,
    }))
}

/// Whether the object database at `path` is not there, or is an empty file.
fn is_missing(path: &Path) -> bool {
    std::fs::symlink_metadata(path).map_or(true, |m| m.is_file() && m.len() == 0)
}

/// Drops the object rows of a salvaged database whose container or body is gone, and
/// counts each container again; how many rows lost their container, and their body.
fn drop_rows_without_body(
    conn: &rusqlite::Connection,
    root: &Path,
) -> std::result::Result<(usize, usize), crate::store::StoreError> {
    let orphans = conn.execute(
        "DELETE FROM objects WHERE container_id NOT IN (SELECT id FROM containers)",
        [],
    )?;
    let rows: Vec<(i64, String, String, u64, String)> = conn
        .prepare("SELECT container_id, name, file, size, meta FROM objects")?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut without_body = 0;
    for (container, name, file, size, meta) in rows {
        let body = files::body_path(root, &file);
        // a large object's file is its manifest, of the size noted beside the total
        let file_size = serde_json::from_str::<Meta>(&meta)
            .ok()
            .and_then(|m| m.get(slo::MANIFEST_SIZE)?.parse::<u64>().ok())
            .unwrap_or(size);
        if std::fs::metadata(&body).map(|m| m.len()).ok() != Some(file_size) {
            without_body += conn.execute(
                "DELETE FROM objects WHERE container_id = ?1 AND name = ?2",
                rusqlite::params![container, name],
            )?;
        }
    }
    conn.execute(
        "UPDATE containers SET \
         object_count = (SELECT count(*) FROM objects o WHERE o.container_id = containers.id), \
         bytes_used = (SELECT coalesce(sum(size), 0) FROM objects o \
                       WHERE o.container_id = containers.id)",
        [],
    )?;
    Ok((orphans, without_body))
}

impl ContainerRow {
    /// The container as an access decision sees it.
    fn acls(&self) -> acl::Container<'_> {
        acl::Container {
            name: &self.name,
            read: self.meta.get("x-container-read").map(String::as_str),
            write: self.meta.get("x-container-write").map(String::as_str),
        }
    }
}

impl Named for ContainerRow {
    fn name(&self) -> &str {
        &self.name
    }
}

fn set(h: &mut HeaderMap, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        h.insert(name, v);
    }
}

/// Stored metadata back as response headers (the gateway's own `sysmeta` stays inside).
fn put_meta(h: &mut HeaderMap, meta: &Meta) {
    for (k, v) in meta.iter().filter(|(k, _)| !k.contains("-sysmeta-")) {
        if let (Ok(name), Some(value)) = (
            http::HeaderName::from_bytes(title_case(k).as_bytes()),
            text_value(v),
        ) {
            h.insert(name, value);
        }
    }
}

impl LocalStore {
    /// Bytes an account stores, and its quota in bytes (0: none).
    pub async fn usage(&self, account: &str) -> Result<(u64, u64)> {
        let account = account.to_owned();
        let row = self.db(move |db| db.account(&account)).await?;
        let quota = ["x-account-meta-quota-bytes", "x-account-quota-bytes"]
            .iter()
            .find_map(|k| row.meta.get(*k).and_then(|v| v.parse::<u64>().ok()))
            .unwrap_or(0);
        Ok((row.bytes_used, quota))
    }

    /// Objects and bytes the store holds.
    pub async fn totals(&self) -> Result<(u64, u64)> {
        self.db(|db| db.totals()).await
    }

    /// Whether the store can serve: its database where it was opened and answering, its
    /// bodies' directory there, more than the reserve free on its disk; else what is
    /// wrong.
    pub async fn check(&self) -> std::result::Result<(), String> {
        let (path, files) = (self.path.clone(), self.files.clone());
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::metadata(&path)
                .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
            db.ping().map_err(|e| e.to_string())?;
            files.check()
        })
        .await
        .map_err(|e| format!("the check did not finish: {e}"))?
    }

    /// Opens the store under `data_dir` and sweeps what an earlier crash left behind.
    /// Uploads leave `reserve` free on the disk.
    pub fn open(data_dir: &Path, reserve: DiskReserve) -> std::result::Result<LocalStore, String> {
        let path = data_dir.join("objects.db");
        let root = data_dir.join("objects");
        if is_missing(&path) {
            let bodies = files::count_bodies(&root)
                .map_err(|e| format!("cannot read {}: {e}", root.display()))?;
            if bodies > 0 {
                let lost = data_dir.join("objects.lost");
                return Err(files::without_database(&root, bodies, &lost));
            }
        }
        let db = Db::open(&path).map_err(|e| e.to_string())?;
        let files = Files::open(&data_dir.join("objects"), reserve)
            .map_err(|e| format!("cannot open {}: {e}", data_dir.join("objects").display()))?;
        let lost = data_dir.join("objects.lost");
        let swept = files.sweep(&db, &lost)?;
        if swept.removed > 0 {
            tracing::info!(
                files = swept.removed,
                "removed object bodies left by an interrupted write or delete"
            );
        }
        if swept.lost > 0 {
            tracing::warn!(
                files = swept.lost,
                dir = %lost.display(),
                "object bodies no row names were moved aside (never acknowledged, or their \
                 rows were lost with the database)"
            );
        }
        Ok(LocalStore {
            db: Arc::new(db),
            files: Arc::new(files),
            path,
        })
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> std::result::Result<T, DbError> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| Error::internal("object store task failed", e))?
            .map_err(db_error)
    }

    /// Refuses a metadata write when the disk is down to what is kept for deletes.
    fn room_for_metadata(&self) -> Result<()> {
        Ok(self.files.room_for_metadata()?)
    }

    /// A new body with the same bytes as `file` (a hard link), for a copy of its object.
    async fn link_copy(&self, file: &str) -> Result<String> {
        let (files, src) = (self.files.clone(), file.to_owned());
        tokio::task::spawn_blocking(move || files.link_copy(&src))
            .await
            .map_err(Error::task_failed)?
            .map_err(|e| Error::io("copying an object body", e))
    }

    /// A zero-byte row (a link or a delete marker) with its own empty body file.
    async fn empty_row(&self, name: String, content_type: &str) -> Result<db::ObjectRow> {
        let files = self.files.clone();
        let written = tokio::task::spawn_blocking(move || files.write_bytes(b""))
            .await
            .map_err(Error::task_failed)??;
        Ok(db::ObjectRow {
            name,
            file: written.id,
            size: 0,
            etag: written.md5,
            content_type: content_type.to_owned(),
            timestamp: headers::now(),
            meta: Meta::new(),
            delete_at: None,
        })
    }

    /// A container's row. The lookup runs on the calling thread: it is one indexed read
    /// on a WAL reader (never waiting for the writer), cheaper than a trip through the
    /// blocking pool and back.
    async fn container(&self, account: &str, name: &str) -> Result<Option<ContainerRow>> {
        self.db.container(account, name).map_err(db_error)
    }

    /// Deletes expired objects and their bodies, and forgets the bodies of removed rows
    /// once they are gone; run periodically.
    pub async fn purge_expired(&self) -> Result<usize> {
        let now = headers::whole(headers::now());
        let files = self.db(move |db| db.delete_expired(now)).await?;
        for f in &files {
            self.files.remove(f);
        }
        let (db, bodies) = (self.db.clone(), self.files.clone());
        // one batch a run: deletes under way cannot keep it going
        tokio::task::spawn_blocking(move || bodies.clear_garbage(&db, 1))
            .await
            .map_err(Error::task_failed)?
            .map_err(|e| Error::internal("clearing removed object bodies", e))?;
        Ok(files.len())
    }

    /// A storage request for an account of this store, created at `account_created`
    /// (Unix seconds, from the identity store).
    pub(crate) async fn handle<B: RequestBody>(
        &self,
        mut req: Request<B>,
        op: &Operation,
        caller: &mut Caller,
        account_created: f64,
    ) -> Result<Response<Body>> {
        let target = &op.target;
        if let Some(p) = &caller.principal
            && !caller.owns(&target.account)
        {
            let a = target.account.clone();
            let meta = self.db(move |db| db.account_meta(&a)).await?;
            let access = acl::account_access(meta.get(acl::ACCOUNT_ACL), &p.acl_groups());
            caller.account_access = Some((target.account.clone(), access));
        }
        let caller: &Caller = caller;
        // as Swift drops its `swift_owner_headers`: only an owner sets or sees ACLs,
        // temporary URL keys and sync settings
        if !caller.owns(&target.account) {
            strip_privileged(req.headers_mut());
        }
        match (&target.container, &target.object) {
            // a bulk delete on any path of the account is one of the account: its body
            // names what it reaches
            _ if op.kind == Kind::BulkDelete => {
                let headers = req.headers().clone();
                Box::pin(bulk::bulk_delete(
                    self,
                    &headers,
                    req.into_body(),
                    &target.account,
                    caller,
                ))
                .await
            }
            (None, _) => {
                Box::pin(self.account_request(
                    &req,
                    &op.query,
                    &target.account,
                    caller,
                    account_created,
                ))
                .await
            }
            (Some(c), None) => {
                Box::pin(self.container_request(&req, &op.query, &target.account, c, caller)).await
            }
            (Some(c), Some(o)) => {
                if caller.temp_url.is_none() {
                    return object::handle(self, req, op, (c, o), caller).await;
                }
                let read = matches!(*req.method(), Method::GET | Method::HEAD);
                let mut resp = Box::pin(object::handle(self, req, op, (c, o), caller)).await?;
                if read && resp.status().is_success() {
                    crate::swift::tempurl::filter_outgoing(resp.headers_mut(), o, &op.query);
                }
                Ok(resp)
            }
        }
    }

    async fn account_request<B: RequestBody>(
        &self,
        req: &Request<B>,
        query: &[(String, String)],
        account: &str,
        caller: &Caller,
        created: f64,
    ) -> Result<Response<Body>> {
        let read = matches!(*req.method(), Method::GET | Method::HEAD);
        if !caller.may(account, &acl::Reach::Account, !read) {
            return Err(caller.denied(account));
        }
        match *req.method() {
            Method::GET | Method::HEAD => {
                let a = account.to_owned();
                let row = self.db(move |db| db.account(&a)).await?;
                let mut resp = if req.method() == Method::HEAD {
                    head_answer(req, query)?
                } else {
                    self.list_containers(req, query, account).await?
                };
                let h = resp.headers_mut();
                set(h, "x-account-container-count", row.container_count);
                set(h, "x-account-object-count", row.object_count);
                set(h, "x-account-bytes-used", row.bytes_used);
                // the account exists from when the gateway made it, written to or not
                set(h, "x-timestamp", x_timestamp(created));
                set(h, "x-put-timestamp", x_timestamp(created));
                let mut meta = row.meta.clone();
                if !caller.owns(account) {
                    meta.retain(|k, _| {
                        k != acl::ACCOUNT_ACL && !k.starts_with("x-account-meta-temp-url-key")
                    });
                }
                put_meta(h, &meta);
                Ok(resp)
            }
            Method::POST => {
                check_metadata(req.headers(), "account")?;
                if req.headers().keys().any(|k| is_quota_header(k.as_str()))
                    && !caller
                        .principal
                        .as_ref()
                        .is_some_and(|p| p.is_reseller_admin())
                {
                    return Err(Error::forbidden(
                        "reseller-admin",
                        "only a reseller admin may set an account quota",
                    ));
                }
                check_quota_values(req.headers(), &["x-account-meta-quota-bytes"])?;
                check_quota_values(req.headers(), ACCOUNT_QUOTAS)?;
                if let Some(v) = req.headers().get(acl::ACCOUNT_ACL) {
                    acl::check_account_acl(v.as_bytes())?;
                }
                self.room_for_metadata()?;
                let h = req.headers().clone();
                let a = account.to_owned();
                self.db(move |db| {
                    db.update_account(
                        &a,
                        headers::now(),
                        merge_checked(h, "account", ACCOUNT_EXTRA),
                    )
                })
                .await?
                .map_err(Error::BadRequest)?;
                Ok(status_only(StatusCode::NO_CONTENT))
            }
            Method::PUT | Method::DELETE => Err(Error::MethodNotAllowed {
                method: req.method().to_string(),
                allow: "GET, HEAD, POST",
            }),
            _ => Err(Error::MethodNotAllowed {
                method: req.method().to_string(),
                allow: "GET, HEAD, POST",
            }),
        }
    }

    async fn list_containers<B: RequestBody>(
        &self,
        req: &Request<B>,
        query: &[(String, String)],
        account: &str,
    ) -> Result<Response<Body>> {
        let fmt = crate::swift::listing::format(query, req.headers())?;
        let params = crate::swift::listing::params(query)?;
        let db = self.db.clone();
        let a = account.to_owned();
        let mut entries = tokio::task::spawn_blocking(move || {
            listing::list(&params, |page| db.list_containers(&a, page))
        })
        .await
        .map_err(Error::task_failed)??;
        for e in &mut entries {
            if let listing::Entry::Item(c) = e {
                versioning::add_versions_bytes(self, account, c).await?;
            }
        }
        let body = listing::render(
            fmt,
            ("account", account),
            &entries,
            |c: &ContainerRow| {
                json!({
                    "name": c.name,
                    "count": c.object_count,
                    "bytes": c.bytes_used,
                    "last_modified": iso(c.modified),
                    "storage_policy": "Policy-0",
                })
            },
            |c: &ContainerRow| {
                format!(
                    "<container><name>{}</name><count>{}</count><bytes>{}</bytes><last_modified>{}</last_modified><storage_policy>Policy-0</storage_policy></container>",
                    xml_escape(&c.name),
                    c.object_count,
                    c.bytes_used,
                    iso(c.modified)
                )
            },
        );
        Ok(listing_response(fmt, entries.is_empty(), body))
    }

    async fn container_request<B: RequestBody>(
        &self,
        req: &Request<B>,
        query: &[(String, String)],
        account: &str,
        container: &str,
        caller: &Caller,
    ) -> Result<Response<Body>> {
        let owner = caller.owns(account);
        // read-write account ACLs manage containers too, but not their ACLs; no
        // container ACL lets anyone create, change or delete a container
        let writer = caller.may(account, &acl::Reach::Container(None), true);
        match *req.method() {
            Method::PUT => {
                if !writer {
                    return Err(caller.denied(account));
                }
                crate::swift::names::check_container(container)?;
                if let Some(p) = req.headers().get("x-storage-policy")
                    && !p.is_empty()
                    && !p.as_bytes().eq_ignore_ascii_case(b"Policy-0")
                {
                    return Err(Error::bad_request(format!(
                        "Invalid X-Storage-Policy {:?}",
                        String::from_utf8_lossy(p.as_bytes())
                    )));
                }
                check_metadata(req.headers(), "container")?;
                let h = clean_acl_headers(req.headers(), owner)?;
                let update = self
                    .container_update(req.headers(), account, container, h)
                    .await?;
                self.room_for_metadata()?;
                let (a, c) = (account.to_owned(), container.to_owned());
                let created = self
                    .db(move |db| db.put_container(&a, &c, headers::now(), update))
                    .await?
                    .map_err(Error::BadRequest)?;
                Ok(status_only(if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::ACCEPTED
                }))
            }
            Method::POST => {
                if !writer {
                    return Err(caller.denied(account));
                }
                check_metadata(req.headers(), "container")?;
                let h = clean_acl_headers(req.headers(), owner)?;
                let update = self
                    .container_update(req.headers(), account, container, h)
                    .await?;
                self.room_for_metadata()?;
                let (a, c) = (account.to_owned(), container.to_owned());
                let found = self
                    .db(move |db| db.post_container(&a, &c, headers::now(), update))
                    .await?
                    .map_err(Error::BadRequest)?;
                if !found {
                    return Err(Error::NotFound(format!("no container {container:?}")));
                }
                Ok(status_only(StatusCode::NO_CONTENT))
            }
            Method::DELETE => {
                if !writer {
                    return Err(caller.denied(account));
                }
                if let Some(row) = self.container(account, container).await? {
                    versioning::delete_container(self, account, &row).await?;
                }
                let (a, c) = (account.to_owned(), container.to_owned());
                match self.db(move |db| db.delete_container(&a, &c)).await? {
                    None => Err(Error::NotFound(format!("no container {container:?}"))),
                    Some(false) => Err(Error::Conflict(format!(
                        "container {container:?} is not empty; delete its objects first"
                    ))),
                    Some(true) => Ok(status_only(StatusCode::NO_CONTENT)),
                }
            }
            Method::GET | Method::HEAD => {
                let row = self.container(account, container).await?;
                let reach = acl::Reach::Container(row.as_ref().map(ContainerRow::acls));
                if !caller.may(account, &reach, false) {
                    return Err(caller.denied(account));
                }
                let row =
                    row.ok_or_else(|| Error::NotFound(format!("no container {container:?}")))?;
                let mut resp = if req.method() == Method::HEAD {
                    head_answer(req, query)?
                } else {
                    self.list_objects(req, query, account, &row).await?
                };
                let h = resp.headers_mut();
                set(h, "x-container-object-count", row.object_count);
                set(h, "x-container-bytes-used", row.bytes_used);
                set(h, "x-timestamp", x_timestamp(row.created));
                set(h, "x-put-timestamp", x_timestamp(row.modified));
                set(h, "last-modified", http_date(row.modified));
                set(h, "x-storage-policy", "Policy-0");
                let mut meta = row.meta.clone();
                if !owner {
                    meta.retain(|k, _| {
                        k != "x-container-read"
                            && k != "x-container-write"
                            && !k.starts_with("x-container-meta-temp-url-key")
                    });
                }
                put_meta(h, &meta);
                versioning::container_headers(self, account, &row, resp.headers_mut()).await?;
                history::container_headers(&row, resp.headers_mut());
                Ok(resp)
            }
            _ => Err(Error::MethodNotAllowed {
                method: req.method().to_string(),
                allow: "GET, HEAD, PUT, POST, DELETE",
            }),
        }
    }

    /// The metadata change of a container PUT or POST, versioning included.
    async fn container_update(
        &self,
        request: &HeaderMap,
        account: &str,
        container: &str,
        cleaned: HeaderMap,
    ) -> Result<impl db::MetaUpdate + Send + 'static> {
        let versioning = versioning::requested(request)?;
        let legacy = history::requested(request)?;
        if let Some(on) = versioning {
            let existing = self.container(account, container).await?;
            versioning::prepare(self, account, container, existing.as_ref(), on).await?;
        }
        let merge = merge_checked(cleaned, "container", CONTAINER_EXTRA);
        let name = container.to_owned();
        Ok(move |meta: &mut Meta| {
            merge(meta)?;
            if let Some(on) = versioning {
                versioning::record(meta, &name, on);
            }
            if let Some(change) = &legacy {
                history::record(meta, change);
            }
            Ok(())
        })
    }

    async fn list_objects<B: RequestBody>(
        &self,
        req: &Request<B>,
        query: &[(String, String)],
        account: &str,
        container: &ContainerRow,
    ) -> Result<Response<Body>> {
        if query::param(query, "versions").is_some() {
            return versioning::list_versions(req, query, self, account, container).await;
        }
        let fmt = crate::swift::listing::format(query, req.headers())?;
        let params = crate::swift::listing::params(query)?;
        let db = self.db.clone();
        let id = container.id;
        let entries = tokio::task::spawn_blocking(move || {
            listing::list(&params, |page| db.list_objects(id, page))
        })
        .await
        .map_err(Error::task_failed)??;
        let body = listing::render(
            fmt,
            ("container", &container.name),
            &entries,
            |o: &db::ObjectRow| versioning::listing_json(o, account, &container.name),
            |o: &db::ObjectRow| object::listing_xml(&versioning::listing_row(o)),
        );
        Ok(listing_response(fmt, entries.is_empty(), body))
    }
}

/// The answer to an account or container HEAD: 204, typed as its listing would be.
fn head_answer<B>(req: &Request<B>, query: &[(String, String)]) -> Result<Response<Body>> {
    let fmt = crate::swift::listing::format(query, req.headers())?;
    let mut r = status_only(StatusCode::NO_CONTENT);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(fmt.content_type()),
    );
    Ok(r)
}

fn listing_response(fmt: Format, empty: bool, body: String) -> Response<Body> {
    let status = listing::status(fmt, empty);
    let mut resp = if status == StatusCode::NO_CONTENT {
        status_only(status)
    } else {
        let mut r = Response::new(full(body));
        *r.status_mut() = status;
        r
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(fmt.content_type()),
    );
    resp
}

/// Quota values must be whole numbers of bytes or objects.
fn check_quota_values(headers: &HeaderMap, names: &[&str]) -> Result<()> {
    for name in names {
        if let Some(v) = headers.get(*name)
            && !v.is_empty()
            && !v.as_bytes().iter().all(u8::is_ascii_digit)
        {
            return Err(Error::bad_request(format!(
                "Invalid {name}: it must be a whole number"
            )));
        }
    }
    Ok(())
}

/// The request headers with the container ACLs normalized (400 for a bad ACL).
/// Only owners set ACLs and temporary URL keys; from others these headers are dropped.
fn clean_acl_headers(headers: &HeaderMap, owner: bool) -> Result<HeaderMap> {
    check_quota_values(
        headers,
        &[
            "x-container-meta-quota-bytes",
            "x-container-meta-quota-count",
        ],
    )?;
    let mut h = headers.clone();
    if !owner {
        strip_privileged(&mut h);
    }
    for name in ["x-container-read", "x-container-write"] {
        if let Some(v) = headers.get(name) {
            let v = v
                .to_str()
                .map_err(|_| Error::bad_request(format!("{name} is not valid text")))?;
            let cleaned = acl::clean(name, v)?;
            h.insert(
                name,
                HeaderValue::from_str(&cleaned).map_err(|_| Error::bad_request("bad ACL"))?,
            );
        }
    }
    Ok(h)
}
