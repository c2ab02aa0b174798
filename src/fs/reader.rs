//! Reads of files that are not being written: through the block cache, with
//! adaptive readahead.
//!
//! Each open gets a [`ReadCtx`] naming one immutable object version (mount +
//! path + etag, or mtime + size), so blocks of a changed object are never
//! served; where the backend supports conditional reads every block fetch is
//! pinned to the etag, so one open never mixes two versions either.
//!
//! Prefetches go out as runs: consecutive missing blocks the readahead asks
//! for are fetched with one ranged request of up to [`MAX_RUN_BYTES`] and
//! split into blocks, and the runs of one window are in flight together, so a
//! long stream keeps several large GETs going against the server's latency.
//! The blocks a stream has gone past leave the memory tier once they are on
//! disk (`BlockCache::release`).

use super::FsError;
use crate::cache::{blocks, BlockCache, ObjectId, PrefetchBudget, Readahead, Version, MAX_RUN_BYTES};
use crate::vfs::{Meta, Tree};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What an open handle reads: one version of one object.
pub struct ReadCtx {
    pub obj: ObjectId,
    pub size: u64,
    version: Option<String>,
    tree: Arc<dyn Tree>,
    rel: String,
    /// False for trees that are local already (their reads bypass the cache).
    cached: bool,
    readahead: Mutex<Readahead>,
}

impl std::fmt::Debug for ReadCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCtx")
            .field("rel", &self.rel)
            .field("size", &self.size)
            .finish()
    }
}

/// The cached read path shared by all handles.
pub struct Reader {
    cache: Arc<BlockCache>,
    budget: PrefetchBudget,
}

impl Reader {
    pub fn new(cache: Arc<BlockCache>, budget: PrefetchBudget) -> Self {
        Self { cache, budget }
    }

    /// The cache (for stats and `cache.drop`).
    pub fn cache(&self) -> &Arc<BlockCache> {
        &self.cache
    }

    /// The read context of `rel` in `tree` at the version `meta` describes.
    pub fn context(&self, mount: &str, rel: &str, tree: Arc<dyn Tree>, meta: &Meta) -> ReadCtx {
        ReadCtx {
            obj: object_id(mount, rel, &*tree, meta),
            size: meta.size,
            version: meta.version.clone(),
            cached: tree.cache_blocks(),
            tree,
            rel: rel.to_string(),
            readahead: Mutex::new(Readahead::new(self.cache.block_size())),
        }
    }

    /// Keeps `data`, the whole of `rel` at the version `meta` describes,
    /// that came with a stat (see `Tree::stat_peek`), for the reads of the
    /// opens that follow.
    pub fn keep_whole(&self, mount: &str, rel: &str, tree: &dyn Tree, meta: &Meta, data: Bytes) {
        if tree.cache_blocks() && data.len() as u64 == meta.size {
            self.cache.put_whole(&object_id(mount, rel, tree, meta), data);
        }
    }

    /// The largest file a stat should bring whole (see `Tree::stat_peek`):
    /// one block, and no more than [`PEEK_MAX`].
    pub fn peek_max(&self) -> u64 {
        PEEK_MAX.min(self.cache.block_size())
    }

    /// `len` bytes at `offset`, starting prefetches for what comes next.
    pub async fn read(&self, ctx: &Arc<ReadCtx>, offset: u64, len: u64) -> Result<Bytes, FsError> {
        if !ctx.cached {
            // The size is known from the open: reads at or past it are empty
            // without a backend call (every `cat` ends with one).
            if offset >= ctx.size {
                return Ok(Bytes::new());
            }
            let len = len.min(ctx.size - offset);
            return Ok(ctx.tree.read(&ctx.rel, offset, len).await?);
        }
        let bs = self.cache.block_size();
        let ahead = ctx
            .readahead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .on_read(offset, len, ctx.size);
        let run_max = (MAX_RUN_BYTES / bs).max(1);
        let mut index = ahead.start;
        while index < ahead.end {
            if self.cache.contains(&ctx.obj, index) {
                index += 1;
                continue;
            }
            let mut end = index + 1;
            while end < ahead.end && end - index < run_max && !self.cache.contains(&ctx.obj, end) {
                end += 1;
            }
            let bytes: u64 = (index..end).map(|i| blocks::block_len(i, ctx.size, bs)).sum();
            // A whole run if the budget has room, else one block, else stop
            // (the kernel's own reads fetch what is left).
            let (permit, end) = match self.budget.try_reserve(bytes) {
                Some(p) => (p, end),
                None => match self.budget.try_reserve(bs) {
                    Some(p) => (p, index + 1),
                    None => break,
                },
            };
            let (cache, ctx) = (self.cache.clone(), ctx.clone());
            let run = index..end;
            tokio::spawn(async move {
                let _permit = permit;
                let got = cache
                    .fill_run(&ctx.obj, run.clone(), ctx.size, |off, len| {
                        fetch_span(&ctx, off, len)
                    })
                    .await;
                if let Err(e) = got {
                    tracing::debug!(path = %ctx.rel, blocks = ?run, error = %e, "prefetch failed");
                }
            });
            index = end;
        }
        let bytes = self
            .cache
            .read_range(&ctx.obj, offset, len, ctx.size, |i| fetch(ctx, i, bs))
            .await?;
        // A stream's blocks well behind it: the kernel's page cache holds
        // what it read, the disk tier holds them all.
        let passed = ctx
            .readahead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .passed(offset.saturating_add(len).min(ctx.size));
        for index in passed {
            self.cache.release(&ctx.obj, index);
        }
        Ok(bytes)
    }
}

/// Loads block `index` from the backend.
async fn fetch(ctx: &ReadCtx, index: u64, bs: u64) -> Result<Bytes, FsError> {
    fetch_span(ctx, index * bs, blocks::block_len(index, ctx.size, bs)).await
}

/// Loads `len` bytes at `offset` (whole blocks) from the backend in one request.
async fn fetch_span(ctx: &ReadCtx, offset: u64, len: u64) -> Result<Bytes, FsError> {
    let data = ctx
        .tree
        .read_version(&ctx.rel, offset, len, ctx.version.as_deref())
        .await?;
    if (data.len() as u64) < len {
        // The object shrank behind our back: do not cache a short block.
        return Err(crate::vfs::VfsError::Changed.into());
    }
    Ok(data)
}

/// Largest object a stat fetches whole with its metadata (S3: a ranged GET
/// in place of the HEAD). Up to this size the GET costs about the round trip
/// the HEAD costs (64 KiB take 0.5 ms at 1 Gbit/s), and it spares the open's
/// read a request of its own; a stat of a larger object fetches this much
/// for nothing, which is why it is small.
pub const PEEK_MAX: u64 = 64 << 10;

/// The cache's name of `rel` in `tree` at the version `meta` describes:
/// its CID in content-addressed trees, else mount, path and etag (or mtime
/// and size).
fn object_id(mount: &str, rel: &str, tree: &dyn Tree, meta: &Meta) -> ObjectId {
    let version = match &meta.version {
        Some(etag) => Version::ETag(etag),
        None => Version::Modified {
            modified: meta.mtime.unwrap_or(SystemTime::UNIX_EPOCH),
            size: meta.size,
        },
    };
    match &meta.version {
        Some(cid) if tree.content_addressed() => ObjectId::from_cid(cid),
        _ => ObjectId::versioned(mount, rel, version),
    }
}
