//! Object bodies on disk. Names of objects never reach the filesystem: each body is a
//! file named by a random id. A PUT writes `tmp/<id>` while hashing, fsyncs it, renames
//! it to `<id[..2]>/<id>` and fsyncs the directory; only then is the metadata row
//! committed. A row removed or replaced notes its body as garbage in the same
//! transaction; the body is deleted then, or at the next start after a crash. At start,
//! temporary files and garbage are deleted; a body no row names that is not garbage (an
//! upload in flight at a crash, or one whose row was lost with the database) is moved to
//! `objects.lost`, never deleted.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use rand::RngCore;

use super::db::Db;
use crate::body::RequestBody;
use crate::config::DiskReserve;
use crate::error::Error;
use crate::store::salvage::first_free;

/// Bytes hashed and written per blocking call: large, so that few calls are made.
const WRITE_CHUNK: usize = 1 << 20;
/// A large upload is flushed to disk every this many bytes while more arrive, so that
/// the fsync that ends it finds little left to do.
const FLUSH_EVERY: u64 = 16 << 20;
/// Bytes read from disk per chunk of a response.
const CHUNK: usize = 256 << 10;

pub(super) struct Files {
    root: PathBuf,
    /// Small bodies read lately, by file id. A body file never changes once written,
    /// so an id always names the same bytes.
    small: Mutex<SmallBodies>,
    /// Free space uploads leave on the disk, for deletes and metadata; metadata writes
    /// leave half of it, for deletes.
    reserve: DiskReserve,
    /// Bytes that uploads under way have declared and not yet written: taken from the
    /// free space every other upload is judged by.
    promised: AtomicU64,
}

/// An upload's declared bytes not yet written, counted in `Files::promised` until they
/// are written or the upload ends.
struct Promise<'a> {
    promised: &'a AtomicU64,
    left: u64,
}

impl<'a> Promise<'a> {
    fn new(promised: &'a AtomicU64, bytes: u64) -> Promise<'a> {
        promised.fetch_add(bytes, Ordering::Relaxed);
        Promise {
            promised,
            left: bytes,
        }
    }

    /// `n` more bytes were handed to the disk, where they take their own space.
    fn kept(&mut self, n: u64) {
        let n = n.min(self.left);
        self.left -= n;
        self.promised.fetch_sub(n, Ordering::Relaxed);
    }
}

impl Drop for Promise<'_> {
    fn drop(&mut self) {
        self.promised.fetch_sub(self.left, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct SmallBodies {
    bytes: usize,
    by_id: HashMap<String, Bytes>,
}

/// Memory for small bodies kept; past it, they are all let go and kept anew.
const SMALL_BODIES: usize = 32 << 20;

/// The body file of a PUT and its hash: idle between chunks, or busy with one. A chunk
/// is hashed and written on two blocking threads at once.
enum Disk {
    Idle(File, Md5),
    Busy {
        write: tokio::task::JoinHandle<std::io::Result<File>>,
        hash: tokio::task::JoinHandle<Md5>,
    },
    Gone,
}

impl Disk {
    /// Waits for the chunk in flight; the file and the hash so far.
    async fn settle(&mut self) -> std::io::Result<(File, Md5)> {
        let lost = |e: tokio::task::JoinError| std::io::Error::other(e.to_string());
        match std::mem::replace(self, Disk::Gone) {
            Disk::Idle(file, md5) => Ok((file, md5)),
            Disk::Busy { write, hash } => {
                let md5 = hash.await.map_err(lost)?;
                Ok((write.await.map_err(lost)??, md5))
            }
            Disk::Gone => Err(std::io::Error::other(
                "the body file was lost after an error",
            )),
        }
    }

    /// Hashes and writes `frames` while the next ones arrive.
    fn start(file: File, mut md5: Md5, frames: Vec<Bytes>) -> Disk {
        let hashed = frames.clone();
        Disk::Busy {
            hash: tokio::task::spawn_blocking(move || {
                for f in &hashed {
                    md5.update(f);
                }
                md5
            }),
            write: tokio::task::spawn_blocking(move || {
                let mut file = file;
                for f in &frames {
                    file.write_all(f)?;
                }
                Ok(file)
            }),
        }
    }
}

/// The flushes of an upload's file that run while later bytes are hashed and written.
struct Flush {
    file: std::sync::Arc<File>,
    flushed_at: u64,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Flush {
    fn new(file: File) -> Flush {
        Flush {
            file: std::sync::Arc::new(file),
            flushed_at: 0,
            running: None,
        }
    }

    /// Starts a flush when `FLUSH_EVERY` bytes came since the last one and none runs;
    /// reports the error of one that ended.
    fn progress(&mut self, size: u64) -> std::io::Result<()> {
        if let Some(job) = self.running.take_if(|job| job.is_finished())
            && let Some(done) = futures_util::FutureExt::now_or_never(job)
        {
            done.map_err(|e| std::io::Error::other(e.to_string()))??;
        }
        if self.running.is_none() && size - self.flushed_at >= FLUSH_EVERY {
            self.flushed_at = size;
            let file = self.file.clone();
            self.running = Some(tokio::task::spawn_blocking(move || file.sync_data()));
        }
        Ok(())
    }

    /// Waits for the flush in flight.
    async fn finish(self) -> std::io::Result<()> {
        match self.running {
            Some(job) => job
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?,
            None => Ok(()),
        }
    }
}

/// A body written to a temporary file, not yet visible.
#[derive(Debug)]
pub(super) struct Written {
    pub id: String,
    pub size: u64,
    pub md5: String,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum WriteError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the body ended after {got} of {expected} bytes")]
    Short { got: u64, expected: u64 },
    #[error("reading the request body failed: {0}")]
    Client(String),
    #[error("writing to disk failed: {0}")]
    Disk(#[from] std::io::Error),
    #[error("the disk keeps {0} bytes free for deletes and metadata")]
    Full(u64),
    #[error("the disk keeps {0} bytes free for deletes")]
    KeptForDeletes(u64),
}

impl From<WriteError> for Error {
    fn from(e: WriteError) -> Error {
        match e {
            WriteError::TooLarge(n) => {
                Error::PayloadTooLarge(format!("the body is larger than {n} bytes"))
            }
            WriteError::Short { got, expected } => Error::bad_request(format!(
                "the request body ended after {got} of {expected} bytes"
            )),
            WriteError::Client(m) => Error::bad_request(m),
            WriteError::Disk(e) => Error::io("writing an object body", e),
            WriteError::Full(reserve) => Error::InsufficientStorage(format!(
                "There was not enough space to save the resource (the data directory keeps \
                 {reserve} bytes free for deletes and metadata)"
            )),
            WriteError::KeptForDeletes(kept) => Error::InsufficientStorage(format!(
                "There was not enough space to save the metadata (the data directory keeps \
                 {kept} bytes free for deletes)"
            )),
        }
    }
}

/// A body file opened for reading; a link in its place is refused, not followed (a
/// restored or planted link must not serve another file).
pub(super) fn open_body(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let no_follow = i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or_default();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(no_follow)
        .open(path)
}

/// Whether `id` can be a body's name: what `new_id` makes (no separator, no dots).
pub(super) fn is_body_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn new_id() -> String {
    let mut raw = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Files {
    /// The bodies under `root`; refused when its `tmp` is not a directory of its own (a
    /// link would have the sweep at start empty another directory).
    pub(super) fn open(root: &Path, reserve: DiskReserve) -> std::io::Result<Files> {
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        if !std::fs::symlink_metadata(&tmp)?.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not a directory (a link?)",
                tmp.display()
            )));
        }
        Ok(Files {
            root: root.to_path_buf(),
            small: Mutex::default(),
            reserve,
            promised: AtomicU64::new(0),
        })
    }

    /// The disk's free bytes, less what uploads under way will still write; its reserve.
    fn free(&self) -> Result<(u64, u64), WriteError> {
        let disk = rustix::fs::statvfs(&self.root).map_err(std::io::Error::from)?;
        let total = disk.f_blocks.saturating_mul(disk.f_frsize);
        let free = disk.f_bavail.saturating_mul(disk.f_frsize);
        let promised = self.promised.load(Ordering::Relaxed);
        Ok((free.saturating_sub(promised), self.reserve.of(total)))
    }

    /// Whether the bodies' directory is there and the disk has more than its reserve
    /// free; else what is wrong.
    pub(super) fn check(&self) -> Result<(), String> {
        let meta = std::fs::metadata(&self.root)
            .map_err(|e| format!("{} cannot be read: {e}", self.root.display()))?;
        if !meta.is_dir() {
            return Err(format!("{} is not a directory", self.root.display()));
        }
        let (free, reserve) = self
            .free()
            .map_err(|e| format!("the free space of {} is unknown: {e}", self.root.display()))?;
        if free <= reserve {
            return Err(format!(
                "{free} bytes are free on the disk of {}, within its reserve of {reserve}: \
                 uploads are refused",
                self.root.display()
            ));
        }
        Ok(())
    }

    /// Refuses to store `more` bytes that would leave less than the reserve free.
    fn room_for(&self, more: u64) -> Result<(), WriteError> {
        let (free, reserve) = self.free()?;
        if free < more.saturating_add(reserve) {
            return Err(WriteError::Full(reserve));
        }
        Ok(())
    }

    /// Refuses a metadata write once less than half the reserve is free: the rest is
    /// kept for deletes, which free space.
    pub(super) fn room_for_metadata(&self) -> Result<(), WriteError> {
        let (free, reserve) = self.free()?;
        if free < reserve / 2 {
            return Err(WriteError::KeptForDeletes(reserve / 2));
        }
        Ok(())
    }

    fn small(&self) -> std::sync::MutexGuard<'_, SmallBodies> {
        self.small.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A small body read before.
    pub(super) fn kept(&self, id: &str) -> Option<Bytes> {
        self.small().by_id.get(id).cloned()
    }

    /// Keeps a small body for the next reads of its file.
    pub(super) fn keep(&self, id: &str, body: Bytes) {
        let mut small = self.small();
        if small.bytes + body.len() > SMALL_BODIES {
            small.by_id.clear();
            small.bytes = 0;
        }
        small.bytes += body.len();
        if let Some(old) = small.by_id.insert(id.to_owned(), body) {
            small.bytes -= old.len();
        }
    }

    /// Lets a body go with its file.
    fn forget(&self, id: &str) {
        let mut small = self.small();
        if let Some(old) = small.by_id.remove(id) {
            small.bytes -= old.len();
        }
    }

    pub(super) fn path(&self, id: &str) -> PathBuf {
        body_path(&self.root, id)
    }

    fn tmp_path(&self, id: &str) -> PathBuf {
        self.root.join("tmp").join(id)
    }

    /// Streams a request body into a temporary file, hashing it on the way; fsyncs it.
    /// At most `limit` bytes; exactly `expected` when the client declared a length.
    pub(super) async fn write<B: RequestBody>(
        &self,
        mut body: B,
        limit: u64,
        expected: Option<u64>,
    ) -> Result<Written, WriteError> {
        self.room_for(expected.unwrap_or_default())?;
        let mut promise = Promise::new(&self.promised, expected.unwrap_or_default());
        let id = new_id();
        let path = self.tmp_path(&id);
        let create_path = path.clone();
        let file = tokio::task::spawn_blocking(move || File::create(create_path))
            .await
            .map_err(|e| WriteError::Disk(std::io::Error::other(e.to_string())))??;
        let flusher = file.try_clone().map_err(WriteError::Disk)?;
        let mut flush = Flush::new(flusher);
        let mut disk = Disk::Idle(file, Md5::new());
        let mut size: u64 = 0;
        // frames are handed to the disk as they came, without copying them together
        let mut batch: Vec<Bytes> = Vec::new();
        let mut batched = 0usize;
        let received: Result<(), WriteError> = loop {
            let frame = body.frame().await;
            let last = frame.is_none();
            if let Some(frame) = frame {
                let data = match frame {
                    Err(e) => break Err(WriteError::Client(e.to_string())),
                    Ok(frame) => match frame.into_data() {
                        Ok(d) => d,
                        Err(_) => continue,
                    },
                };
                size += data.len() as u64;
                if size > limit || expected.is_some_and(|e| size > e) {
                    break Err(WriteError::TooLarge(expected.unwrap_or(limit).min(limit)));
                }
                batched += data.len();
                batch.push(data);
            }
            if batched >= WRITE_CHUNK || (last && batched > 0) {
                // a body of unknown length is held to the reserve as it comes
                if expected.is_none()
                    && let Err(e) = self.room_for(batched as u64)
                {
                    break Err(e);
                }
                // one batch is hashed and written while the next arrives
                let (file, md5) = match disk.settle().await {
                    Ok(d) => d,
                    Err(e) => break Err(WriteError::Disk(e)),
                };
                promise.kept(batched as u64);
                batched = 0;
                disk = Disk::start(file, md5, std::mem::take(&mut batch));
            }
            if let Err(e) = flush.progress(size) {
                break Err(WriteError::Disk(e));
            }
            if last {
                break Ok(());
            }
        };
        let settled = match (disk.settle().await, flush.finish().await) {
            (Ok(d), Ok(())) => Ok(d),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let outcome = match (received, settled) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(WriteError::Disk(e)),
            (Ok(()), Ok(_)) if expected.is_some_and(|e| e != size) => Err(WriteError::Short {
                got: size,
                expected: expected.unwrap_or_default(),
            }),
            (Ok(()), Ok((file, md5))) => tokio::task::spawn_blocking(move || file.sync_all())
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r)
                .map(|()| Written {
                    id,
                    size,
                    md5: hex::encode(md5.finalize()),
                })
                .map_err(WriteError::Disk),
        };
        if outcome.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        outcome
    }

    /// Writes bytes the gateway made (a manifest) as a temporary body.
    /// An empty one (a delete marker, a link) is made even within the reserve.
    pub(super) fn write_bytes(&self, data: &[u8]) -> Result<Written, WriteError> {
        if !data.is_empty() {
            self.room_for(data.len() as u64)?;
        }
        let id = new_id();
        let mut file = File::create(self.tmp_path(&id))?;
        file.write_all(data)?;
        file.sync_all()?;
        Ok(Written {
            id,
            size: data.len() as u64,
            md5: hex::encode(Md5::digest(data)),
        })
    }

    /// Moves a written body to its final place, durably; a body that cannot be is
    /// removed, wherever the failure left it.
    pub(super) fn commit(&self, id: &str) -> std::io::Result<()> {
        let dest = self.path(id);
        let dir = dest.parent().unwrap_or(&self.root);
        let moved = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::rename(self.tmp_path(id), &dest))
            .and_then(|()| sync_dir(dir));
        if moved.is_err() {
            let _ = std::fs::remove_file(self.tmp_path(id));
            let _ = std::fs::remove_file(&dest);
        }
        moved
    }

    /// A new body with the same bytes as `id` (a hard link: no bytes are copied).
    pub(super) fn link_copy(&self, id: &str) -> std::io::Result<String> {
        let new = new_id();
        std::fs::hard_link(self.path(id), self.tmp_path(&new))?;
        Ok(new)
    }

    /// Forgets a body that was written but will not be committed.
    pub(super) fn discard(&self, id: &str) {
        let _ = std::fs::remove_file(self.tmp_path(id));
    }

    /// Removes a committed body that no row points to any more.
    pub(super) fn remove(&self, id: &str) {
        self.forget(id);
        if let Err(e) = std::fs::remove_file(self.path(id))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = id, error = %e, "cannot remove an object body");
        }
    }

    /// Clears what a crash left: temporary bodies (never acknowledged) and the bodies of
    /// rows that were removed or replaced are deleted; a body no row names, and that is
    /// not such garbage, is moved to `lost` (never deleted: its row may be what was lost).
    /// Refuses when the database holds no container while bodies no row names remain: its
    /// file was lost, and starting would make every object disappear.
    pub(super) fn sweep(&self, db: &Db, lost: &Path) -> Result<Swept, String> {
        let io = |e: std::io::Error| format!("cannot sweep {}: {e}", self.root.display());
        let tmp = self.root.join("tmp");
        let mut swept = Swept::default();
        for entry in std::fs::read_dir(&tmp).map_err(io)? {
            std::fs::remove_file(entry.map_err(io)?.path()).map_err(io)?;
            swept.removed += 1;
        }
        swept.removed += self.clear_garbage(db, usize::MAX)?;
        let unnamed = unnamed_bodies(&self.root, db).map_err(io)?;
        if unnamed.is_empty() {
            return Ok(swept);
        }
        if db.is_empty().map_err(|e| e.to_string())? {
            return Err(without_database(&self.root, unnamed.len(), lost));
        }
        swept.lost = set_aside(&unnamed, lost).map_err(io)?;
        Ok(swept)
    }

    /// Deletes the bodies of removed and replaced rows that are still on disk, and
    /// forgets them, up to `batches` batches of 10,000; how many files went.
    pub(super) fn clear_garbage(&self, db: &Db, batches: usize) -> Result<usize, String> {
        let mut removed = 0;
        for _ in 0..batches {
            let files = db.garbage(10_000).map_err(|e| e.to_string())?;
            if files.is_empty() {
                break;
            }
            for id in &files {
                self.forget(id);
                // only a body's own name is ever deleted: a row naming another path (a
                // crafted database) is forgotten, nothing removed
                if !is_body_id(id) {
                    tracing::warn!(name = %id.escape_debug(), "a removed row names what is not a body; nothing deleted");
                    continue;
                }
                match std::fs::remove_file(self.path(id)) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("cannot remove an object body {id}: {e}")),
                }
            }
            db.forget_garbage(&files).map_err(|e| e.to_string())?;
        }
        Ok(removed)
    }
}

/// Why a store does not start on `bodies` bodies under `root` that its database does not
/// name, while that database holds nothing (its file was lost or replaced).
pub(super) fn without_database(root: &Path, bodies: usize, lost: &Path) -> String {
    let dir = lost.parent().unwrap_or(lost);
    format!(
        "{} holds {bodies} object bodies that the object database ({}) does not name, and \
         that database holds nothing: its file was lost or replaced. swiftgate does not \
         start on bodies without their database: restore objects.db from a backup, or keep \
         the bodies aside in {} and start afresh with `swiftgate --data {} store salvage`",
        root.display(),
        dir.join("objects.db").display(),
        lost.display(),
        dir.display()
    )
}

/// How many committed bodies are under `root` (none when it is not there).
pub(super) fn count_bodies(root: &Path) -> std::io::Result<usize> {
    if !root.is_dir() {
        return Ok(0);
    }
    let mut n = 0;
    for_each_body(root, |_, _| {
        n += 1;
        Ok(())
    })?;
    Ok(n)
}

/// What a sweep at start did.
#[derive(Debug, Default)]
pub(super) struct Swept {
    /// Temporary bodies and bodies of removed rows, deleted.
    pub removed: usize,
    /// Bodies no row names, moved aside.
    pub lost: usize,
}

/// The committed bodies under `root` that no row of `db` names: (id, path).
pub(super) fn unnamed_bodies(root: &Path, db: &Db) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut unnamed = Vec::new();
    for_each_body(root, |id, path| {
        if !db.file_in_use(&id).map_err(std::io::Error::other)? {
            unnamed.push((id, path));
        }
        Ok(())
    })?;
    Ok(unnamed)
}

/// Refuses a `lost` that is a link or not a directory: bodies set aside stay inside the
/// data directory.
pub(super) fn check_lost(lost: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(lost).is_ok_and(|m| !m.is_dir()) {
        return Err(std::io::Error::other(format!(
            "{} is not a directory: bodies set aside stay inside the data directory; move \
             it away first",
            lost.display()
        )));
    }
    Ok(())
}

/// Moves bodies into `lost` (a directory of its own, made if needed), never over a file
/// there; how many were moved.
pub(super) fn set_aside(bodies: &[(String, PathBuf)], lost: &Path) -> std::io::Result<usize> {
    if bodies.is_empty() {
        return Ok(0);
    }
    check_lost(lost)?;
    std::fs::create_dir_all(lost)?;
    for (id, path) in bodies {
        let free = first_free(&lost.join(id), |p| std::fs::symlink_metadata(p).is_ok());
        std::fs::rename(path, free)?;
    }
    sync_dir(lost)?;
    Ok(bodies.len())
}

/// Where the body file `id` is kept under `root`.
pub(super) fn body_path(root: &Path, id: &str) -> PathBuf {
    root.join(id.get(..2).unwrap_or_default()).join(id)
}

/// Calls `f` with the id and path of every committed body file under `root`.
pub(super) fn for_each_body(
    root: &Path,
    mut f: impl FnMut(String, PathBuf) -> std::io::Result<()>,
) -> std::io::Result<()> {
    for dir in std::fs::read_dir(root)? {
        let dir = dir?;
        if dir.file_name() == "tmp" || !dir.file_type()?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(dir.path())? {
            let entry = entry?;
            f(
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            )?;
        }
    }
    Ok(())
}

/// Part of a response body: bytes the gateway made, or a range of a body file
/// (already open, or opened when its turn comes).
pub(super) enum Piece {
    Bytes(Bytes),
    Open {
        file: File,
        offset: u64,
        len: u64,
    },
    Path {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
}

/// Reads up to `len` bytes at the file's position on a blocking thread; hands the file back.
async fn read_chunk(mut file: File, len: usize) -> std::io::Result<(File, Bytes)> {
    tokio::task::spawn_blocking(move || {
        let mut buf = BytesMut::zeroed(len);
        let n = file.read(&mut buf)?;
        buf.truncate(n);
        Ok((file, buf.freeze()))
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))?
}

struct Reader {
    pieces: std::vec::IntoIter<Piece>,
    /// The file being read and the bytes of it still to send.
    current: Option<(File, u64)>,
}

impl Reader {
    async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            if let Some((file, left)) = self.current.take() {
                if left == 0 {
                    continue;
                }
                let want = usize::try_from(left).map_or(CHUNK, |l| CHUNK.min(l));
                return Some(match read_chunk(file, want).await {
                    Ok((_, b)) if b.is_empty() => Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "object body shorter than its record",
                    )),
                    Ok((file, b)) => {
                        self.current = Some((file, left - b.len() as u64));
                        Ok(b)
                    }
                    Err(e) => Err(e),
                });
            }
            let (file, offset, len) = match self.pieces.next()? {
                Piece::Bytes(b) => return Some(Ok(b)),
                Piece::Open { file, offset, len } => (Ok(file), offset, len),
                Piece::Path { path, offset, len } => (
                    tokio::task::spawn_blocking(move || open_body(&path))
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string()))),
                    offset,
                    len,
                ),
            };
            let seeked = file.and_then(|mut f| f.seek(SeekFrom::Start(offset)).map(|_| f));
            match seeked {
                Ok(f) => self.current = Some((f, len)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Streams pieces in order; only the chunk in flight is in memory, and no thread is
/// held between chunks.
pub(super) fn stream(pieces: Vec<Piece>) -> crate::body::Body {
    use http_body_util::StreamBody;
    let reader = Reader {
        pieces: pieces.into_iter(),
        current: None,
    };
    let frames = futures_util::stream::unfold(reader, |mut reader| async move {
        reader
            .next()
            .await
            .map(|item| (item.map(hyper::body::Frame::data), reader))
    });
    BodyExt::boxed(StreamBody::new(frames))
}
