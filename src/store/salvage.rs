//! Salvaging a damaged SQLite database: the damaged files are set aside (kept), a fresh
//! database is made with this swiftgate's schema, and every row SQLite can still read is
//! copied into it, table by table, until a table's damage stops the reading. Rows whose
//! parent was lost (a user of a lost account) are dropped.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::StoreError;

/// A database swiftgate will not serve from, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} {path} is damaged ({detail}): swiftgate does not serve from a damaged \
     database. Restore the data directory from a backup, or, with the gateway stopped, keep \
     what can still be read: `swiftgate --data {dir} store salvage`",
    path = .path.display(),
    dir = .path.parent().map(|d| d.display().to_string()).unwrap_or_default()
)]
pub struct Damage {
    /// Which database: "the identity store", "the object store database".
    pub what: &'static str,
    pub path: PathBuf,
    pub detail: String,
}

/// Whether SQLite says the file is not a sound database.
pub fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// `Err` with what SQLite's `quick_check` found, when `conn`'s database is not sound.
pub fn quick_check(conn: &Connection) -> rusqlite::Result<Result<(), String>> {
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    Ok(if check == "ok" { Ok(()) } else { Err(check) })
}

/// What a salvage kept.
#[derive(Debug, Default)]
pub struct Salvaged {
    /// Where the damaged database was set aside.
    pub kept_as: PathBuf,
    pub rows: usize,
    /// Tables whose reading stopped at damage, or that could not be read at all.
    pub cut_short: Vec<String>,
    /// Rows dropped because what they belong to was lost.
    pub orphans: usize,
}

/// Whether the database at `path` opens and passes SQLite's `quick_check`.
pub fn is_sound(path: &Path) -> bool {
    Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .and_then(|c| c.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0)))
        .is_ok_and(|check| check == "ok")
}

/// `base`, or the first of `base.1`, `base.2`, … that is not `taken`.
pub fn first_free(base: &Path, taken: impl Fn(&PathBuf) -> bool) -> PathBuf {
    std::iter::once(base.to_path_buf())
        .chain((1u32..).map(|n| PathBuf::from(format!("{}.{n}", base.display()))))
        .find(|p| !taken(p))
        .unwrap_or_else(|| base.to_path_buf())
}

/// Sets `path` aside (with its `-wal` and `-shm`, whose commits it may hold) as
/// `path.damaged`, or `path.damaged.N` when an earlier salvage kept that name; the new
/// name. Nothing set aside before is replaced.
pub fn set_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let taken = |p: &PathBuf| {
        ["", "-wal", "-shm"]
            .iter()
            .any(|suffix| Path::new(&format!("{}{suffix}", p.display())).exists())
    };
    let kept = first_free(&PathBuf::from(format!("{}.damaged", path.display())), taken);
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", kept.display()));
            std::fs::rename(&from, &to).map_err(|e| StoreError::Open {
                path: from.display().to_string(),
                source: e,
            })?;
        }
    }
    Ok(kept)
}

/// Makes the database at `path` anew beside it, at `path.salvaging`: `fill` makes and
/// fills the new database there, and closes it. Only then is whatever is at `path` set
/// aside (`set_aside`) and the new one put in its place, so that a failure on the way
/// leaves `path` as it was. Where `path` was set aside, and what `fill` said.
pub fn rebuild<T>(
    path: &Path,
    fill: impl FnOnce(&Path) -> Result<T, StoreError>,
) -> Result<(Option<PathBuf>, T), StoreError> {
    let fresh = PathBuf::from(format!("{}.salvaging", path.display()));
    let with = |p: &Path, suffix: &str| PathBuf::from(format!("{}{suffix}", p.display()));
    let clear = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(with(&fresh, suffix));
        }
    };
    clear();
    let filled = match fill(&fresh) {
        Ok(t) => t,
        Err(e) => {
            clear();
            return Err(e);
        }
    };
    let moved = || -> Result<Option<PathBuf>, StoreError> {
        let open_error = |p: &Path, e| StoreError::Open {
            path: p.display().to_string(),
            source: e,
        };
        // a WAL left without its file goes aside with it: it is not the new one's
        let there = ["", "-wal", "-shm"]
            .iter()
            .any(|suffix| std::fs::symlink_metadata(with(path, suffix)).is_ok());
        let kept = if there { Some(set_aside(path)?) } else { None };
        for suffix in ["-wal", ""] {
            let from = with(&fresh, suffix);
            if from.exists() {
                std::fs::rename(&from, with(path, suffix)).map_err(|e| open_error(&from, e))?;
            }
        }
        let _ = std::fs::remove_file(with(&fresh, "-shm"));
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| open_error(dir, e))?;
        }
        Ok(kept)
    };
    Ok((moved()?, filled))
}

/// The names of `schema`'s columns of `table`.
fn columns(conn: &Connection, schema: &str, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare(&format!("PRAGMA {schema}.table_info(\"{table}\")"))?;
    st.query_map([], |r| r.get::<_, String>(1))?.collect()
}

/// Copies what can be read of `damaged` into `to` (a fresh database with the schema):
/// each table's rows in the order SQLite reads them, the columns both have.
pub fn copy_rows(damaged: &Path, to: &Connection) -> Result<Salvaged, StoreError> {
    let mut out = Salvaged {
        kept_as: damaged.to_path_buf(),
        ..Salvaged::default()
    };
    to.pragma_update(None, "foreign_keys", "OFF")?;
    // read from a copy, made whole in length: SQLite reads nothing of a file shorter than
    // its header says, but a missing page read as zeros only stops the table it is in
    let work = PathBuf::from(format!("{}.reading", damaged.display()));
    if !std::fs::symlink_metadata(damaged).is_ok_and(|m| m.is_file()) {
        // not a file (a directory in its place): nothing of it can be read
        out.cut_short = tables_of(to)?;
        return Ok(out);
    }
    let copied = (|| -> std::io::Result<()> {
        std::fs::copy(damaged, &work)?;
        let wal = PathBuf::from(format!("{}-wal", damaged.display()));
        if wal.exists() {
            std::fs::copy(&wal, format!("{}-wal", work.display()))?;
        }
        pad(&work)
    })();
    let result = copied
        .map_err(|e| StoreError::Open {
            path: damaged.display().to_string(),
            source: e,
        })
        .and_then(|()| copy_from(&work, to, &mut out));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", work.display()));
    }
    result?;
    to.pragma_update(None, "foreign_keys", "ON")?;
    Ok(out)
}

/// How every SQLite database file begins.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// Lengthens a database file cut short to the pages its header counts, with zeros.
fn pad(path: &Path) -> std::io::Result<()> {
    let mut head = [0u8; 100];
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    // a header that is not SQLite's says nothing of the file's length
    if std::io::Read::read_exact(&mut f, &mut head).is_err() || !head.starts_with(SQLITE_MAGIC) {
        return Ok(());
    }
    let page = match u16::from_be_bytes([head[16], head[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let pages = u64::from(u32::from_be_bytes([head[28], head[29], head[30], head[31]]));
    let want = page.saturating_mul(pages);
    if f.metadata()?.len() < want {
        f.set_len(want)?;
    }
    Ok(())
}

/// The tables of the new database.
fn tables_of(to: &Connection) -> rusqlite::Result<Vec<String>> {
    to.prepare(
        "SELECT name FROM main.sqlite_schema WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?
    .query_map([], |r| r.get(0))?
    .collect()
}

fn copy_from(damaged: &Path, to: &Connection, out: &mut Salvaged) -> Result<(), StoreError> {
    let tables = tables_of(to)?;
    if let Err(e) = to.execute(
        "ATTACH DATABASE ?1 AS damaged",
        [damaged.display().to_string()],
    ) {
        if !is_damage(&e) {
            return Err(e.into());
        }
        out.cut_short = tables;
        return Ok(());
    }
    let readable = to
        .query_row("SELECT count(*) FROM damaged.sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })
        .is_ok();
    if !readable {
        let _ = to.execute("DETACH DATABASE damaged", []);
        out.cut_short = tables;
        return Ok(());
    }
    for table in tables {
        let ours = columns(to, "main", &table)?;
        let theirs = columns(to, "damaged", &table).unwrap_or_default();
        let shared: Vec<&String> = ours.iter().filter(|c| theirs.contains(c)).collect();
        if shared.is_empty() {
            out.cut_short.push(table);
            continue;
        }
        let list = shared
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let marks = vec!["?"; shared.len()].join(", ");
        let mut insert = to.prepare(&format!(
            "INSERT OR IGNORE INTO main.\"{table}\" ({list}) VALUES ({marks})"
        ))?;
        let Ok(mut select) = to.prepare(&format!("SELECT {list} FROM damaged.\"{table}\"")) else {
            out.cut_short.push(table);
            continue;
        };
        let Ok(mut rows) = select.query([]) else {
            out.cut_short.push(table);
            continue;
        };
        loop {
            match rows.next() {
                Ok(Some(row)) => {
                    let values = (0..shared.len())
                        .map(|i| row.get::<_, rusqlite::types::Value>(i))
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    out.rows += insert.execute(rusqlite::params_from_iter(values))?;
                }
                Ok(None) => break,
                Err(_) => {
                    out.cut_short.push(table.clone());
                    break;
                }
            }
        }
    }
    to.execute("DETACH DATABASE damaged", [])?;
    // rows whose parent row was lost go too
    loop {
        let orphans: Vec<(String, i64)> = to
            .prepare("PRAGMA foreign_key_check")?
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
            })?
            .filter_map(|r| r.ok().and_then(|(t, id)| id.map(|id| (t, id))))
            .collect();
        if orphans.is_empty() {
            break;
        }
        for (table, rowid) in orphans {
            out.orphans += to.execute(
                &format!("DELETE FROM \"{table}\" WHERE rowid = ?1"),
                [rowid],
            )?;
        }
    }
    Ok(())
}
