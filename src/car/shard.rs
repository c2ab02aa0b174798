//! Storacha sharding: the DAG's blocks split into CARv1 shards of at most
//! N bytes, plus the `index/sharded/dag@0.1` index CAR, byte for byte as
//! the Storacha upload client (`ShardingStream` + `indexShardedDAG`) makes
//! them.
//!
//! Rules (from the client's behaviour): blocks are de-duplicated; a shard
//! closes when the next block would push it past N minus the 18-byte
//! root-less header; non-final shards have `roots: []`; the final shard names
//! the root, and if its longer header overflows N, trailing blocks move to
//! one more shard. A shard's CID is CIDv1(car 0x0202, sha2-256 of the file).
//! The index CAR's root is DAG-CBOR `{"index/sharded/dag@0.1": {content,
//! shards}}`, followed by one block per shard (sorted by shard digest):
//! `[shard multihash, [[block multihash, [offset, length]], ...]]` with the
//! slices sorted by digest and the shard itself included as `[0, size]`.
//!
//! Memory: one shard's block list (~80 bytes a block); block bytes go to a
//! spool file in the output directory and are copied into the shard file
//! when it closes.

use super::block::{cid_from_digest, multihash, BlockSink, CAR, DAG_CBOR};
use super::cbor::{self, Value};
use super::error::{CarError, Result};
use super::writer::{header, section_len};
use cid::Cid;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The Storacha client's default shard size (its `SHARD_SIZE`).
pub const STORACHA_SHARD_SIZE: u64 = 133_169_152;
/// The index format's version tag.
const INDEX_VERSION: &str = "index/sharded/dag@0.1";

/// One shard CAR written.
#[derive(Debug, Clone)]
pub struct ShardInfo {
    /// CIDv1 (car codec) of the shard file.
    pub cid: Cid,
    /// File size in bytes.
    pub size: u64,
    /// Header roots (empty except for the final shard).
    pub roots: Vec<Cid>,
    /// Blocks in the shard.
    pub blocks: usize,
    /// Where it was written.
    pub path: PathBuf,
}

/// Everything a sharded pack produced.
#[derive(Debug, Clone)]
pub struct Sharded {
    /// DAG root.
    pub root: Cid,
    /// Shards in order.
    pub shards: Vec<ShardInfo>,
    /// CID (car codec) of the index CAR.
    pub index: Cid,
    /// Where the index CAR was written.
    pub index_path: PathBuf,
}

/// One block's slice in a shard: (multihash bytes, offset, length).
type Slice = (Vec<u8>, u64, u64);

struct Entry {
    cid: Cid,
    head_len: u64,
    data_len: u64,
}

impl Entry {
    fn len(&self) -> u64 {
        self.head_len + self.data_len
    }
}

/// A [`BlockSink`] writing Storacha shards into a directory.
pub struct ShardWriter {
    dir: PathBuf,
    shard_size: u64,
    seen: HashSet<Cid>,
    spool_path: PathBuf,
    spool: BufWriter<File>,
    current: Vec<Entry>,
    current_len: u64,
    done: Vec<(ShardInfo, Vec<Slice>)>,
}

impl ShardWriter {
    /// Write shards of at most `shard_size` bytes into `dir` (created).
    pub fn create(dir: &Path, shard_size: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(CarError::path(dir))?;
        let min = header(&[]).len() as u64 + 1;
        if shard_size <= min {
            return Err(CarError::Invalid(format!(
                "shard size {shard_size} is too small"
            )));
        }
        let spool_path = dir.join(format!(".spool-{}", std::process::id()));
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&spool_path)
            .map_err(CarError::path(&spool_path))?;
        Ok(ShardWriter {
            dir: dir.to_owned(),
            shard_size,
            seen: HashSet::new(),
            spool_path,
            spool: BufWriter::with_capacity(1 << 20, f),
            current: Vec::new(),
            current_len: 0,
            done: Vec::new(),
        })
    }

    fn max_blocks_len(&self) -> u64 {
        self.shard_size - header(&[]).len() as u64
    }

    /// Write `entries` (whose sections start at `body_start` in the spool) as
    /// one shard with `roots`.
    fn write_shard(&mut self, entries: &[Entry], body_start: u64, roots: &[Cid]) -> Result<()> {
        self.spool.flush()?;
        let head = header(roots);
        let body_len: u64 = entries.iter().map(Entry::len).sum();
        let tmp = self.dir.join(format!(".shard-{}", std::process::id()));
        let mut out =
            BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(CarError::path(&tmp))?);
        let mut hasher = Sha256::new();
        out.write_all(&head)?;
        hasher.update(&head);
        let spool = self.spool.get_mut();
        spool.seek(SeekFrom::Start(body_start))?;
        let mut left = body_len;
        let mut buf = vec![0u8; 1 << 20];
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            spool.read_exact(&mut buf[..n])?;
            out.write_all(&buf[..n])?;
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        out.flush()?;
        drop(out);
        spool.seek(SeekFrom::End(0))?;
        let digest: [u8; 32] = hasher.finalize().into();
        let cid = cid_from_digest(false, CAR, &digest);
        let size = head.len() as u64 + body_len;
        let path = self.dir.join(format!("{cid}.car"));
        std::fs::rename(&tmp, &path).map_err(CarError::path(&path))?;
        let mut slices = Vec::with_capacity(entries.len() + 1);
        let mut pos = head.len() as u64;
        for e in entries {
            slices.push((e.cid.hash().to_bytes(), pos + e.head_len, e.data_len));
            pos += e.len();
        }
        slices.push((multihash(&digest).to_bytes(), 0, size));
        let info = ShardInfo {
            cid,
            size,
            roots: roots.to_vec(),
            blocks: entries.len(),
            path,
        };
        self.done.push((info, slices));
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        let entries = std::mem::take(&mut self.current);
        self.write_shard(&entries, 0, &[])?;
        self.current_len = 0;
        self.spool.flush()?;
        let f = self.spool.get_mut();
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        Ok(())
    }

    /// Close the last shard(s) with `root` and write the index CAR.
    pub fn finish(mut self, root: &Cid) -> Result<Sharded> {
        if self.current.is_empty() {
            return Err(CarError::Invalid("no blocks to shard".into()));
        }
        let head_len = header(&[*root]).len() as u64;
        let entries = std::mem::take(&mut self.current);
        if head_len + self.current_len > self.shard_size {
            let overage = head_len + self.current_len - self.shard_size;
            let mut cut = entries.len();
            let mut moved = 0;
            while moved < overage {
                cut -= 1;
                moved += entries[cut].len();
                if cut == 0 {
                    return Err(CarError::Invalid(format!(
                        "block {} does not fit in a shard",
                        entries[0].cid
                    )));
                }
            }
            let first_len: u64 = entries[..cut].iter().map(Entry::len).sum();
            self.write_shard(&entries[..cut], 0, &[])?;
            self.write_shard(&entries[cut..], first_len, &[*root])?;
        } else {
            self.write_shard(&entries, 0, &[*root])?;
        }
        self.write_index(root)
    }

    fn write_index(&mut self, root: &Cid) -> Result<Sharded> {
        let mut order: Vec<usize> = (0..self.done.len()).collect();
        order.sort_by(|&a, &b| {
            self.done[a]
                .0
                .cid
                .hash()
                .digest()
                .cmp(self.done[b].0.cid.hash().digest())
        });
        let mut blocks = Vec::new();
        for &i in &order {
            let (info, slices) = &mut self.done[i];
            slices.sort_by(|a, b| a.0[2..].cmp(&b.0[2..]));
            let list = slices
                .iter()
                .map(|(mh, off, len)| {
                    Value::Array(vec![
                        Value::Bytes(mh.clone()),
                        Value::Array(vec![Value::Uint(*off), Value::Uint(*len)]),
                    ])
                })
                .collect();
            let bytes = cbor::to_vec(&Value::Array(vec![
                Value::Bytes(info.cid.hash().to_bytes()),
                Value::Array(list),
            ]));
            let cid = cid_from_digest(false, DAG_CBOR, &super::block::sha256(&bytes));
            blocks.push((cid, bytes));
        }
        let index = Value::Map(vec![(
            INDEX_VERSION.into(),
            Value::Map(vec![
                ("content".into(), Value::Link(*root)),
                (
                    "shards".into(),
                    Value::Array(blocks.iter().map(|(c, _)| Value::Link(*c)).collect()),
                ),
            ]),
        )]);
        let root_bytes = cbor::to_vec(&index);
        let root_cid = cid_from_digest(false, DAG_CBOR, &super::block::sha256(&root_bytes));
        let mut car = header(&[root_cid]);
        let mut w = super::writer::CarWriter::new(Vec::new(), &[], false)?;
        w.put(&root_cid, &root_bytes)?;
        for (c, b) in &blocks {
            w.put(c, b)?;
        }
        let body = w.into_inner()?;
        car.extend_from_slice(&body[header(&[]).len()..]);
        let cid = cid_from_digest(false, CAR, &super::block::sha256(&car));
        let index_path = self.dir.join(format!("index-{cid}.car"));
        std::fs::write(&index_path, &car).map_err(CarError::path(&index_path))?;
        Ok(Sharded {
            root: *root,
            shards: self.done.iter().map(|(i, _)| i.clone()).collect(),
            index: cid,
            index_path,
        })
    }
}

impl BlockSink for ShardWriter {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<()> {
        if !self.seen.insert(*cid) {
            return Ok(());
        }
        let block_len = section_len(cid, data.len());
        if block_len > self.max_blocks_len() {
            return Err(CarError::Invalid(format!(
                "block {cid} ({block_len} bytes) does not fit in a shard"
            )));
        }
        if !self.current.is_empty() && self.current_len + block_len > self.max_blocks_len() {
            self.close_current()?;
        }
        let head_len = block_len - data.len() as u64;
        let mut prefix = Vec::with_capacity(head_len as usize);
        super::varint::put(&mut prefix, (cid.encoded_len() + data.len()) as u64);
        prefix.extend_from_slice(&cid.to_bytes());
        self.spool.write_all(&prefix)?;
        self.spool.write_all(data)?;
        self.current.push(Entry {
            cid: *cid,
            head_len,
            data_len: data.len() as u64,
        });
        self.current_len += block_len;
        Ok(())
    }
}

impl Drop for ShardWriter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.spool_path);
    }
}
