//! Metadata of the local object store: accounts, containers and objects in one
//! SQLite database (WAL). An object's row points at its body file; the row is
//! written only after the file is complete and durable, so a reader sees the old
//! object or the new one, never a torn one. Container counters change in the same
//! transaction as the object rows they count.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::store::salvage::{Damage, is_damage, quick_check};

pub(super) type Meta = BTreeMap<String, String>;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE accounts (
    storage_id  TEXT PRIMARY KEY,
    created     REAL NOT NULL,
    meta        TEXT NOT NULL
);
CREATE TABLE containers (
    id            INTEGER PRIMARY KEY,
    account       TEXT NOT NULL,
    name          TEXT NOT NULL,
    created       REAL NOT NULL,
    modified      REAL NOT NULL,
    meta          TEXT NOT NULL,
    object_count  INTEGER NOT NULL DEFAULT 0,
    bytes_used    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account, name)
);
CREATE TABLE objects (
    container_id  INTEGER NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    file          TEXT NOT NULL,
    size          INTEGER NOT NULL,
    etag          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    timestamp     REAL NOT NULL,
    meta          TEXT NOT NULL,
    delete_at     INTEGER,
    PRIMARY KEY (container_id, name)
) WITHOUT ROWID;
CREATE INDEX objects_by_delete_at ON objects(delete_at) WHERE delete_at IS NOT NULL;
CREATE INDEX objects_by_file ON objects(file);
"#,
    r#"
CREATE TABLE garbage (
    file  TEXT PRIMARY KEY
) WITHOUT ROWID;
"#,
];

#[derive(Debug, thiserror::Error)]
pub(super) enum DbError {
    #[error("object store database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the object store at {0} was written by a newer swiftgate")]
    TooNew(String),
    #[error(transparent)]
    Damaged(#[from] Damage),
}

#[derive(Debug, Clone, Default)]
pub(super) struct AccountRow {
    pub meta: Meta,
    pub container_count: u64,
    pub object_count: u64,
    pub bytes_used: u64,
}

#[derive(Debug, Clone)]
pub(super) struct ContainerRow {
    pub id: i64,
    pub name: String,
    pub created: f64,
    pub modified: f64,
    pub meta: Meta,
    pub object_count: u64,
    pub bytes_used: u64,
}

#[derive(Debug, Clone)]
pub(super) struct ObjectRow {
    pub name: String,
    /// Name of the body file under the store's object directory.
    pub file: String,
    pub size: u64,
    pub etag: String,
    pub content_type: String,
    pub timestamp: f64,
    /// Stored headers: `x-object-meta-*`, `content-disposition`, `content-encoding`,
    /// `x-object-manifest`, `x-static-large-object`, …
    pub meta: Meta,
    pub delete_at: Option<u64>,
}

/// Where a page of a listing starts, in scan order.
#[derive(Debug, Clone)]
pub(super) struct Bound {
    pub key: String,
    pub inclusive: bool,
}

/// The SQL side of a listing: rows after `bound` in scan order, at least `prefix`,
/// before `end` (exclusive, in scan order).
#[derive(Debug, Clone, Default)]
pub(super) struct Page<'a> {
    pub bound: Option<&'a Bound>,
    pub end: Option<&'a str>,
    pub prefix: &'a str,
    pub reverse: bool,
    pub limit: usize,
}

impl Page<'_> {
    /// The WHERE clause (after the owner condition) and its parameters.
    fn clause(&self, first_param: usize) -> (String, Vec<String>) {
        let mut sql = String::new();
        let mut args = Vec::new();
        let mut n = first_param;
        let mut push = |cond: &str, v: String, sql: &mut String| {
            sql.push_str(&format!(" AND name {cond} ?{n}"));
            args.push(v);
            n += 1;
        };
        if let Some(b) = self.bound {
            let op = match (self.reverse, b.inclusive) {
                (false, false) => ">",
                (false, true) => ">=",
                (true, false) => "<",
                (true, true) => "<=",
            };
            push(op, b.key.clone(), &mut sql);
        }
        if let Some(e) = self.end {
            push(if self.reverse { ">" } else { "<" }, e.to_owned(), &mut sql);
        }
        if !self.prefix.is_empty() {
            push(">=", self.prefix.to_owned(), &mut sql);
            if let Some(upper) = successor(self.prefix) {
                push("<", upper, &mut sql);
            }
        }
        let order = if self.reverse { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY name {order} LIMIT {}", self.limit));
        (sql, args)
    }
}

/// The least string greater than every string that starts with `prefix` (UTF-8 byte
/// order is code point order); `None` when there is none.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// One row of a query whose statement is compiled once per connection.
fn cached_row<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

fn account_meta(conn: &Connection, account: &str) -> rusqlite::Result<Meta> {
    Ok(cached_row(
        conn,
        "SELECT meta FROM accounts WHERE storage_id = ?1",
        [account],
        |r| Ok(parse_meta(&r.get::<_, String>(0)?)),
    )
    .optional()?
    .unwrap_or_default())
}

/// Changes stored metadata; `Err` refuses the change (nothing is written).
pub(super) trait MetaUpdate: FnOnce(&mut Meta) -> Result<(), String> {}
impl<F: FnOnce(&mut Meta) -> Result<(), String>> MetaUpdate for F {}

pub(super) struct Db {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    /// Counts the commits; rows read since the last one answer again without SQLite.
    generation: AtomicU64,
    recent: Mutex<Recent>,
}

/// Container and object rows (or their absence) read under one generation of the
/// database. A read records the generation before it asks SQLite, and every commit moves
/// the generation on after it is done, so a row kept is never older than the last commit
/// it is used after.
#[derive(Default)]
struct Recent {
    generation: u64,
    containers: HashMap<String, Option<ContainerRow>>,
    objects: HashMap<(i64, String), Option<ObjectRow>>,
}

/// Rows kept per generation at most; past it, the older ones are let go.
const RECENT_ROWS: usize = 16 * 1024;

impl Recent {
    /// Makes the cache hold `generation`'s rows; false when that generation is past.
    fn at(&mut self, generation: u64) -> bool {
        if generation > self.generation {
            self.containers.clear();
            self.objects.clear();
            self.generation = generation;
        }
        generation == self.generation
    }
}

fn container_key(account: &str, name: &str) -> String {
    format!("{account}/{name}")
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn meta_json(meta: &Meta) -> String {
    serde_json::to_string(meta).unwrap_or_else(|_| "{}".into())
}

fn parse_meta(s: &str) -> Meta {
    serde_json::from_str(s).unwrap_or_default()
}

fn open_conn(path: &Path) -> Result<Connection, DbError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // commits are durable: an acknowledged PUT survives a power cut
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn container_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ContainerRow> {
    Ok(ContainerRow {
        id: r.get(0)?,
        name: r.get(1)?,
        created: r.get(2)?,
        modified: r.get(3)?,
        meta: parse_meta(&r.get::<_, String>(4)?),
        object_count: r.get::<_, u64>(5)?,
        bytes_used: r.get::<_, u64>(6)?,
    })
}

const CONTAINER_COLS: &str = "id, name, created, modified, meta, object_count, bytes_used";
const OBJECT_COLS: &str = "name, file, size, etag, content_type, timestamp, meta, delete_at";

fn object_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectRow> {
    Ok(ObjectRow {
        name: r.get(0)?,
        file: r.get(1)?,
        size: r.get::<_, u64>(2)?,
        etag: r.get(3)?,
        content_type: r.get(4)?,
        timestamp: r.get(5)?,
        meta: parse_meta(&r.get::<_, String>(6)?),
        delete_at: r.get::<_, Option<u64>>(7)?,
    })
}

fn find_container(
    tx: &Connection,
    account: &str,
    name: &str,
) -> rusqlite::Result<Option<ContainerRow>> {
    cached_row(
        tx,
        &format!("SELECT {CONTAINER_COLS} FROM containers WHERE account = ?1 AND name = ?2"),
        params![account, name],
        container_row,
    )
    .optional()
}

fn find_object(
    tx: &Connection,
    container_id: i64,
    name: &str,
) -> rusqlite::Result<Option<ObjectRow>> {
    cached_row(
        tx,
        &format!("SELECT {OBJECT_COLS} FROM objects WHERE container_id = ?1 AND name = ?2"),
        params![container_id, name],
        object_row,
    )
    .optional()
}

/// Applies a metadata change to a container and marks it modified; `Err` refuses it.
fn update_container(
    tx: &Transaction<'_>,
    c: ContainerRow,
    now: f64,
    update: impl MetaUpdate,
) -> rusqlite::Result<Result<(), String>> {
    let mut meta = c.meta;
    if let Err(e) = update(&mut meta) {
        return Ok(Err(e));
    }
    tx.execute(
        "UPDATE containers SET meta = ?2, modified = ?3 WHERE id = ?1",
        params![c.id, meta_json(&meta), now],
    )?;
    Ok(Ok(()))
}

/// Removes an object row and its share of the container counters; its body file name,
/// noted as garbage in the same transaction (so that a start after a crash removes that
/// body, and no other that no row names).
fn remove_object(
    tx: &Transaction<'_>,
    container_id: i64,
    name: &str,
) -> rusqlite::Result<Option<String>> {
    let Some(old) = find_object(tx, container_id, name)? else {
        return Ok(None);
    };
    tx.execute(
        "DELETE FROM objects WHERE container_id = ?1 AND name = ?2",
        params![container_id, name],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO garbage (file) VALUES (?1)",
        [&old.file],
    )?;
    tx.execute(
        "UPDATE containers SET object_count = object_count - 1, bytes_used = bytes_used - ?2 WHERE id = ?1",
        params![container_id, old.size],
    )?;
    Ok(Some(old.file))
}

impl Db {
    /// Opens (or makes) the database at `path`, after checking that it is sound.
    pub(super) fn open(path: &Path) -> Result<Db, DbError> {
        Db::open_checked(path).map_err(|e| match e {
            DbError::Sqlite(e) if is_damage(&e) => damage(path, e.to_string()),
            e => e,
        })
    }

    fn open_checked(path: &Path) -> Result<Db, DbError> {
        let mut writer = open_conn(path)?;
        if let Err(detail) = quick_check(&writer)? {
            return Err(damage(path, detail));
        }
        let known = MIGRATIONS.len();
        let tx = writer.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: usize = cached_row(&tx, "PRAGMA user_version", [], |r| r.get(0))?;
        if version > known {
            return Err(DbError::TooNew(path.display().to_string()));
        }
        for sql in &MIGRATIONS[version..] {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", known)?;
        tx.commit()?;
        let readers = (0..4)
            .map(|_| open_conn(path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Db {
            writer: Mutex::new(writer),
            readers,
            generation: AtomicU64::new(0),
            recent: Mutex::new(Recent::default()),
        })
    }

    /// A reader connection; readers never wait for a writer in WAL mode.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        for r in &self.readers {
            if let Ok(g) = r.try_lock() {
                return g;
            }
        }
        let i = rand::random::<usize>() % self.readers.len();
        lock(&self.readers[i])
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(out)
    }

    fn recent(&self) -> MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the database answers a read of its containers table (one row at most).
    pub(super) fn ping(&self) -> Result<(), DbError> {
        self.reader().query_row(
            "SELECT COUNT(*) FROM (SELECT 1 FROM containers LIMIT 1)",
            [],
            |_| Ok(()),
        )?;
        Ok(())
    }

    /// Objects and bytes in the whole store.
    pub(super) fn totals(&self) -> Result<(u64, u64), DbError> {
        let conn = self.reader();
        Ok(conn.query_row(
            "SELECT COALESCE(SUM(object_count), 0), COALESCE(SUM(bytes_used), 0) FROM containers",
            [],
            |r| Ok((r.get::<_, u64>(0)?, r.get::<_, u64>(1)?)),
        )?)
    }

    /// An account's metadata and counters (summed over its containers).
    pub(super) fn account(&self, account: &str) -> Result<AccountRow, DbError> {
        let conn = self.reader();
        let meta = account_meta(&conn, account)?;
        let (container_count, object_count, bytes_used) = cached_row(
            &conn,
            "SELECT COUNT(*), COALESCE(SUM(object_count), 0), COALESCE(SUM(bytes_used), 0) FROM containers WHERE account = ?1",
            [account],
            |r| {
                Ok((
                    r.get::<_, u64>(0)?,
                    r.get::<_, u64>(1)?,
                    r.get::<_, u64>(2)?,
                ))
            },
        )?;
        Ok(AccountRow {
            meta,
            container_count,
            object_count,
            bytes_used,
        })
    }

    /// An account's metadata alone (ACLs, keys, quotas): no counters to sum.
    pub(super) fn account_meta(&self, account: &str) -> Result<Meta, DbError> {
        Ok(account_meta(&self.reader(), account)?)
    }

    /// Creates the account row on first write; `update` changes its metadata.
    pub(super) fn update_account(
        &self,
        account: &str,
        now: f64,
        update: impl MetaUpdate,
    ) -> Result<Result<(), String>, DbError> {
        self.write(|tx| {
            let meta = cached_row(
                tx,
                "SELECT meta FROM accounts WHERE storage_id = ?1",
                [account],
                |r| r.get::<_, String>(0),
            )
            .optional()?;
            let mut meta = meta.map(|m| parse_meta(&m)).unwrap_or_default();
            if let Err(e) = update(&mut meta) {
                return Ok(Err(e));
            }
            tx.execute(
                "INSERT INTO accounts (storage_id, created, meta) VALUES (?1, ?2, ?3)
                 ON CONFLICT (storage_id) DO UPDATE SET meta = excluded.meta",
                params![account, now, meta_json(&meta)],
            )?;
            Ok(Ok(()))
        })
    }

    pub(super) fn container(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<ContainerRow>, DbError> {
        self.remembered(
            |r| &mut r.containers,
            container_key(account, name),
            |conn| find_container(conn, account, name),
        )
    }

    /// A row from memory when nothing was committed since it was read, else from SQLite
    /// (and then kept).
    fn remembered<K: std::hash::Hash + Eq, V: Clone>(
        &self,
        rows: impl Fn(&mut Recent) -> &mut HashMap<K, Option<V>>,
        key: K,
        read: impl FnOnce(&Connection) -> rusqlite::Result<Option<V>>,
    ) -> Result<Option<V>, DbError> {
        let generation = self.generation.load(Ordering::Acquire);
        {
            let mut recent = self.recent();
            if recent.at(generation)
                && let Some(row) = rows(&mut recent).get(&key)
            {
                return Ok(row.clone());
            }
        }
        let row = read(&self.reader())?;
        let mut recent = self.recent();
        if recent.at(generation) && rows(&mut recent).len() < RECENT_ROWS {
            rows(&mut recent).insert(key, row.clone());
        }
        Ok(row)
    }

    /// Creates a container, or updates an existing one's metadata; true when created.
    pub(super) fn put_container(
        &self,
        account: &str,
        name: &str,
        now: f64,
        update: impl MetaUpdate,
    ) -> Result<Result<bool, String>, DbError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO accounts (storage_id, created, meta) VALUES (?1, ?2, '{}') ON CONFLICT DO NOTHING",
                params![account, now],
            )?;
            match find_container(tx, account, name)? {
                Some(c) => Ok(update_container(tx, c, now, update)?.map(|()| false)),
                None => {
                    let mut meta = Meta::new();
                    if let Err(e) = update(&mut meta) {
                        return Ok(Err(e));
                    }
                    tx.execute(
                        "INSERT INTO containers (account, name, created, modified, meta) VALUES (?1, ?2, ?3, ?3, ?4)",
                        params![account, name, now, meta_json(&meta)],
                    )?;
                    Ok(Ok(true))
                }
            }
        })
    }

    /// Updates an existing container's metadata; false when there is no such container.
    pub(super) fn post_container(
        &self,
        account: &str,
        name: &str,
        now: f64,
        update: impl MetaUpdate,
    ) -> Result<Result<bool, String>, DbError> {
        self.write(|tx| match find_container(tx, account, name)? {
            Some(c) => Ok(update_container(tx, c, now, update)?.map(|()| true)),
            None => Ok(Ok(false)),
        })
    }

    /// Deletes an empty container. `Ok(None)`: no such container; `Ok(Some(false))`: not empty.
    pub(super) fn delete_container(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<bool>, DbError> {
        self.write(|tx| {
            let Some(c) = find_container(tx, account, name)? else {
                return Ok(None);
            };
            let any: bool = cached_row(
                tx,
                "SELECT EXISTS(SELECT 1 FROM objects WHERE container_id = ?1)",
                [c.id],
                |r| r.get(0),
            )?;
            if any {
                return Ok(Some(false));
            }
            tx.execute("DELETE FROM containers WHERE id = ?1", [c.id])?;
            Ok(Some(true))
        })
    }

    pub(super) fn list_containers(
        &self,
        account: &str,
        page: &Page<'_>,
    ) -> Result<Vec<ContainerRow>, DbError> {
        self.list_page(
            // hidden containers (a NUL first) are the store's own
            &format!(
                "SELECT {CONTAINER_COLS} FROM containers WHERE account = ?1 AND name >= char(1)"
            ),
            &account,
            page,
            container_row,
        )
    }

    /// One page of a listing: `select` filters by its `?1`, `owner`, then the page's bounds.
    fn list_page<T>(
        &self,
        select: &str,
        owner: &dyn rusqlite::ToSql,
        page: &Page<'_>,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, DbError> {
        let conn = self.reader();
        let (clause, args) = page.clause(2);
        let mut st = conn.prepare_cached(&format!("{select}{clause}"))?;
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![owner];
        values.extend(args.iter().map(|a| a as &dyn rusqlite::ToSql));
        let rows = st.query_map(values.as_slice(), row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn object(
        &self,
        container_id: i64,
        name: &str,
    ) -> Result<Option<ObjectRow>, DbError> {
        self.remembered(
            |r| &mut r.objects,
            (container_id, name.to_owned()),
            |conn| find_object(conn, container_id, name),
        )
    }

    /// Makes `row` the object's current version. Fails with `Ok(Err(()))` when the
    /// container is gone. Returns the body file the previous version used.
    pub(super) fn put_object(
        &self,
        container_id: i64,
        row: &ObjectRow,
    ) -> Result<Result<Option<String>, ()>, DbError> {
        self.write(|tx| {
            let exists: bool = cached_row(tx,
                "SELECT EXISTS(SELECT 1 FROM containers WHERE id = ?1)",
                [container_id],
                |r| r.get(0),
            )?;
            if !exists {
                return Ok(Err(()));
            }
            let old = remove_object(tx, container_id, &row.name)?;
            tx.execute(
                &format!("INSERT INTO objects (container_id, {OBJECT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    container_id,
                    row.name,
                    row.file,
                    row.size,
                    row.etag,
                    row.content_type,
                    row.timestamp,
                    meta_json(&row.meta),
                    row.delete_at,
                ],
            )?;
            tx.execute(
                "UPDATE containers SET object_count = object_count + 1, bytes_used = bytes_used + ?2 WHERE id = ?1",
                params![container_id, row.size],
            )?;
            Ok(Ok(old))
        })
    }

    /// Replaces an object's metadata (Swift's POST); false when there is no such object.
    pub(super) fn post_object(
        &self,
        container_id: i64,
        name: &str,
        content_type: Option<&str>,
        meta: &Meta,
        delete_at: Option<u64>,
        timestamp: f64,
    ) -> Result<bool, DbError> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE objects SET meta = ?3, delete_at = ?4, content_type = COALESCE(?5, content_type), timestamp = ?6
                 WHERE container_id = ?1 AND name = ?2",
                params![container_id, name, meta_json(meta), delete_at, content_type, timestamp],
            )?;
            Ok(n > 0)
        })
    }

    /// Deletes an object row; the body file it used.
    pub(super) fn delete_object(
        &self,
        container_id: i64,
        name: &str,
    ) -> Result<Option<String>, DbError> {
        self.write(|tx| remove_object(tx, container_id, name))
    }

    pub(super) fn list_objects(
        &self,
        container_id: i64,
        page: &Page<'_>,
    ) -> Result<Vec<ObjectRow>, DbError> {
        self.list_page(
            &format!("SELECT {OBJECT_COLS} FROM objects WHERE container_id = ?1"),
            &container_id,
            page,
            object_row,
        )
    }

    /// Deletes objects whose `X-Delete-At` has passed; the body files they used.
    pub(super) fn delete_expired(&self, now: u64) -> Result<Vec<String>, DbError> {
        self.write(|tx| {
            let expired: Vec<(i64, String)> = {
                let mut st = tx.prepare(
                    "SELECT container_id, name FROM objects WHERE delete_at IS NOT NULL AND delete_at <= ?1 LIMIT 1000",
                )?;
                st.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?
            };
            let mut files = Vec::new();
            for (c, name) in expired {
                files.extend(remove_object(tx, c, &name)?);
            }
            Ok(files)
        })
    }

    /// Up to `limit` body files of rows that were removed or replaced.
    pub(super) fn garbage(&self, limit: u32) -> Result<Vec<String>, DbError> {
        let conn = self.reader();
        let mut st = conn.prepare_cached("SELECT file FROM garbage LIMIT ?1")?;
        let files = st
            .query_map([limit], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(files)
    }

    /// Forgets garbage whose body files are gone.
    pub(super) fn forget_garbage(&self, files: &[String]) -> Result<(), DbError> {
        if files.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut st = tx.prepare_cached("DELETE FROM garbage WHERE file = ?1")?;
            for f in files {
                st.execute([f])?;
            }
            Ok(())
        })
    }

    /// Whether the database holds no container (a store just made, or one whose file
    /// was lost).
    pub(super) fn is_empty(&self) -> Result<bool, DbError> {
        Ok(!cached_row(
            &self.reader(),
            "SELECT EXISTS(SELECT 1 FROM containers)",
            [],
            |r| r.get::<_, bool>(0),
        )?)
    }

    /// Whether any object row uses this body file.
    pub(super) fn file_in_use(&self, file: &str) -> Result<bool, DbError> {
        Ok(cached_row(
            &self.reader(),
            "SELECT EXISTS(SELECT 1 FROM objects WHERE file = ?1)",
            [file],
            |r| r.get(0),
        )?)
    }
}

fn damage(path: &Path, detail: String) -> DbError {
    DbError::Damaged(Damage {
        what: "the object store database",
        path: path.to_path_buf(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, etag: &str) -> ObjectRow {
        ObjectRow {
            name: name.into(),
            file: format!("f{etag}"),
            size: 1,
            etag: etag.into(),
            content_type: "text/plain".into(),
            timestamp: 1.0,
            meta: Meta::new(),
            delete_at: None,
        }
    }

    #[test]
    fn rows_kept_in_memory_never_outlive_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("objects.db")).unwrap();
        assert!(db.container("AUTH_a", "c").unwrap().is_none());
        db.put_container("AUTH_a", "c", 1.0, |_: &mut Meta| Ok(()))
            .unwrap()
            .unwrap();
        let c = db
            .container("AUTH_a", "c")
            .unwrap()
            .expect("seen after its commit");
        assert_eq!(c.object_count, 0);
        assert!(db.object(c.id, "o").unwrap().is_none());
        db.put_object(c.id, &row("o", "one")).unwrap().unwrap();
        assert_eq!(db.object(c.id, "o").unwrap().unwrap().etag, "one");
        assert_eq!(db.object(c.id, "o").unwrap().unwrap().etag, "one");
        assert_eq!(
            db.container("AUTH_a", "c").unwrap().unwrap().object_count,
            1
        );
        db.put_object(c.id, &row("o", "two")).unwrap().unwrap();
        assert_eq!(db.object(c.id, "o").unwrap().unwrap().etag, "two");
        db.delete_object(c.id, "o").unwrap();
        assert!(db.object(c.id, "o").unwrap().is_none());
        assert_eq!(
            db.container("AUTH_a", "c").unwrap().unwrap().object_count,
            0
        );
    }
}
