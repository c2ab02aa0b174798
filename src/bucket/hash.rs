//! Turning a file's bytes into its UnixFS root (CID and DAG size) for a
//! bucket's profile: from a local file (staged copy or local backing file,
//! the index-on-close path) or from a tree, read in pieces (`bucket index`).

use super::error::{BucketError, Result};
use crate::car::{BlockSink, Built, Discard, FileBuilder, Profile};
use crate::vfs::Tree;
use bytes::Bytes;
use std::sync::Arc;

/// Bytes asked of a tree per read while hashing: 4 MiB, four 1 MiB chunks,
/// few enough calls for S3 and small enough to keep memory flat.
pub const PIECE: u64 = 4 << 20;
/// Pieces queued between the reading task and the hashing thread.
const QUEUE: usize = 4;

/// The root of the bytes of the open file `file`, read from its start with
/// positional reads (its offset, shared with whoever else holds the
/// descriptor, is left alone; the file may be renamed or unlinked since).
pub fn hash_open(file: &std::fs::File, profile: Profile) -> Result<Built> {
    let mut sink = Discard;
    let mut fb = FileBuilder::with_threads(profile, &mut sink, 1);
    fb.write_from(&mut ReadAt { file, pos: 0 }, &|_| {})?;
    Ok(fb.finish()?)
}

/// A reader over an open file by `pread(2)` from `pos` on.
struct ReadAt<'a> {
    file: &'a std::fs::File,
    pos: u64,
}

impl std::io::Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads the whole file `rel` of `tree` into `sink` as a UnixFS DAG, on the
/// calling (blocking) thread, driving the reads with `rt`.
pub fn add_from_tree(
    rt: &tokio::runtime::Handle,
    tree: &Arc<dyn Tree>,
    rel: &str,
    profile: Profile,
    sink: &mut dyn BlockSink,
) -> Result<Built> {
    let mut fb = FileBuilder::with_threads(profile, sink, 1);
    let mut offset = 0u64;
    loop {
        let piece = rt
            .block_on(tree.read(rel, offset, PIECE))
            .map_err(|source| BucketError::Backend {
                path: rel.to_string(),
                source,
            })?;
        if piece.is_empty() {
            break;
        }
        offset += piece.len() as u64;
        fb.write(&piece)?;
    }
    Ok(fb.finish()?)
}

/// The root of the file `rel` of `tree`: read on this task, hashed on a
/// blocking thread while the next piece is read.
pub async fn hash_tree(tree: Arc<dyn Tree>, rel: String, profile: Profile) -> Result<Built> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut sink = Discard;
        let mut fb = FileBuilder::with_threads(profile, &mut sink, 1);
        while let Some(piece) = rx.blocking_recv() {
            fb.write(&piece)?;
        }
        Ok::<_, BucketError>(fb.finish()?)
    });
    let mut offset = 0u64;
    let read: Result<()> = async {
        loop {
            let piece = tree
                .read(&rel, offset, PIECE)
                .await
                .map_err(|source| BucketError::Backend {
                    path: rel.clone(),
                    source,
                })?;
            if piece.is_empty() {
                return Ok(());
            }
            offset += piece.len() as u64;
            if tx.send(piece).await.is_err() {
                return Ok(());
            }
        }
    }
    .await;
    drop(tx);
    let built = hasher.await.map_err(|e| BucketError::Failed {
        bucket: String::new(),
        message: format!("hashing thread: {e}"),
    })?;
    read?;
    built
}
