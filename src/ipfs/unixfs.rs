//! UnixFS over verified blocks: what a CID is (file, directory, symlink),
//! directory entries (basic and HAMT-sharded), name lookups, and reads of a
//! byte range of a file.
//!
//! Reads walk the file DAG by `blocksizes`: only the nodes on the way to the
//! wanted range and the leaves under it are fetched (siblings at once), never
//! the bytes before the offset. Lookups in a HAMT follow the name's hash, one
//! node per level. Nesting deeper than [`MAX_DEPTH`] is refused (a cycle or a
//! hostile DAG), as are directory entry names that are not one path
//! component; a file node whose children do not add up to what it declares
//! is an error, so a read never returns bytes from the wrong place.

use super::error::IpfsError;
use super::store::Store;
use super::stream::{
    segment_end, Leaf, Lookup, Span, Taken, SEGMENT_BYTES, SPAN_BYTES, SPAN_LEAVES, SPAN_MIN_READ,
};
use crate::car::{hamt_key_hash, DataType, PbLink, UnixfsData, DAG_PB, RAW, SHA2_256};
use bytes::{Bytes, BytesMut};
use cid::Cid;
use futures::future::{try_join_all, BoxFuture};
use futures::FutureExt;
use std::collections::HashMap;

/// Reads at least this long ask a gateway for their blocks as one CAR
/// (entity-bytes): 1 MiB is one block of the core's cache (its default
/// size), so every block the cache loads, on demand or ahead, is one request:
/// four of kubo's default 256 KiB leaves, or one 1 MiB leaf (then the CAR
/// costs the one request a single block would). Shorter reads (the tail of
/// a file, a smaller cache block) fetch their few blocks by CID at once.
pub const CAR_RANGE_MIN: u64 = 1 << 20;

/// Deepest nesting followed inside one file or one HAMT: a balanced DAG of
/// 174-wide nodes 16 levels deep is far beyond any u64 size, and HAMT keys
/// are 8 bytes deep; trickle DAGs grow deeper, but not past this.
pub const MAX_DEPTH: usize = 256;
/// HAMT buckets per node that the hashed lookup understands (the only
/// fanout importers write); other fanouts are searched entry by entry.
const HAMT_FANOUT: u64 = 256;
/// Multicodec of murmur3-x64-64, the only HAMT hash importers use.
const HASH_MURMUR3: u64 = 0x22;

/// What a CID is, as a filesystem sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory (basic or HAMT).
    Dir,
    /// A file of this many bytes.
    File(u64),
    /// A symlink to this target.
    Symlink(String),
}

/// One decoded block.
enum Node {
    /// File bytes inline (raw leaf or `data`) then child links with their sizes.
    File {
        data: Bytes,
        links: Vec<(Cid, u64)>,
        size: u64,
    },
    Dir(Vec<PbLink>),
    Hamt {
        links: Vec<PbLink>,
        hashed: bool,
    },
    Symlink(String),
}

fn malformed(cid: &Cid, message: impl Into<String>) -> IpfsError {
    IpfsError::Malformed {
        cid: cid.to_string(),
        message: message.into(),
    }
}

fn decode(cid: &Cid, bytes: Bytes) -> Result<Node, IpfsError> {
    match cid.codec() {
        RAW => Ok(Node::File {
            size: bytes.len() as u64,
            data: bytes,
            links: Vec::new(),
        }),
        DAG_PB => {
            let node = crate::car::decode_dagpb(&bytes).map_err(|e| malformed(cid, e.to_string()))?;
            let data = UnixfsData::decode(node.data.as_deref().unwrap_or_default())
                .map_err(|e| malformed(cid, e.to_string()))?;
            match data.kind {
                DataType::File | DataType::Raw => {
                    if data.blocksizes.len() != node.links.len() {
                        return Err(malformed(
                            cid,
                            format!(
                                "{} links but {} blocksizes",
                                node.links.len(),
                                data.blocksizes.len()
                            ),
                        ));
                    }
                    let inline = Bytes::from(data.data.unwrap_or_default());
                    let sum = data
                        .blocksizes
                        .iter()
                        .try_fold(inline.len() as u64, |a, &b| a.checked_add(b))
                        .ok_or_else(|| malformed(cid, "blocksizes overflow"))?;
                    if let Some(fs) = data.filesize {
                        if fs != sum {
                            return Err(malformed(
                                cid,
                                format!("filesize {fs} but blocks add up to {sum}"),
                            ));
                        }
                    }
                    let links = node.links.iter().map(|l| l.cid).zip(data.blocksizes).collect();
                    Ok(Node::File {
                        data: inline,
                        links,
                        size: sum,
                    })
                }
                DataType::Directory => Ok(Node::Dir(node.links)),
                DataType::HamtShard => Ok(Node::Hamt {
                    links: node.links,
                    hashed: data.fanout == Some(HAMT_FANOUT) && data.hash_type == Some(HASH_MURMUR3),
                }),
                DataType::Symlink => String::from_utf8(data.data.unwrap_or_default())
                    .map(Node::Symlink)
                    .map_err(|_| malformed(cid, "symlink target is not UTF-8")),
                DataType::Metadata => Err(malformed(cid, "UnixFS metadata nodes are not supported")),
            }
        }
        c => Err(malformed(cid, format!("codec 0x{c:x} is not UnixFS"))),
    }
}

/// A valid entry name: one path component.
fn check_name(cid: &Cid, name: &str) -> Result<(), IpfsError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(malformed(cid, format!("bad directory entry name {name:?}")));
    }
    Ok(())
}

/// A directory entry: name, CID, and the link's Tsize (the byte size of the
/// whole DAG under it; for a raw leaf, exactly the file's size).
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: String,
    pub cid: Cid,
    pub tsize: u64,
}

impl Store {
    async fn node(&self, cid: &Cid) -> Result<Node, IpfsError> {
        decode(cid, self.get(cid).await?)
    }

    /// What `cid` is.
    pub async fn kind(&self, cid: &Cid) -> Result<Kind, IpfsError> {
        Ok(match self.node(cid).await? {
            Node::File { size, .. } => Kind::File(size),
            Node::Dir(_) | Node::Hamt { .. } => Kind::Dir,
            Node::Symlink(t) => Kind::Symlink(t),
        })
    }

    /// The entries of the directory `cid`, sorted by name.
    pub async fn list(&self, cid: &Cid) -> Result<Vec<DirEntry>, IpfsError> {
        let mut out = Vec::new();
        match self.node(cid).await? {
            Node::Dir(links) => {
                for l in links {
                    check_name(cid, &l.name)?;
                    out.push(DirEntry {
                        name: l.name,
                        cid: l.cid,
                        tsize: l.tsize,
                    });
                }
            }
            Node::Hamt { links, .. } => self.hamt_entries(cid, links, 0, &mut out).await?,
            _ => return Err(IpfsError::NotDir),
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn hamt_entries<'a>(
        &'a self,
        cid: &'a Cid,
        links: Vec<PbLink>,
        depth: usize,
        out: &'a mut Vec<DirEntry>,
    ) -> BoxFuture<'a, Result<(), IpfsError>> {
        async move {
            if depth > MAX_DEPTH {
                return Err(malformed(cid, "HAMT nested too deep"));
            }
            let mut shards = Vec::new();
            for l in links {
                match l.name.len() {
                    0 | 1 => return Err(malformed(cid, format!("HAMT link name {:?} too short", l.name))),
                    2 => shards.push(l.cid),
                    _ => {
                        let name = l.name.get(2..).unwrap_or_default().to_string();
                        check_name(cid, &name)?;
                        out.push(DirEntry {
                            name,
                            cid: l.cid,
                            tsize: l.tsize,
                        });
                    }
                }
            }
            // Sub-shards at once: a 10,000-entry directory has dozens.
            let subs = try_join_all(shards.iter().map(|s| self.node(s))).await?;
            for (s, node) in shards.iter().zip(subs) {
                match node {
                    Node::Hamt { links, .. } => self.hamt_entries(s, links, depth + 1, out).await?,
                    _ => return Err(malformed(s, "HAMT sub-shard is not a shard")),
                }
            }
            Ok(())
        }
        .boxed()
    }

    /// The CID of `name` in the directory `dir`.
    pub async fn lookup(&self, dir: &Cid, name: &str) -> Result<Cid, IpfsError> {
        match self.node(dir).await? {
            Node::Dir(links) => links
                .into_iter()
                .find(|l| l.name == name)
                .map(|l| l.cid)
                .ok_or(IpfsError::NotFound),
            Node::Hamt { hashed: false, .. } => self
                .list(dir)
                .await?
                .into_iter()
                .find(|e| e.name == name)
                .map(|e| e.cid)
                .ok_or(IpfsError::NotFound),
            Node::Hamt { links, hashed: true } => self.hamt_lookup(dir, links, name).await,
            _ => Err(IpfsError::NotDir),
        }
    }

    /// Follows `name`'s murmur3 hash one byte per level.
    async fn hamt_lookup(&self, dir: &Cid, mut links: Vec<PbLink>, name: &str) -> Result<Cid, IpfsError> {
        let hash = hamt_key_hash(name.as_bytes());
        let mut shard = *dir;
        for &byte in hash.iter() {
            let prefix = format!("{byte:02X}");
            let Some(link) = links.into_iter().find(|l| l.name.starts_with(&prefix)) else {
                return Err(IpfsError::NotFound);
            };
            if link.name.len() > 2 {
                return if &link.name[2..] == name {
                    Ok(link.cid)
                } else {
                    Err(IpfsError::NotFound)
                };
            }
            shard = link.cid;
            links = match self.node(&shard).await? {
                Node::Hamt { links, .. } => links,
                _ => return Err(malformed(&shard, "HAMT sub-shard is not a shard")),
            };
        }
        Err(malformed(&shard, "HAMT deeper than its 64-bit hash"))
    }

    /// The target of the symlink `cid`.
    pub async fn read_link(&self, cid: &Cid) -> Result<String, IpfsError> {
        match self.node(cid).await? {
            Node::Symlink(t) => Ok(t),
            _ => Err(malformed(cid, "not a symlink")),
        }
    }

    /// Up to `len` bytes of the file `cid` at `offset`.
    pub async fn read(&self, cid: &Cid, offset: u64, len: u64) -> Result<Bytes, IpfsError> {
        let end = offset.saturating_add(len);
        let node = self.node(cid).await?;
        let size = match &node {
            Node::File { size, .. } => *size,
            Node::Dir(_) | Node::Hamt { .. } => return Err(IpfsError::IsDir),
            Node::Symlink(_) => return Err(malformed(cid, "a symlink has no bytes")),
        };
        let end = end.min(size);
        if offset >= end {
            return Ok(Bytes::new());
        }
        let chunked = matches!(&node, Node::File { links, .. } if !links.is_empty());
        let mut fetched = HashMap::new();
        if chunked && end - offset >= CAR_RANGE_MIN {
            fetched = self.range_blocks(cid, offset, end - 1).await?;
            if fetched.is_empty() {
                let taken = self.span_blocks(cid, &node, offset, end).await?;
                // The span read all of it in one buffer, each leaf checked:
                // no need to walk the DAG and copy the leaves together.
                if let Some(bytes) = taken.range(offset, end) {
                    return Ok(bytes);
                }
                fetched = taken.into_blocks();
            }
        }
        self.read_node(*cid, node, 0, offset, end, 0, &fetched).await
    }

    /// The leaves holding `from..to` of the file `cid` (whose root is
    /// `node`) from a `cat` span (`stream.rs`): the open span that has
    /// them, else, for a read of at least [`SPAN_MIN_READ`], a new one from
    /// `from`. Empty when no source streams, the file has leaves a span
    /// cannot check, its span failed, or the bytes went by in a span still
    /// being read: those reads go block by block. (Once a sequential
    /// reader's window is full, the readahead asks one block at a time as
    /// the reader moves on: the open span serves those too.)
    async fn span_blocks(&self, cid: &Cid, node: &Node, from: u64, to: u64) -> Result<Taken, IpfsError> {
        // Only a run of the readahead (several blocks) opens a span: a
        // single block read is as likely a random reader's.
        let opening = match self.spans.lookup(cid, from, to - from >= SPAN_MIN_READ).await {
            Lookup::Use(mut turn) => return Ok(turn.take(from, to).await),
            Lookup::Blocks => return Ok(Taken::default()),
            Lookup::Open(opening) => opening,
        };
        let mut leaves = Vec::new();
        let span_end = from.saturating_add(SPAN_BYTES.max(to - from));
        if !self.plan_leaves(node, 0, from, span_end, 0, &mut leaves).await? {
            return Ok(Taken::default());
        }
        let Some(start) = leaves.first().map(|l| l.offset) else {
            return Ok(Taken::default());
        };
        let Some(end) = segment_end(&leaves, start, SEGMENT_BYTES) else {
            return Ok(Taken::default());
        };
        let Some((body, source)) = self.cat_span(cid, start, end - start).await else {
            return Ok(Taken::default());
        };
        let span = Span::new(*cid, source, body, end, leaves, opening.buffers());
        let Some(mut span) = opening.fill(span) else {
            return Ok(Taken::default());
        };
        Ok(span.take(from, to).await)
    }

    /// Appends to `out`, in file order, the leaves under the file node
    /// `node` (at file offset `start`) that hold bytes of
    /// `want_start..want_end`, up to [`SPAN_LEAVES`]. False when one of them
    /// is neither a raw leaf nor a sha2-256 dag-pb File leaf, or a node on
    /// the way holds bytes of its own: a span's bytes could not all be
    /// checked. Of a node's dag-pb children only the first is fetched: when
    /// it is a File leaf, its siblings no larger than it are planned as
    /// such too (kubo's balanced DAGs keep all leaves, of one size but the
    /// last, on the last level; a sibling that is no leaf stops the span
    /// when its bytes do not match, see `stream.rs`). Larger ones (a trickle
    /// DAG's subtrees) are fetched and walked.
    #[allow(clippy::too_many_arguments)]
    fn plan_leaves<'a>(
        &'a self,
        node: &'a Node,
        start: u64,
        want_start: u64,
        want_end: u64,
        depth: usize,
        out: &'a mut Vec<Leaf>,
    ) -> BoxFuture<'a, Result<bool, IpfsError>> {
        async move {
            let Node::File { data, links, .. } = node else {
                return Ok(false);
            };
            if depth > MAX_DEPTH || !data.is_empty() {
                return Ok(false);
            }
            let mut pos = start;
            // The size of this node's first dag-pb child, once fetched and
            // found to be a File leaf.
            let mut pb_leaf_size = None;
            for (child, size) in links {
                let child_end = pos.saturating_add(*size);
                if child_end > want_start && pos < want_end {
                    if out.len() >= SPAN_LEAVES {
                        return Ok(true);
                    }
                    let leaf = |wrapped| Leaf {
                        cid: *child,
                        offset: pos,
                        size: *size,
                        wrapped,
                    };
                    let checkable = child.codec() == DAG_PB && child.hash().code() == SHA2_256 && *size > 0;
                    if child.codec() == RAW {
                        out.push(leaf(false));
                    } else if checkable && pb_leaf_size.is_some_and(|max| *size <= max) {
                        out.push(leaf(true));
                    } else {
                        let inner = self.node(child).await?;
                        let is_leaf = matches!(&inner, Node::File { links, data, size: got }
                            if links.is_empty() && data.len() as u64 == *got && *got == *size);
                        if is_leaf && checkable {
                            pb_leaf_size.get_or_insert(*size);
                            out.push(leaf(true));
                        } else if is_leaf
                            || !self
                                .plan_leaves(&inner, pos, want_start, want_end, depth + 1, out)
                                .await?
                        {
                            return Ok(false);
                        }
                    }
                }
                pos = child_end;
                if pos >= want_end {
                    break;
                }
            }
            Ok(true)
        }
        .boxed()
    }

    /// Bytes of `want_start..want_end` that lie in the file node `node`,
    /// which starts at file offset `start`. Children in `fetched` (verified
    /// blocks of a CAR range or a span) are not fetched again.
    #[allow(clippy::too_many_arguments)]
    fn read_node<'a>(
        &'a self,
        cid: Cid,
        node: Node,
        start: u64,
        want_start: u64,
        want_end: u64,
        depth: usize,
        fetched: &'a HashMap<Cid, Bytes>,
    ) -> BoxFuture<'a, Result<Bytes, IpfsError>> {
        async move {
            if depth > MAX_DEPTH {
                return Err(malformed(&cid, "file DAG nested too deep"));
            }
            let Node::File { data, links, .. } = node else {
                return Err(malformed(&cid, "file chunk is not a file node"));
            };
            let mut parts: Vec<Bytes> = Vec::new();
            let data_end = start + data.len() as u64;
            if data_end > want_start && start < want_end {
                let a = (want_start.max(start) - start) as usize;
                let b = (want_end.min(data_end) - start) as usize;
                parts.push(data.slice(a..b));
            }
            let mut wanted = Vec::new();
            let mut pos = data_end;
            for (child, size) in links {
                let child_end = pos.saturating_add(size);
                if child_end > want_start && pos < want_end {
                    wanted.push((child, pos, size));
                }
                pos = child_end;
                if pos >= want_end {
                    break;
                }
            }
            let children = try_join_all(wanted.into_iter().map(|(child, pos, size)| async move {
                let node = match fetched.get(&child) {
                    Some(bytes) => decode(&child, bytes.clone())?,
                    None => self.node(&child).await?,
                };
                match &node {
                    Node::File { size: got, .. } if *got == size => {}
                    Node::File { size: got, .. } => {
                        return Err(malformed(
                            &child,
                            format!("holds {got} bytes, its parent {cid} says {size}"),
                        ))
                    }
                    _ => return Err(malformed(&child, "file chunk is not a file node")),
                }
                self.read_node(child, node, pos, want_start, want_end, depth + 1, fetched)
                    .await
            }))
            .await?;
            parts.extend(children);
            if parts.len() == 1 {
                return Ok(parts.pop().unwrap_or_default());
            }
            let mut out = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
            for p in parts {
                out.extend_from_slice(&p);
            }
            Ok(out.freeze())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    //! Decoding of blocks made by real tools (tests/fixtures/unixfs: a js-ipfs
    //! 0.66.1 `dag export` and an ipfs-car 3.1.0 HAMT, see the README there)
    //! and of broken blocks: bad input is an error, never a panic.
    use super::*;
    use crate::car::{cid_of_block, encode_dagpb, DataType, PbLink, UnixfsData, DAG_PB, RAW};
    use crate::ipfs::{BlockSource, CarFiles, SourceError};
    use async_trait::async_trait;
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    /// Root of `file-tree.car` (js-ipfs `add`: CIDv1, raw leaves, 256-byte chunks).
    const TREE_ROOT: &str = "bafybeibhbne3pem2srslikqsewx5c5v3mlzvqbwcferepd5tdiuh346yo4";
    /// The node's `ls` of that root: chunked.bin (60000 bytes) and small.txt.
    const CHUNKED: &str = "zdj7WZnxcctBYG9GSLt9wn4N4NobtTmmaDfxpF6rtAum7VGJq";
    const SMALL: &str = "zb2rhk9uKQT791gwiz9Err3tb7dEj5ZTSL2ehinZ91FQAszCb";
    /// `sha256sum` of chunked.bin.
    const CHUNKED_SHA256: &str = "a940d30f08452f5ecc4d63bcba95eebb047c1c4d6bc5a2c88602215e988a9799";
    /// Root of `hamt.car` (ipfs-car `pack` of 1100 files n0..n1099 holding "x\n").
    const HAMT_ROOT: &str = "bafybeibl5ntxydoyjnhdf7g67wbym3afvympm7wsvrjs5weax2rgglifii";

    fn fixture(name: &str) -> Store {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/unixfs")
            .join(name);
        Store::new(vec![Arc::new(CarFiles::open(&[p]).unwrap())])
    }

    fn cid(s: &str) -> Cid {
        Cid::try_from(s).unwrap()
    }

    /// Blocks made here, stored under the CIDs of their bytes (so they pass
    /// the hash check and reach the decoder).
    #[derive(Default)]
    struct Mem(Mutex<HashMap<Cid, Bytes>>);

    impl Mem {
        fn put(&self, codec: u64, bytes: Vec<u8>) -> Cid {
            let c = cid_of_block(false, codec, &bytes);
            self.0.lock().unwrap().insert(c, Bytes::from(bytes));
            c
        }
    }

    struct Shared(Arc<Mem>);

    #[async_trait]
    impl BlockSource for Shared {
        fn name(&self) -> String {
            "memory".into()
        }
        async fn get(&self, cid: &Cid) -> Result<Bytes, SourceError> {
            self.0
                 .0
                .lock()
                .unwrap()
                .get(cid)
                .cloned()
                .ok_or(SourceError::Missing("no".into()))
        }
    }

    fn mem_store() -> (Arc<Mem>, Store) {
        let mem = Arc::new(Mem::default());
        (mem.clone(), Store::new(vec![Arc::new(Shared(mem))]))
    }

    fn node(kind: DataType, f: impl FnOnce(&mut UnixfsData), links: &[PbLink]) -> Vec<u8> {
        let mut d = UnixfsData::new(kind);
        f(&mut d);
        encode_dagpb(links, &d.encode())
    }

    fn link(cid: Cid, name: &str, tsize: u64) -> PbLink {
        PbLink {
            cid,
            name: name.into(),
            tsize,
        }
    }

    fn is_malformed<T: std::fmt::Debug>(r: Result<T, IpfsError>) -> String {
        match r {
            Err(IpfsError::Malformed { message, .. }) => message,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_js_ipfs_tree_lists_looks_up_and_reads_at_any_offset() {
        let s = fixture("file-tree.car");
        let root = cid(TREE_ROOT);
        assert_eq!(s.kind(&root).await.unwrap(), Kind::Dir);
        let entries = s.list(&root).await.unwrap();
        let names: Vec<(&str, Cid)> = entries.iter().map(|e| (e.name.as_str(), e.cid)).collect();
        assert_eq!(
            names,
            vec![("chunked.bin", cid(CHUNKED)), ("small.txt", cid(SMALL))]
        );
        assert_eq!(s.lookup(&root, "small.txt").await.unwrap(), cid(SMALL));
        assert!(matches!(s.lookup(&root, "nope").await, Err(IpfsError::NotFound)));
        assert_eq!(&s.read(&cid(SMALL), 0, 100).await.unwrap()[..], b"hello unixfs\n");

        let file = cid(CHUNKED);
        assert_eq!(s.kind(&file).await.unwrap(), Kind::File(60_000));
        let whole = s.read(&file, 0, 60_000).await.unwrap();
        assert_eq!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&whole)),
            CHUNKED_SHA256
        );
        // Within a chunk, across chunk edges (256 bytes), across the first
        // level's nodes (174 chunks), at the end and past it.
        for (off, len) in [
            (0u64, 10u64),
            (250, 12),
            (255, 257),
            (174 * 256 - 3, 600),
            (59_990, 100),
            (60_000, 5),
        ] {
            let got = s.read(&file, off, len).await.unwrap();
            let end = (off + len).min(60_000) as usize;
            assert_eq!(&got[..], &whole[(off as usize).min(end)..end], "at {off}+{len}");
        }
        assert!(matches!(s.read(&root, 0, 1).await, Err(IpfsError::IsDir)));
        assert!(matches!(s.list(&file).await, Err(IpfsError::NotDir)));
        assert!(matches!(s.lookup(&file, "x").await, Err(IpfsError::NotDir)));
        is_malformed(s.read_link(&file).await);
    }

    /// A gateway that answers every CAR range with these bytes and has no
    /// single blocks.
    struct CarRange(Vec<u8>);

    #[async_trait]
    impl BlockSource for CarRange {
        fn name(&self) -> String {
            "car-range".into()
        }
        async fn get(&self, _cid: &Cid) -> Result<Bytes, SourceError> {
            Err(SourceError::Missing("no single blocks here".into()))
        }
        async fn get_car_range(
            &self,
            _cid: &Cid,
            _from: u64,
            _to: u64,
        ) -> Result<Option<Bytes>, SourceError> {
            Ok(Some(Bytes::from(self.0.clone())))
        }
    }

    fn fixture_bytes(name: &str) -> Vec<u8> {
        std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/unixfs")
                .join(name),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn car_range_blocks_are_verified_and_cached_a_tampered_one_fails_a_cut_one_keeps_its_head() {
        let car = fixture_bytes("file-tree.car");
        let file = cid(CHUNKED);
        // A whole CAR (js-ipfs `dag export`): every block kept, and cached,
        // so the file reads with no single-block fetch at all.
        let s = Store::new(vec![Arc::new(CarRange(car.clone()))]);
        let got = s.range_blocks(&file, 0, 59_999).await.unwrap();
        assert!(got.contains_key(&file) && got.len() > 200, "{} blocks", got.len());
        let whole = s.read(&file, 0, 60_000).await.unwrap();
        assert_eq!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&whole)),
            CHUNKED_SHA256
        );

        // One byte of the 100th block flipped: an error naming that block.
        let mut r = crate::car::CarReader::new(&car[..]).unwrap();
        let mut victim = None;
        for _ in 0..100 {
            victim = r.next_block().unwrap();
        }
        let victim = victim.unwrap();
        let mut bad = car.clone();
        bad[victim.data_offset as usize] ^= 0xff;
        let s = Store::new(vec![Arc::new(CarRange(bad))]);
        match s.range_blocks(&file, 0, 59_999).await {
            Err(IpfsError::HashMismatch { cid, origin }) => {
                assert_eq!((cid, origin.as_str()), (victim.cid.to_string(), "car-range"))
            }
            other => panic!("expected HashMismatch, got {other:?}"),
        }
        assert!(s.read(&file, 0, 10).await.is_err(), "nothing was cached");

        // Cut inside the 100th block: the 99 before it, no error.
        let cut = car[..victim.data_offset as usize + 10].to_vec();
        let s = Store::new(vec![Arc::new(CarRange(cut))]);
        assert_eq!(s.range_blocks(&file, 0, 59_999).await.unwrap().len(), 99);
    }

    #[tokio::test]
    async fn an_ipfs_car_hamt_lists_every_entry_and_looks_names_up_by_hash() {
        let s = fixture("hamt.car");
        let root = cid(HAMT_ROOT);
        assert_eq!(s.kind(&root).await.unwrap(), Kind::Dir);
        let entries = s.list(&root).await.unwrap();
        assert_eq!(entries.len(), 1100);
        let mut want: Vec<String> = (0..1100).map(|i| format!("n{i}")).collect();
        want.sort();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, want);
        let x = entries[0].cid;
        assert!(entries.iter().all(|e| e.cid == x && e.tsize == 2));
        for name in ["n0", "n777", "n1099"] {
            assert_eq!(s.lookup(&root, name).await.unwrap(), x, "{name}");
        }
        for name in ["n1100", "", "N1", "n77/7"] {
            assert!(
                matches!(s.lookup(&root, name).await, Err(IpfsError::NotFound)),
                "{name:?}"
            );
        }
        assert_eq!(&s.read(&x, 0, 10).await.unwrap()[..], b"x\n");
        // The root block is a HAMT shard node (type 5, fanout 256, murmur3).
        let raw = s.get(&root).await.unwrap();
        let pb = crate::car::decode_dagpb(&raw).unwrap();
        let d = UnixfsData::decode(pb.data.as_deref().unwrap()).unwrap();
        assert_eq!(
            (d.kind, d.fanout, d.hash_type),
            (DataType::HamtShard, Some(256), Some(0x22))
        );
    }

    /// Every prefix and one-byte change of real blocks, and noise: each call
    /// answers (Ok or an error) and none panics.
    #[tokio::test]
    async fn truncated_flipped_and_random_blocks_are_errors_not_panics() {
        let mut real = Vec::new();
        for (car, root) in [("file-tree.car", TREE_ROOT), ("hamt.car", HAMT_ROOT)] {
            let s = fixture(car);
            real.push(s.get(&cid(root)).await.unwrap().to_vec());
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        };
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for block in &real {
            let step = (block.len() / 300).max(1);
            for cut in (0..block.len()).step_by(step) {
                inputs.push(block[..cut].to_vec());
            }
            for at in (0..block.len()).step_by(step * 3) {
                let mut b = block.clone();
                b[at] ^= 0x5a;
                inputs.push(b);
            }
        }
        for n in [1, 2, 3, 5, 8, 40, 300] {
            for _ in 0..20 {
                inputs.push(noise(n));
            }
        }
        inputs.push(vec![0x0a, 0xff]); // a Data field longer than the block
        inputs.push(vec![
            0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ]); // varint overflow
        let (mem, s) = mem_store();
        let mut errors = 0;
        for bytes in inputs {
            let c = mem.put(DAG_PB, bytes);
            errors += s.kind(&c).await.is_err() as usize;
            let _ = s.list(&c).await;
            let _ = s.lookup(&c, "n1").await;
            let _ = s.read(&c, 0, 1 << 20).await;
            let _ = s.read(&c, 12_345, 10).await;
            let _ = s.read_link(&c).await;
        }
        assert!(errors > 100, "only {errors} inputs were refused");
    }

    #[tokio::test]
    async fn nodes_of_the_wrong_type_or_shape_are_refused() {
        let (mem, s) = mem_store();
        let leaf = mem.put(RAW, b"hello unixfs\n".to_vec());
        let dir = mem.put(DAG_PB, node(DataType::Directory, |_| {}, &[link(leaf, "a", 13)]));

        // A file whose chunk is a directory.
        let f = mem.put(
            DAG_PB,
            node(DataType::File, |d| d.blocksizes = vec![13], &[link(dir, "", 13)]),
        );
        assert!(is_malformed(s.read(&f, 0, 13).await).contains("not a file node"));
        // Links and blocksizes that disagree.
        let f = mem.put(DAG_PB, node(DataType::File, |_| {}, &[link(leaf, "", 13)]));
        assert!(is_malformed(s.kind(&f).await).contains("blocksizes"));
        // A filesize that is not what the blocks add up to.
        let f = mem.put(
            DAG_PB,
            node(
                DataType::File,
                |d| {
                    d.blocksizes = vec![13];
                    d.filesize = Some(99);
                },
                &[link(leaf, "", 13)],
            ),
        );
        assert!(is_malformed(s.kind(&f).await).contains("filesize"));
        // A chunk holding other than its parent says.
        let f = mem.put(
            DAG_PB,
            node(
                DataType::File,
                |d| d.blocksizes = vec![100],
                &[link(leaf, "", 100)],
            ),
        );
        assert!(is_malformed(s.read(&f, 0, 100).await).contains("holds 13 bytes"));
        // blocksizes that overflow u64.
        let f = mem.put(
            DAG_PB,
            node(
                DataType::File,
                |d| d.blocksizes = vec![u64::MAX, 2],
                &[link(leaf, "", 1), link(leaf, "", 1)],
            ),
        );
        assert!(is_malformed(s.kind(&f).await).contains("overflow"));
        // Directory entry names that are not one path component.
        for bad in ["", ".", "..", "a/b", "nul\0"] {
            let d = mem.put(DAG_PB, node(DataType::Directory, |_| {}, &[link(leaf, bad, 13)]));
            assert!(
                is_malformed(s.list(&d).await).contains("bad directory entry name"),
                "{bad:?}"
            );
        }
        // HAMT links too short, sub-shards that are not shards, entries with bad names.
        let hamt = |links: &[PbLink]| {
            node(
                DataType::HamtShard,
                |d| {
                    d.fanout = Some(256);
                    d.hash_type = Some(0x22);
                },
                links,
            )
        };
        let h = mem.put(DAG_PB, hamt(&[link(leaf, "A", 13)]));
        assert!(is_malformed(s.list(&h).await).contains("too short"));
        let h = mem.put(DAG_PB, hamt(&[link(dir, "0A", 13)]));
        assert!(is_malformed(s.list(&h).await).contains("not a shard"));
        let h = mem.put(DAG_PB, hamt(&[link(leaf, "0A..", 13)]));
        assert!(is_malformed(s.list(&h).await).contains("bad directory entry name"));
        // Another codec, a symlink that is not UTF-8, a metadata node.
        let cbor = mem.put(0x71, vec![0xa0]);
        assert!(is_malformed(s.kind(&cbor).await).contains("not UnixFS"));
        let l = mem.put(
            DAG_PB,
            node(DataType::Symlink, |d| d.data = Some(vec![0xff, 0xfe]), &[]),
        );
        assert!(is_malformed(s.kind(&l).await).contains("UTF-8"));
        let m = mem.put(DAG_PB, node(DataType::Metadata, |_| {}, &[]));
        assert!(is_malformed(s.kind(&m).await).contains("metadata"));
        // A symlink reads as its target.
        let l = mem.put(
            DAG_PB,
            node(DataType::Symlink, |d| d.data = Some(b"../t".to_vec()), &[]),
        );
        assert_eq!(s.read_link(&l).await.unwrap(), "../t");
    }

    #[tokio::test]
    async fn dag_pb_leaves_are_planned_from_the_first_sibling_and_larger_siblings_are_walked() {
        let (mem, s) = mem_store();
        let pb_leaf = |fill: u8, len: usize| mem.put(DAG_PB, crate::car::leaf_node(&vec![fill; len]));
        let (l1, l2) = (pb_leaf(1, 256), pb_leaf(2, 256));
        let (l3, l4) = (pb_leaf(3, 256), pb_leaf(4, 100));
        let l5 = pb_leaf(5, 100);
        let sub = mem.put(
            DAG_PB,
            node(
                DataType::File,
                |d| {
                    d.filesize = Some(356);
                    d.blocksizes = vec![256, 100];
                },
                &[link(l3, "", 300), link(l4, "", 120)],
            ),
        );
        let root = mem.put(
            DAG_PB,
            node(
                DataType::File,
                |d| {
                    d.filesize = Some(968);
                    d.blocksizes = vec![256, 256, 356, 100];
                },
                &[
                    link(l1, "", 300),
                    link(l2, "", 300),
                    link(sub, "", 500),
                    link(l5, "", 120),
                ],
            ),
        );
        // Siblings no larger than the first leaf of their node are not fetched.
        for gone in [l2, l4, l5] {
            mem.0.lock().unwrap().remove(&gone);
        }
        let top = s.node(&root).await.unwrap();
        let mut out = Vec::new();
        assert!(s.plan_leaves(&top, 0, 0, 968, 0, &mut out).await.unwrap());
        let got: Vec<(Cid, u64, u64, bool)> =
            out.iter().map(|l| (l.cid, l.offset, l.size, l.wrapped)).collect();
        assert_eq!(
            got,
            vec![
                (l1, 0, 256, true),
                (l2, 256, 256, true),
                (l3, 512, 256, true),
                (l4, 768, 100, true),
                (l5, 868, 100, true),
            ]
        );
    }

    #[tokio::test]
    async fn a_file_dag_deeper_than_the_limit_is_refused() {
        let (mem, s) = mem_store();
        let mut c = mem.put(RAW, b"deep".to_vec());
        for _ in 0..MAX_DEPTH + 2 {
            c = mem.put(
                DAG_PB,
                node(DataType::File, |d| d.blocksizes = vec![4], &[link(c, "", 4)]),
            );
        }
        assert_eq!(s.kind(&c).await.unwrap(), Kind::File(4));
        assert!(is_malformed(s.read(&c, 0, 4).await).contains("too deep"));
    }
}
