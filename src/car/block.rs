//! Blocks and where they go: hashing bytes into CIDs, and the [`BlockSink`]
//! trait through which every DAG builder emits its blocks (to a CAR writer,
//! to memory, or nowhere).
//!
//! Invariant: a sink receives each block after all blocks it links to
//! (post-order), so a CAR written straight from a sink is "root last".

use super::error::Result;
use cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256};

/// Multicodec of dag-pb.
pub const DAG_PB: u64 = 0x70;
/// Multicodec of raw bytes.
pub const RAW: u64 = 0x55;
/// Multicodec of dag-cbor.
pub const DAG_CBOR: u64 = 0x71;
/// Multicodec of a CAR file (shard CIDs).
pub const CAR: u64 = 0x0202;
/// Multicodec of sha2-256.
pub const SHA2_256: u64 = 0x12;
/// Multicodec of the identity "hash".
pub const IDENTITY: u64 = 0x00;

/// SHA-256 of `data` (sha2 picks SHA-NI/AVX at run time).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A sha2-256 multihash of a digest.
pub fn multihash(digest: &[u8; 32]) -> Multihash<64> {
    // A 32-byte digest always fits a 64-byte multihash.
    Multihash::wrap(SHA2_256, digest).unwrap_or_default()
}

/// The CID of a block given its sha2-256 digest: CIDv0 when `v0` and the
/// codec is dag-pb (CIDv0 can only name dag-pb), CIDv1 otherwise.
pub fn cid_from_digest(v0: bool, codec: u64, digest: &[u8; 32]) -> Cid {
    let mh = multihash(digest);
    if v0 && codec == DAG_PB {
        // new_v0 only fails for a non-sha2-256 multihash, which this is not.
        Cid::new_v0(mh).unwrap_or_else(|_| Cid::new_v1(codec, mh))
    } else {
        Cid::new_v1(codec, mh)
    }
}

/// Hash `data` and name it.
pub fn cid_of_block(v0: bool, codec: u64, data: &[u8]) -> Cid {
    cid_from_digest(v0, codec, &sha256(data))
}

/// Where builders put the blocks they make.
pub trait BlockSink {
    /// Take one block. `data` hashes to `cid`.
    fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<()>;
}

/// A sink that drops every block (hash-only runs, like `ipfs add --only-hash`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl BlockSink for Discard {
    fn put(&mut self, _cid: &Cid, _data: &[u8]) -> Result<()> {
        Ok(())
    }
}

/// A sink that keeps every block in memory, in arrival order (tests, small DAGs).
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    /// The blocks received.
    pub blocks: Vec<(Cid, Vec<u8>)>,
}

impl BlockSink for MemorySink {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<()> {
        self.blocks.push((*cid, data.to_vec()));
        Ok(())
    }
}

impl<S: BlockSink + ?Sized> BlockSink for &mut S {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<()> {
        (**self).put(cid, data)
    }
}
