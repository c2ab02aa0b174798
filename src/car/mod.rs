//! Content addressing: UnixFS DAGs, CIDs and CAR files.
//!
//! Owns: the DAG builders (pure: bytes and entries in, blocks out through a
//! [`BlockSink`]), the file-system walk that feeds them, CARv1 writing,
//! CARv1/CARv2 reading with hash verification, the check of a dag-pb leaf's
//! data against its CID without its block (`leaf.rs`), Storacha sharding
//! and the `cid`/`car` CLI commands. iroh-car is not used here: it is async (the DAG
//! code is synchronous and pure), its writer cannot patch roots into the
//! header after the fact (needed to write root-last CARs in one pass), and its
//! reader rejects root-less shards and CARv2; the CAR framing is small enough
//! to own (see `writer.rs`, `reader.rs`).
//!
//! Invariants: CIDs depend only on the bytes and the [`Profile`]; every block
//! reaches a sink after the blocks it links to; nothing panics on bad input.

mod block;
mod cbor;
mod chunker;
pub mod cli;
mod dagpb;
mod dir;
mod error;
mod file;
mod hamt;
mod hasher;
mod leaf;
mod pack;
mod pbwire;
mod preader;
mod profile;
mod reader;
mod shard;
mod unixfs;
mod unpack;
mod varint;
mod walk;
mod writer;

pub use block::{cid_of_block, BlockSink, Discard, MemorySink, CAR as CAR_CODEC, DAG_PB, RAW, SHA2_256};
pub use dagpb::{decode as decode_dagpb, encode as encode_dagpb, PbLink, PbNode};
pub use dir::{symlink, DirBuilder};
pub use error::{CarError, Result};
pub use file::{cid_of_bytes, Built, FileBuilder};
pub use hamt::key_hash as hamt_key_hash;
pub use leaf::{is_leaf_data, leaf_node};
pub use pack::{pack_file, Order, Packed};
pub use profile::{Profile, ShardRule};
pub use reader::{verify as verify_block, Block, CarReader, MAX_SECTION};
pub use shard::{ShardInfo, ShardWriter, Sharded, STORACHA_SHARD_SIZE};
pub use unixfs::{Data as UnixfsData, DataType};
pub use unpack::{walk as walk_car, CarStore, Kind, Listed};
pub use walk::{add_path, add_path_listed, cid_of_path, WalkOptions};
pub use writer::{header as car_header, patch_header, placeholder_root, section_len, CarWriter, DfsSpool};
