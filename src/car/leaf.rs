//! The dag-pb File leaf that kubo and js-ipfs write around a chunk of a file
//! (`unixfs-v0-2015`, and any add without raw leaves): its exact bytes, and
//! the check that some bytes are the chunk of such a leaf, hashed in place
//! with no block built, for chunks that arrive without their wrapper (a
//! node's `cat` returns file bytes only).
//!
//! The leaf is `PBNode { Data: UnixFS { Type: File, Data: chunk, filesize:
//! len } }`: a few bytes of keys and lengths before the chunk (`Frame`'s
//! head) and the `filesize` field after it (its tail). An empty chunk has
//! no `Data` field, so no frame.

use super::block::{DAG_PB, SHA2_256};
use super::pbwire::{self, LEN};
use super::varint;
use cid::Cid;
use sha2::{Digest, Sha256};

/// UnixFS `Type` of a file (`DataType::File`).
const FILE: u64 = 2;

/// The bytes of a leaf before and after its chunk.
struct Frame {
    head: Vec<u8>,
    tail: Vec<u8>,
}

/// The frame of a leaf holding `len` bytes; `None` for an empty chunk.
fn frame(len: usize) -> Option<Frame> {
    if len == 0 {
        return None;
    }
    let n = len as u64;
    let mut tail = Vec::with_capacity(11);
    pbwire::put_uint(&mut tail, 3, n);
    let mut inner = Vec::with_capacity(16);
    pbwire::put_uint(&mut inner, 1, FILE);
    pbwire::put_key(&mut inner, 2, LEN);
    varint::put(&mut inner, n);
    let unixfs_len = inner.len() as u64 + n + tail.len() as u64;
    let mut head = Vec::with_capacity(inner.len() + 11);
    pbwire::put_key(&mut head, 1, LEN);
    varint::put(&mut head, unixfs_len);
    head.extend_from_slice(&inner);
    Some(Frame { head, tail })
}

/// The leaf block of `chunk`.
pub fn leaf_node(chunk: &[u8]) -> Vec<u8> {
    match frame(chunk.len()) {
        Some(f) => {
            let mut out = Vec::with_capacity(f.head.len() + chunk.len() + f.tail.len());
            out.extend_from_slice(&f.head);
            out.extend_from_slice(chunk);
            out.extend_from_slice(&f.tail);
            out
        }
        // PBNode { Data: UnixFS { Type: File, filesize: 0 } }.
        None => vec![0x0a, 0x04, 0x08, FILE as u8, 0x18, 0x00],
    }
}

/// Whether `data` is the chunk of the dag-pb leaf `cid` (sha2-256 CIDs
/// only; false for anything else, which the caller then fetches whole).
pub fn is_leaf_data(cid: &Cid, data: &[u8]) -> bool {
    let mh = cid.hash();
    if cid.codec() != DAG_PB || mh.code() != SHA2_256 {
        return false;
    }
    let Some(f) = frame(data.len()) else {
        return false;
    };
    let mut h = Sha256::new();
    h.update(&f.head);
    h.update(data);
    h.update(&f.tail);
    mh.digest() == h.finalize().as_slice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::car::dagpb;
    use crate::car::unixfs::{Data, DataType};

    /// The leaf as the general encoders write it (the ones the IPIP-0499
    /// fixtures check).
    fn by_encoders(chunk: &[u8]) -> Vec<u8> {
        let mut d = Data::new(DataType::File);
        if !chunk.is_empty() {
            d.data = Some(chunk.to_vec());
        }
        d.filesize = Some(chunk.len() as u64);
        dagpb::encode(&[], &d.encode())
    }

    #[test]
    fn the_frame_around_a_chunk_is_the_leaf_the_encoders_write() {
        for len in [0, 1, 127, 128, 16_383, 16_384, 262_144, 1 << 20, 2_097_152 + 5] {
            let chunk: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            assert_eq!(leaf_node(&chunk), by_encoders(&chunk), "{len} bytes");
        }
    }

    #[test]
    fn leaf_data_is_checked_against_the_leaf_cid() {
        let chunk = vec![42u8; 262_144];
        let block = leaf_node(&chunk);
        let v0 = crate::car::cid_of_block(true, DAG_PB, &block);
        let v1 = crate::car::cid_of_block(false, DAG_PB, &block);
        assert!(is_leaf_data(&v0, &chunk) && is_leaf_data(&v1, &chunk));
        let mut other = chunk.clone();
        other[1000] ^= 1;
        assert!(!is_leaf_data(&v0, &other));
        assert!(!is_leaf_data(&v0, &chunk[..chunk.len() - 1]));
        // The block itself is not the leaf's data; a raw CID is not a leaf.
        assert!(!is_leaf_data(&v0, &block));
        let raw = crate::car::cid_of_block(false, crate::car::RAW, &chunk);
        assert!(!is_leaf_data(&raw, &chunk));
        assert!(!is_leaf_data(&v0, &[]));
    }
}
