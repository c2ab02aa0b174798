//! HAMT-sharded UnixFS directories (fanout 256, murmur3-x64-64 keys).
//!
//! Key hash: the low 64 bits (h1) of murmur3 x64_128 with seed 0 over the
//! entry name, read big-endian, 8 bits per level from the top. A bucket holds
//! one entry, or a sub-shard when two or more names share the bucket at that
//! depth. Link names are the bucket index as 2 uppercase hex digits, followed
//! by the entry name for entries. The bitfield is 256 bits big-endian with
//! leading zero bytes dropped. The shape depends only on the set of names,
//! so it matches kubo and ipfs-car whatever the insertion order.
//! Blocks are emitted post-order, buckets ascending (as ipfs-car does).

use super::block::{cid_of_block, BlockSink, DAG_PB};
use super::dagpb::{self, PbLink};
use super::error::{CarError, Result};
use super::unixfs::{Data, DataType, HASH_MURMUR3};
use std::collections::BTreeMap;

/// Buckets per node: 2^8, one hash byte per level.
pub const FANOUT: u64 = 256;
/// Levels a 64-bit hash can address at 8 bits per level.
const MAX_DEPTH: usize = 8;

/// The 8 hash bytes that pick buckets, level 0 first.
pub fn key_hash(name: &[u8]) -> [u8; 8] {
    let h = fastmurmur3::murmur3_x64_128(name, 0);
    (h as u64).to_be_bytes()
}

enum Slot {
    Entry([u8; 8], PbLink),
    Shard(Node),
}

#[derive(Default)]
struct Node {
    slots: BTreeMap<u8, Slot>,
}

impl Node {
    fn insert(&mut self, hash: [u8; 8], link: PbLink, depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(CarError::Unsupported(format!(
                "HAMT: names collide on all 64 hash bits (entry {:?})",
                link.name
            )));
        }
        let idx = hash[depth];
        match self.slots.remove(&idx) {
            None => {
                self.slots.insert(idx, Slot::Entry(hash, link));
            }
            Some(Slot::Entry(h0, l0)) => {
                let mut sub = Node::default();
                sub.insert(h0, l0, depth + 1)?;
                sub.insert(hash, link, depth + 1)?;
                self.slots.insert(idx, Slot::Shard(sub));
            }
            Some(Slot::Shard(mut sub)) => {
                sub.insert(hash, link, depth + 1)?;
                self.slots.insert(idx, Slot::Shard(sub));
            }
        }
        Ok(())
    }

    /// Emit this node's sub-shards then itself; returns (cid, cumulative size).
    fn emit(self, v0: bool, sink: &mut dyn BlockSink) -> Result<(cid::Cid, u64)> {
        let mut bitfield = [0u8; 32];
        let mut links = Vec::with_capacity(self.slots.len());
        for (idx, slot) in self.slots {
            bitfield[31 - usize::from(idx / 8)] |= 1 << (idx % 8);
            match slot {
                Slot::Entry(_, l) => links.push(PbLink {
                    name: format!("{idx:02X}{}", l.name),
                    ..l
                }),
                Slot::Shard(sub) => {
                    let (cid, tsize) = sub.emit(v0, sink)?;
                    links.push(PbLink {
                        cid,
                        name: format!("{idx:02X}"),
                        tsize,
                    });
                }
            }
        }
        let first = bitfield
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bitfield.len());
        let mut data = Data::new(DataType::HamtShard);
        data.data = Some(bitfield[first..].to_vec());
        data.hash_type = Some(HASH_MURMUR3);
        data.fanout = Some(FANOUT);
        let bytes = dagpb::encode(&links, &data.encode());
        let cid = cid_of_block(v0, DAG_PB, &bytes);
        sink.put(&cid, &bytes)?;
        let tsize = bytes.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>();
        Ok((cid, tsize))
    }
}

/// Build a HAMT over `entries` (names must be unique), emitting its blocks;
/// returns the root CID and cumulative DAG size.
pub fn build(entries: Vec<PbLink>, v0: bool, sink: &mut dyn BlockSink) -> Result<(cid::Cid, u64)> {
    let mut root = Node::default();
    for link in entries {
        root.insert(key_hash(link.name.as_bytes()), link, 0)?;
    }
    root.emit(v0, sink)
}
