//! UnixFS file DAGs: fixed-size chunks, balanced layout, streaming.
//!
//! [`FileBuilder`] takes the file's bytes in pieces of any size and emits
//! blocks to a [`BlockSink`] as soon as they are final: leaves in file order,
//! and each internal node once the child after its last one arrives (or at
//! the end), which is the order ipfs-car writes, also past 1 GiB. Memory is bounded whatever the file size: a few chunks in
//! flight to the hashing threads plus one partial node per tree level
//! (width x ~45 bytes).
//!
//! [`FileBuilder::write_file`] reads a large file with reader threads
//! (`preader.rs`) while the hashing pool works, so on a machine with few
//! cores SHA-256 rather than the reads sets the pace.
//!
//! Layout (kubo's and ipfs-car's "balanced"): leaves are grouped `width` at a
//! time into File nodes, those nodes `width` at a time into the next level,
//! and so on; a lone leftover child still gets its own parent. A file of one
//! chunk is just its leaf.

use super::block::{cid_from_digest, cid_of_block, BlockSink, DAG_PB, RAW};
use super::chunker::Chunker;
use super::dagpb::{self, PbLink};
use super::error::Result;
use super::hasher::{hash_leaf, HashedLeaf, Pool};
use super::preader::{read_chunks, Chunks, MIN_CHUNKS};
use super::profile::Profile;
use super::unixfs::{Data, DataType};
use cid::Cid;

/// The root of a finished DAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Built {
    /// Root CID.
    pub cid: Cid,
    /// File content bytes (0 for directories and symlinks).
    pub size: u64,
    /// Cumulative DAG bytes (all blocks under the root): the `Tsize` a
    /// parent directory puts in its link.
    pub dag_size: u64,
}

/// A child link with the sizes its parent needs.
#[derive(Debug, Clone, Copy)]
struct Child {
    cid: Cid,
    tsize: u64,
    filesize: u64,
}

/// Streams one file into a UnixFS DAG.
pub struct FileBuilder<'s> {
    profile: Profile,
    sink: &'s mut dyn BlockSink,
    chunker: Chunker,
    threads: usize,
    /// The first chunk, held back until we know whether the file has more
    /// (a one-chunk file is hashed inline, without starting threads).
    held: Option<Vec<u8>>,
    pool: Option<Pool>,
    levels: Vec<Vec<Child>>,
    size: u64,
    /// The reader threads of [`FileBuilder::write_file`] while it runs
    /// (spent chunk buffers go back to them).
    chunks: Option<Chunks>,
}

impl<'s> FileBuilder<'s> {
    /// A builder for `profile` emitting blocks into `sink`, hashing on every core.
    pub fn new(profile: Profile, sink: &'s mut dyn BlockSink) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(profile, sink, threads)
    }

    /// Like [`FileBuilder::new`] with an explicit number of hashing threads
    /// (1 hashes on the calling thread).
    pub fn with_threads(profile: Profile, sink: &'s mut dyn BlockSink, threads: usize) -> Self {
        FileBuilder {
            profile,
            sink,
            chunker: Chunker::new(profile.chunk_size()),
            threads: threads.max(1),
            held: None,
            pool: None,
            levels: Vec::new(),
            size: 0,
            chunks: None,
        }
    }

    /// Content bytes taken so far.
    pub fn bytes_written(&self) -> u64 {
        self.size
    }

    /// Feed the next piece of the file.
    pub fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while let Some(chunk) = self.chunker.fill(&mut data) {
            self.on_chunk(chunk)?;
        }
        Ok(())
    }

    /// Feed everything `reader` yields, reading straight into chunk buffers;
    /// `progress` is told the byte count of each read.
    pub fn write_from(&mut self, reader: &mut dyn std::io::Read, progress: &dyn Fn(u64)) -> Result<()> {
        loop {
            let (n, full) = match self.chunker.read_from(reader) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if let Some(chunk) = full {
                self.on_chunk(chunk)?;
            }
            if n == 0 {
                return Ok(());
            }
            progress(n as u64);
        }
    }

    /// Feed a whole file from its start (the builder must have taken nothing
    /// yet). A file of at least [`MIN_CHUNKS`] chunks, with more than one
    /// hashing thread, is read by reader threads ([`read_chunks`]) in whole
    /// chunks, so reads, hashing and the caller's sink overlap; others as
    /// [`FileBuilder::write_from`]. `progress` is told each chunk's bytes.
    pub fn write_file(&mut self, file: std::fs::File, progress: &dyn Fn(u64)) -> Result<()> {
        let size = self.profile.chunk_size();
        let len = file.metadata().map_or(0, |m| m.len());
        if self.threads == 1 || !self.chunker.is_empty() || len < MIN_CHUNKS * size as u64 {
            let mut file = file;
            return self.write_from(&mut file, progress);
        }
        self.chunks = Some(read_chunks(file, size));
        let res = self.take_chunks(progress);
        self.chunks = None;
        res
    }

    fn take_chunks(&mut self, progress: &dyn Fn(u64)) -> Result<()> {
        while let Some(chunk) = self
            .chunks
            .as_mut()
            .map(Chunks::next_chunk)
            .transpose()?
            .flatten()
        {
            progress(chunk.len() as u64);
            self.chunker.mark_emitted();
            self.on_chunk(chunk)?;
        }
        Ok(())
    }

    fn on_chunk(&mut self, chunk: Vec<u8>) -> Result<()> {
        self.size += chunk.len() as u64;
        let raw = self.profile.raw_leaves();
        if self.threads == 1 {
            return self.add_leaf(hash_leaf(chunk, raw));
        }
        if self.pool.is_none() {
            if self.held.is_none() && self.levels.is_empty() {
                self.held = Some(chunk);
                return Ok(());
            }
            let mut pool = Pool::new(self.threads, raw);
            if let Some(first) = self.held.take() {
                pool.submit(first)?;
            }
            self.pool = Some(pool);
        }
        if let Some(pool) = self.pool.as_mut() {
            pool.submit(chunk)?;
        }
        // Two chunks per thread keeps every core busy while we read ahead.
        let max_in_flight = 2 * self.threads as u64 + 1;
        while self.pool.as_ref().is_some_and(|p| p.in_flight() > max_in_flight) {
            let leaf = self
                .pool
                .as_mut()
                .and_then(|p| p.next().transpose())
                .transpose()?;
            if let Some(leaf) = leaf {
                self.add_leaf(leaf)?;
            }
        }
        Ok(())
    }

    fn add_leaf(&mut self, leaf: HashedLeaf) -> Result<()> {
        let filesize = leaf.chunk.len() as u64;
        let child = match &leaf.node {
            None => {
                let cid = cid_from_digest(false, RAW, &leaf.digest);
                self.sink.put(&cid, &leaf.chunk)?;
                Child {
                    cid,
                    tsize: filesize,
                    filesize,
                }
            }
            Some(node) => {
                let cid = cid_from_digest(self.profile.cid_v0(), DAG_PB, &leaf.digest);
                self.sink.put(&cid, node)?;
                Child {
                    cid,
                    tsize: node.len() as u64,
                    filesize,
                }
            }
        };
        match &self.chunks {
            Some(c) => c.recycle(leaf.chunk),
            None => self.chunker.recycle(leaf.chunk),
        }
        self.push(0, child)
    }

    /// Add a child at `level`. A full level is turned into its parent only
    /// when one more child arrives (lazily, as ipfs-car does), so a new leaf
    /// is emitted before the node that closes the previous group.
    fn push(&mut self, level: usize, child: Child) -> Result<()> {
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, Vec::new);
        }
        if self.levels[level].len() >= self.profile.max_links() {
            self.flush(level)?;
        }
        self.levels[level].push(child);
        Ok(())
    }

    /// Turn the children gathered at `level` into one File node one level up.
    fn flush(&mut self, level: usize) -> Result<()> {
        let children = std::mem::take(&mut self.levels[level]);
        let mut data = Data::new(DataType::File);
        data.filesize = Some(children.iter().map(|c| c.filesize).sum());
        data.blocksizes = children.iter().map(|c| c.filesize).collect();
        let links: Vec<PbLink> = children
            .iter()
            .map(|c| PbLink {
                cid: c.cid,
                name: String::new(),
                tsize: c.tsize,
            })
            .collect();
        let bytes = dagpb::encode(&links, &data.encode());
        let cid = cid_of_block(self.profile.cid_v0(), DAG_PB, &bytes);
        self.sink.put(&cid, &bytes)?;
        let parent = Child {
            cid,
            tsize: bytes.len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>(),
            filesize: data.filesize.unwrap_or(0),
        };
        self.push(level + 1, parent)
    }

    /// End of file: emit the remaining nodes and return the root.
    pub fn finish(mut self) -> Result<Built> {
        if let Some(last) = self.chunker.finish() {
            self.on_chunk(last)?;
        }
        if let Some(first) = self.held.take() {
            self.add_leaf(hash_leaf(first, self.profile.raw_leaves()))?;
        }
        while let Some(leaf) = self.pool.as_mut().map(Pool::next).transpose()?.flatten() {
            self.add_leaf(leaf)?;
        }
        self.pool = None;
        let mut level = 0;
        loop {
            let top = self.levels.iter().rposition(|l| !l.is_empty()).unwrap_or(0);
            if level >= top {
                if let [root] = self.levels[top].as_slice() {
                    return Ok(Built {
                        cid: root.cid,
                        size: self.size,
                        dag_size: root.tsize,
                    });
                }
            }
            if !self.levels[level].is_empty() {
                self.flush(level)?;
            }
            level += 1;
        }
    }
}

/// The CID of `data` as one file under `profile` (no blocks kept).
pub fn cid_of_bytes(profile: Profile, data: &[u8]) -> Result<Cid> {
    let mut sink = super::block::Discard;
    let mut b = FileBuilder::new(profile, &mut sink);
    b.write(data)?;
    Ok(b.finish()?.cid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::car::block::MemorySink;

    #[test]
    fn single_chunk_file_is_its_leaf_when_raw_leaves() {
        let c = cid_of_bytes(Profile::UnixfsV1_2025, b"hello world").unwrap();
        assert_eq!(
            c.to_string(),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
    }

    #[test]
    fn same_root_when_threads_and_piece_sizes_vary() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut roots = Vec::new();
        for threads in [1, 2, 3] {
            for piece in [1000, 1 << 20, data.len()] {
                let mut sink = MemorySink::default();
                let mut b = FileBuilder::with_threads(Profile::UnixfsV0_2015, &mut sink, threads);
                for p in data.chunks(piece) {
                    b.write(p).unwrap();
                }
                let built = b.finish().unwrap();
                assert_eq!(built.size, data.len() as u64);
                assert_eq!(sink.blocks.last().unwrap().0, built.cid);
                roots.push((built, sink.blocks.len()));
            }
        }
        assert!(roots.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn same_blocks_when_file_is_read_by_reader_threads() {
        use std::io::Write;
        for len in [0usize, 1000, 8 << 18, (8 << 18) + 1, 5_000_000, (9 << 20) + 7] {
            let data: Vec<u8> = (0..len as u32).map(|i| (i * 13 % 251) as u8).collect();
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(&data).unwrap();
            for profile in [Profile::UnixfsV0_2015, Profile::UnixfsV1_2025] {
                let mut want = MemorySink::default();
                let mut b = FileBuilder::with_threads(profile, &mut want, 1);
                b.write(&data).unwrap();
                let want_root = b.finish().unwrap();
                let mut got = MemorySink::default();
                let mut b = FileBuilder::with_threads(profile, &mut got, 2);
                b.write_file(std::fs::File::open(f.path()).unwrap(), &|_| {})
                    .unwrap();
                assert_eq!(b.finish().unwrap(), want_root, "len {len}");
                assert_eq!(got.blocks, want.blocks, "len {len}");
            }
        }
    }
}
