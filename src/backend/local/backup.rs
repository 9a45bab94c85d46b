//! Online backup of the embedded object store, and its restore: the database copied page
//! by page with SQLite's backup API while the gateway serves, then every body its rows
//! name hard-linked (bodies are never written in place, so a link is a copy) or copied
//! when the backup is on another file system.
//!
//! An object deleted while the backup runs may have lost its body before it was linked:
//! its row is dropped from the backup and the container's counters made again, so the
//! backup is the store at its start less objects deleted since.

use std::path::Path;

use rusqlite::Connection;

use super::files::{body_path, is_body_id};
use crate::store::copy_database;

/// What a backup or a restore holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub objects: u64,
    pub bytes: u64,
    /// Objects deleted while the backup ran, left out of it.
    pub deleted_meanwhile: u64,
}

/// The body `id` under `root`, once checked: a body's name, in a directory and a file
/// that are themselves no links (a crafted backup must not reach outside it).
fn body_source(root: &Path, id: &str) -> Result<std::path::PathBuf, String> {
    if !is_body_id(id) {
        return Err(format!(
            "a row names {id:?}, which is not the name of a body"
        ));
    }
    let path = body_path(root, id);
    let not_link_dir =
        |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir());
    let parent = path.parent().unwrap_or(root);
    if !not_link_dir(root) || !not_link_dir(parent) {
        return Err(format!(
            "{} or {} is not a directory of its own (a link?)",
            root.display(),
            parent.display()
        ));
    }
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_file() => Ok(path),
        Ok(_) => Err(format!(
            "{} is not a regular file (a link?)",
            path.display()
        )),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Links `from` to `to`, or copies it (and syncs the copy) across file systems.
fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e)
            if e.raw_os_error() == Some(18) || e.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            // EXDEV: another file system
            std::fs::copy(from, to)?;
            std::fs::File::open(to)?.sync_all()
        }
        Err(e) => Err(e),
    }
}

/// The object store of `data_dir` into `to` (an empty directory): `objects.db` and every
/// body it names under `objects/`.
pub fn backup(data_dir: &Path, to: &Path) -> Result<Copied, String> {
    let db_path = to.join("objects.db");
    copy_database(&data_dir.join("objects.db"), &db_path)?;
    let conn = Connection::open(&db_path).map_err(|e| e.to_string())?;
    let sql = |e: rusqlite::Error| format!("reading the backup of objects.db: {e}");
    let rows: Vec<(i64, String, String, i64)> = {
        let mut st = conn
            .prepare("SELECT container_id, name, file, size FROM objects")
            .map_err(sql)?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?
    };
    let (src, dst) = (data_dir.join("objects"), to.join("objects"));
    let mut out = Copied::default();
    let mut gone = Vec::new();
    for (container, name, file, size) in rows {
        let from = match body_source(&src, &file) {
            Ok(p) => p,
            Err(_) if is_body_id(&file) && !body_path(&src, &file).exists() => {
                gone.push((container, name));
                continue;
            }
            Err(e) => return Err(format!("backing up {name}: {e}")),
        };
        match link_or_copy(&from, &body_path(&dst, &file)) {
            Ok(()) => {
                out.objects += 1;
                out.bytes += u64::try_from(size).unwrap_or_default();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => gone.push((container, name)),
            Err(e) => return Err(format!("backing up the body of {name}: {e}")),
        }
    }
    out.deleted_meanwhile = u64::try_from(gone.len()).unwrap_or(u64::MAX);
    let tx = conn.unchecked_transaction().map_err(sql)?;
    for (container, name) in &gone {
        tx.execute(
            "DELETE FROM objects WHERE container_id = ?1 AND name = ?2",
            rusqlite::params![container, name],
        )
        .map_err(sql)?;
    }
    if !gone.is_empty() {
        tx.execute(
            "UPDATE containers SET \
             object_count = (SELECT COUNT(*) FROM objects o WHERE o.container_id = containers.id), \
             bytes_used = (SELECT COALESCE(SUM(size), 0) FROM objects o WHERE o.container_id = containers.id)",
            [],
        )
        .map_err(sql)?;
    }
    // the backup holds no body that was already removed
    tx.execute("DELETE FROM garbage", []).map_err(sql)?;
    tx.commit().map_err(sql)?;
    std::fs::create_dir_all(dst.join("tmp")).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A backup made by [`backup`] into the data directory `data_dir`, which holds no object
/// store yet. Every row's body is checked before anything is written; a restore that
/// fails leaves no object store behind.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Copied, String> {
    let restored = restore_checked(from, data_dir);
    if restored.is_err() {
        for name in ["objects.db", "objects.db-wal", "objects.db-shm"] {
            let _ = std::fs::remove_file(data_dir.join(name));
        }
        let _ = std::fs::remove_dir_all(data_dir.join("objects"));
    }
    restored
}

fn restore_checked(from: &Path, data_dir: &Path) -> Result<Copied, String> {
    let db = from.join("objects.db");
    if !std::fs::symlink_metadata(&db).is_ok_and(|m| m.file_type().is_file()) {
        return Err(format!("{} holds no objects.db", from.display()));
    }
    let src = from.join("objects");
    let rows: Vec<(String, i64, String)> = {
        let conn = Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("{}: {e}", db.display()))?;
        let sql = |e: rusqlite::Error| format!("reading {}: {e}", db.display());
        let mut st = conn
            .prepare("SELECT file, size, name FROM objects")
            .map_err(sql)?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?
    };
    let mut bodies = Vec::with_capacity(rows.len());
    for (file, size, name) in &rows {
        let path = body_source(&src, file).map_err(|e| format!("restoring {name}: {e}"))?;
        let len = std::fs::symlink_metadata(&path).map_or(0, |m| m.len());
        if u64::try_from(*size).ok() != Some(len) {
            return Err(format!(
                "restoring {name}: its row says {size} bytes, its body holds {len}"
            ));
        }
        bodies.push((path, file, *size));
    }
    copy_database(&db, &data_dir.join("objects.db"))?;
    // a backup holds no garbage: what a crafted one names is never deleted at start
    Connection::open(data_dir.join("objects.db"))
        .and_then(|c| c.execute("DELETE FROM garbage", []))
        .map_err(|e| format!("{}: {e}", data_dir.join("objects.db").display()))?;
    let dst = data_dir.join("objects");
    let mut out = Copied::default();
    for (path, file, size) in bodies {
        link_or_copy(&path, &body_path(&dst, file))
            .map_err(|e| format!("restoring the body {file}: {e}"))?;
        out.objects += 1;
        out.bytes += u64::try_from(size).unwrap_or_default();
    }
    std::fs::create_dir_all(dst.join("tmp")).map_err(|e| e.to_string())?;
    Ok(out)
}
