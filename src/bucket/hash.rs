//! Turning a file's bytes into its UnixFS root (CID and DAG size) for a
//! bucket's profile: from a local file (staged copy or local backing file,
//! the index-on-close path) or from a tree, read in pieces (`bucket index`).

use super::error::{BucketError, Result};
use crate::car::{BlockSink, Built, Discard, FileBuilder, Profile};
use crate::vfs::Tree;
use bytes::Bytes;
use std::path::Path;
use std::sync::Arc;

/// Bytes asked of a tree per read while hashing: 4 MiB, four 1 MiB chunks,
/// few enough calls for S3 and small enough to keep memory flat.
pub const PIECE: u64 = 4 << 20;
/// Pieces queued between the reading task and the hashing thread.
const QUEUE: usize = 4;

/// The root of the local file at `path`.
pub fn hash_local(path: &Path, profile: Profile) -> Result<Built> {
    let mut f = std::fs::File::open(path).map_err(BucketError::io(path))?;
    let mut sink = Discard;
    let mut fb = FileBuilder::with_threads(profile, &mut sink, 1);
    fb.write_from(&mut f, &|_| {})?;
    Ok(fb.finish()?)
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
