//! Verified blocks: asks the sources in order (first that answers wins),
//! hashes every block against its CID before any byte is used, and keeps
//! small blocks (DAG nodes, small files) in memory, keyed by CID, and, when
//! the mount has one, its small DAG nodes in the core's block cache too
//! (both tiers, keyed by [`ObjectId::from_block`]; raw blocks are file
//! bytes, cached under the file's CID): the disk tier outlives the process,
//! so a DAG read once can be read again with every source down.
//!
//! Invariants: a block returned by [`Store::get`] hashes to its CID (identity
//! CIDs carry their bytes and need no source); a mismatch is an error naming
//! the CID and the source, logged at error level, and the bytes are dropped;
//! a CID in the node cache is never fetched again (content never changes, so
//! nothing is ever invalidated). File data is cached by the core's block
//! cache, keyed by the file's CID (see `Tree::content_addressed`).
//!
//! Long reads may get their blocks as one CAR from a gateway
//! ([`Store::range_blocks`]) or as one `cat` span from an RPC node
//! (`stream.rs`): every block of either is hashed against its CID before
//! any is used, exactly as blocks fetched one by one.

use super::error::IpfsError;
use super::source::{BlockSource, SourceError, SpanBody};
use super::stream::Spans;
use crate::cache::{BlockCache, ObjectId};
use crate::car::{verify_block, CarError, CarReader, RAW};
use bytes::Bytes;
use cid::Cid;
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use std::collections::HashMap;
use std::sync::Arc;

/// Multicodec of the identity multihash: the "digest" is the block itself.
const IDENTITY: u64 = 0x00;
/// Memory for cached blocks: the DAG nodes of thousands of files and
/// directories (most are a few KiB).
const NODE_CACHE_BYTES: u64 = 64 << 20;
/// Blocks up to this size are cached here; larger ones are file data, which
/// the core's block cache keeps (256 KiB keeps v0 dag-pb leaves and every
/// directory node below the HAMT threshold).
const NODE_CACHE_MAX_BLOCK: usize = 256 << 10;
/// Bytes charged per entry besides the block (key, handle, slot).
const ENTRY_OVERHEAD: u64 = 96;
/// A guess of the average cached block, to size the cache's tables.
const TYPICAL_NODE: u64 = 4 << 10;

#[derive(Clone, Copy)]
struct ByLen;

impl Weighter<Cid, Bytes> for ByLen {
    fn weight(&self, _key: &Cid, val: &Bytes) -> u64 {
        val.len() as u64 + ENTRY_OVERHEAD
    }
}

/// The verified block store of one mount.
pub struct Store {
    sources: Vec<Arc<dyn BlockSource>>,
    nodes: Cache<Cid, Bytes, ByLen>,
    /// The core's block cache, for small blocks to outlive the process.
    cache: Option<Arc<BlockCache>>,
    /// Open `cat` spans of files being read in sequence (`stream.rs`).
    pub(super) spans: Spans,
}

impl Store {
    /// A store over `sources`, asked in this order.
    pub fn new(sources: Vec<Arc<dyn BlockSource>>) -> Self {
        Self {
            sources,
            nodes: Cache::with_weighter(
                (NODE_CACHE_BYTES / TYPICAL_NODE) as usize,
                NODE_CACHE_BYTES,
                ByLen,
            ),
            spans: Spans::default(),
            cache: None,
        }
    }

    /// Also keeps small blocks in `cache` (both tiers), and looks there
    /// before asking a source.
    pub fn with_cache(mut self, cache: Option<Arc<BlockCache>>) -> Self {
        self.cache = cache;
        self
    }

    /// Names of the sources, for logs and status.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.sources.iter().map(|s| s.name()).collect();
        names.join(", ")
    }

    /// The verified bytes of `cid`.
    pub async fn get(&self, cid: &Cid) -> Result<Bytes, IpfsError> {
        if cid.hash().code() == IDENTITY {
            return Ok(Bytes::copy_from_slice(cid.hash().digest()));
        }
        if let Some(b) = self.nodes.get(cid) {
            return Ok(b);
        }
        // Raw blocks are file bytes, which the block cache keeps under the
        // file's CID already: only other blocks (DAG nodes) are kept there.
        let key = self
            .cache
            .as_ref()
            .filter(|_| cid.codec() != RAW)
            .map(|c| (c, ObjectId::from_block(&cid.to_string())));
        if let Some((cache, key)) = &key {
            if let Some(b) = cache.peek(key, 0).await {
                self.nodes.insert(*cid, b.clone());
                return Ok(b);
            }
        }
        let bytes = self.fetch(cid).await?;
        if bytes.len() <= NODE_CACHE_MAX_BLOCK {
            self.nodes.insert(*cid, bytes.clone());
            if let Some((cache, key)) = &key {
                cache.put_whole(key, bytes.clone());
            }
        }
        Ok(bytes)
    }

    /// The blocks holding the bytes `from..=to` of the file `cid` (and the
    /// nodes above them), from the first source that serves CAR ranges, in
    /// one request; each is verified against its CID, and the small ones
    /// are kept in the node cache. Empty when no source serves ranges or
    /// the request failed: the read then fetches block by block (so does a
    /// block the CAR left out). A CAR cut short gives the blocks before the
    /// cut. A block that does not match its CID fails the read (EIO), logged
    /// with the CID and the source, as for a block fetched alone.
    pub async fn range_blocks(
        &self,
        cid: &Cid,
        from: u64,
        to: u64,
    ) -> Result<HashMap<Cid, Bytes>, IpfsError> {
        for source in &self.sources {
            let car = match source.get_car_range(cid, from, to).await {
                Ok(Some(car)) => car,
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(%cid, source = %source.name(), error = e.message(), "CAR range failed; reading block by block");
                    continue;
                }
            };
            let origin = source.name();
            // Hashing megabytes of blocks: off the async threads.
            let parsed = tokio::task::spawn_blocking(move || parse_car(&car))
                .await
                .map_err(|e| IpfsError::Unavailable {
                    cid: cid.to_string(),
                    message: format!("CAR range check stopped: {e}"),
                })?;
            let (blocks, error) = parsed;
            match error {
                Some(CarError::HashMismatch { cid: bad, .. }) => {
                    tracing::error!(cid = %bad, source = %origin, range = %format!("{cid} bytes {from}:{to}"), "block does not match its CID; refused");
                    return Err(IpfsError::HashMismatch { cid: bad, origin });
                }
                Some(e) => {
                    tracing::warn!(%cid, source = %origin, error = %e, kept = blocks.len(), "bad CAR range; the rest block by block");
                }
                None => {}
            }
            for (c, b) in &blocks {
                if b.len() <= NODE_CACHE_MAX_BLOCK {
                    self.nodes.insert(*c, b.clone());
                }
            }
            return Ok(blocks);
        }
        Ok(HashMap::new())
    }

    /// A stream of the bytes `offset..offset + length` of the file `cid`
    /// from the first source that serves them, with that source (a span
    /// asks it for the rest); `None` when none does or the request failed
    /// (the read then goes block by block).
    pub(super) async fn cat_span(
        &self,
        cid: &Cid,
        offset: u64,
        length: u64,
    ) -> Option<(SpanBody, Arc<dyn BlockSource>)> {
        for source in &self.sources {
            match source.cat_span(cid, offset, length).await {
                Ok(Some(body)) => return Some((body, source.clone())),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(%cid, source = %source.name(), error = e.message(), "cat span failed; reading block by block");
                }
            }
        }
        None
    }

    async fn fetch(&self, cid: &Cid) -> Result<Bytes, IpfsError> {
        let mut errors = Vec::new();
        let mut timed_out = true;
        for source in &self.sources {
            match source.get(cid).await {
                Ok(bytes) => {
                    return match verify_block(cid, &bytes, 0, 0) {
                        Ok(()) => Ok(bytes),
                        Err(CarError::HashMismatch { .. }) => {
                            let origin = source.name();
                            tracing::error!(%cid, source = %origin, "block does not match its CID; refused");
                            Err(IpfsError::HashMismatch {
                                cid: cid.to_string(),
                                origin,
                            })
                        }
                        Err(e) => Err(IpfsError::Malformed {
                            cid: cid.to_string(),
                            message: e.to_string(),
                        }),
                    };
                }
                Err(e) => {
                    timed_out &= matches!(e, SourceError::TimedOut(_));
                    tracing::debug!(%cid, source = %source.name(), error = e.message(), "block source failed");
                    errors.push(format!("{}: {}", source.name(), e.message()));
                }
            }
        }
        let message = if errors.is_empty() {
            "no block source configured".to_string()
        } else {
            errors.join("; ")
        };
        tracing::warn!(%cid, error = %message, "block unavailable");
        if timed_out && !errors.is_empty() {
            Err(IpfsError::TimedOut {
                cid: cid.to_string(),
                message,
            })
        } else {
            Err(IpfsError::Unavailable {
                cid: cid.to_string(),
                message,
            })
        }
    }
}

/// The verified blocks of a CAR stream, up to the first error (returned too).
fn parse_car(car: &[u8]) -> (HashMap<Cid, Bytes>, Option<CarError>) {
    let mut blocks = HashMap::new();
    let mut reader = match CarReader::new(car) {
        Ok(r) => r,
        Err(e) => return (blocks, Some(e)),
    };
    loop {
        match reader.next_block() {
            Ok(Some(b)) => {
                blocks.insert(b.cid, Bytes::from(b.data));
            }
            Ok(None) => return (blocks, None),
            Err(e) => return (blocks, Some(e)),
        }
    }
}
