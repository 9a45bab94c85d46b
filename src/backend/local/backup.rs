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

use super::files::body_path;
use crate::store::copy_database;

/// What a backup or a restore holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub objects: u64,
    pub bytes: u64,
    /// Objects deleted while the backup ran, left out of it.
    pub deleted_meanwhile: u64,
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
        match link_or_copy(&body_path(&src, &file), &body_path(&dst, &file)) {
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
/// store yet.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Copied, String> {
    let db = from.join("objects.db");
    if !db.exists() {
        return Err(format!("{} holds no objects.db", from.display()));
    }
    copy_database(&db, &data_dir.join("objects.db"))?;
    let (src, dst) = (from.join("objects"), data_dir.join("objects"));
    let mut out = Copied::default();
    let conn = Connection::open(data_dir.join("objects.db")).map_err(|e| e.to_string())?;
    let sql = |e: rusqlite::Error| format!("reading {}: {e}", db.display());
    let mut st = conn
        .prepare("SELECT file, size, name FROM objects")
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(sql)?;
    for row in rows {
        let (file, size, name) = row.map_err(sql)?;
        link_or_copy(&body_path(&src, &file), &body_path(&dst, &file))
            .map_err(|e| format!("restoring the body of {name}: {e}"))?;
        out.objects += 1;
        out.bytes += u64::try_from(size).unwrap_or_default();
    }
    std::fs::create_dir_all(dst.join("tmp")).map_err(|e| e.to_string())?;
    Ok(out)
}
