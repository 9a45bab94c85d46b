//! Object bodies on disk. Names of objects never reach the filesystem: each body is a
//! file named by a random id. A PUT writes `tmp/<id>` while hashing, fsyncs it, renames
//! it to `<id[..2]>/<id>` and fsyncs the directory; only then is the metadata row
//! committed. Whatever a crash leaves behind (temporary files, renamed files no row
//! points to) is swept at start.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use rand::RngCore;
use tokio::sync::mpsc;

use super::db::Db;

/// Bytes handed to the disk writer at a time, and read from disk per chunk.
const CHUNK: usize = 1 << 20;

pub struct Files {
    root: PathBuf,
}

/// A body written to a temporary file, not yet visible.
#[derive(Debug)]
pub struct Written {
    pub id: String,
    pub size: u64,
    pub md5: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the body ended after {got} of {expected} bytes")]
    Short { got: u64, expected: u64 },
    #[error("reading the request body failed: {0}")]
    Client(String),
    #[error("writing to disk failed: {0}")]
    Disk(#[from] std::io::Error),
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
    pub fn open(root: &Path) -> std::io::Result<Files> {
        std::fs::create_dir_all(root.join("tmp"))?;
        Ok(Files {
            root: root.to_path_buf(),
        })
    }

    pub fn path(&self, id: &str) -> PathBuf {
        self.root.join(&id[..2]).join(id)
    }

    fn tmp_path(&self, id: &str) -> PathBuf {
        self.root.join("tmp").join(id)
    }

    /// Streams a request body into a temporary file, hashing it on the way; fsyncs it.
    /// At most `limit` bytes; exactly `expected` when the client declared a length.
    pub async fn write<B>(
        &self,
        mut body: B,
        limit: u64,
        expected: Option<u64>,
    ) -> Result<Written, WriteError>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let id = new_id();
        let path = self.tmp_path(&id);
        let (tx, mut rx) = mpsc::channel::<Bytes>(4);
        // hashing and writing run on a blocking thread while the next bytes arrive
        let disk_path = path.clone();
        let disk = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            let mut file = File::create(&disk_path)?;
            let mut md5 = Md5::new();
            while let Some(chunk) = rx.blocking_recv() {
                md5.update(&chunk);
                file.write_all(&chunk)?;
            }
            file.sync_all()?;
            Ok(hex::encode(md5.finalize()))
        });
        let mut size: u64 = 0;
        let mut buf = BytesMut::with_capacity(CHUNK);
        let received: Result<(), WriteError> = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| WriteError::Client(e.to_string()))?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                size += data.len() as u64;
                if size > limit || expected.is_some_and(|e| size > e) {
                    return Err(WriteError::TooLarge(expected.unwrap_or(limit).min(limit)));
                }
                buf.extend_from_slice(&data);
                if buf.len() >= CHUNK && tx.send(buf.split().freeze()).await.is_err() {
                    break;
                }
            }
            if !buf.is_empty() {
                let _ = tx.send(buf.split().freeze()).await;
            }
            Ok(())
        }
        .await;
        drop(tx);
        let md5 = disk
            .await
            .map_err(|e| WriteError::Disk(std::io::Error::other(e.to_string())))?;
        let outcome = match (received, md5) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(WriteError::Disk(e)),
            (Ok(()), Ok(md5)) => match expected {
                Some(e) if e != size => Err(WriteError::Short {
                    got: size,
                    expected: e,
                }),
                _ => Ok(Written { id, size, md5 }),
            },
        };
        if outcome.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        outcome
    }

    /// Writes bytes the gateway made (a manifest) as a temporary body.
    pub fn write_bytes(&self, data: &[u8]) -> std::io::Result<Written> {
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

    /// Moves a written body to its final place, durably.
    pub fn commit(&self, id: &str) -> std::io::Result<()> {
        let dest = self.path(id);
        let dir = dest.parent().expect("files live in a directory");
        std::fs::create_dir_all(dir)?;
        std::fs::rename(self.tmp_path(id), &dest)?;
        sync_dir(dir)
    }

    /// A new body with the same bytes as `id` (a hard link: no bytes are copied).
    pub fn link_copy(&self, id: &str) -> std::io::Result<String> {
        let new = new_id();
        std::fs::hard_link(self.path(id), self.tmp_path(&new))?;
        Ok(new)
    }

    /// Forgets a body that was written but will not be committed.
    pub fn discard(&self, id: &str) {
        let _ = std::fs::remove_file(self.tmp_path(id));
    }

    /// Removes a committed body that no row points to any more.
    pub fn remove(&self, id: &str) {
        if let Err(e) = std::fs::remove_file(self.path(id))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = id, error = %e, "cannot remove an object body");
        }
    }

    /// Deletes what a crash left: temporary bodies and bodies no row points to.
    pub fn sweep(&self, db: &Db) -> std::io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(self.root.join("tmp"))? {
            std::fs::remove_file(entry?.path())?;
            removed += 1;
        }
        for dir in std::fs::read_dir(&self.root)? {
            let dir = dir?;
            if dir.file_name() == "tmp" || !dir.file_type()?.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(dir.path())? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let in_use = db
                    .file_in_use(&name)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                if !in_use {
                    std::fs::remove_file(entry.path())?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// Part of a response body: bytes the gateway made, or a range of a body file
/// (already open, or opened when its turn comes).
pub enum Piece {
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

/// Streams pieces in order from a blocking thread; at most a few chunks are in memory.
pub fn stream(pieces: Vec<Piece>) -> crate::http_util::Body {
    use http_body_util::StreamBody;
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        for piece in pieces {
            let (mut file, offset, mut left) = match piece {
                Piece::Bytes(b) => {
                    if tx.blocking_send(Ok(b)).is_err() {
                        return;
                    }
                    continue;
                }
                Piece::Open { file, offset, len } => (file, offset, len),
                Piece::Path { path, offset, len } => match File::open(&path) {
                    Ok(f) => (f, offset, len),
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                },
            };
            if let Err(e) = file.seek(SeekFrom::Start(offset)) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            while left > 0 {
                let mut buf = BytesMut::zeroed(CHUNK.min(left as usize));
                match file.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.blocking_send(Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "object body shorter than its record",
                        )));
                        return;
                    }
                    Ok(n) => {
                        buf.truncate(n);
                        left -= n as u64;
                        if tx.blocking_send(Ok(buf.freeze())).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        }
    });
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|item| (item.map(hyper::body::Frame::data), rx))
    });
    BodyExt::boxed(StreamBody::new(frames))
}
