//! Verified blocks: asks the sources in order (first that answers wins),
//! hashes every block against its CID before any byte is used, and keeps
//! small blocks (DAG nodes, small files) in memory, keyed by CID.
//!
//! Invariants: a block returned by [`Store::get`] hashes to its CID (identity
//! CIDs carry their bytes and need no source); a mismatch is an error naming
//! the CID and the source, logged at error level, and the bytes are dropped;
//! a CID in the node cache is never fetched again (content never changes, so
//! nothing is ever invalidated). File data is cached by the core's block
//! cache, keyed by the file's CID (see `Tree::content_addressed`).

use super::error::IpfsError;
use super::source::{BlockSource, SourceError};
use crate::car::{verify_block, CarError};
use bytes::Bytes;
use cid::Cid;
use quick_cache::sync::Cache;
use quick_cache::Weighter;
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
        }
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
        let bytes = self.fetch(cid).await?;
        if bytes.len() <= NODE_CACHE_MAX_BLOCK {
            self.nodes.insert(*cid, bytes.clone());
        }
        Ok(bytes)
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
