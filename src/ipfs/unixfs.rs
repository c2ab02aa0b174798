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
use crate::car::{hamt_key_hash, DataType, PbLink, UnixfsData, DAG_PB, RAW};
use bytes::{Bytes, BytesMut};
use cid::Cid;
use futures::future::{try_join_all, BoxFuture};
use futures::FutureExt;

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
        self.read_node(*cid, node, 0, offset, end, 0).await
    }

    /// Bytes of `want_start..want_end` that lie in the file node `node`,
    /// which starts at file offset `start`.
    fn read_node(
        &self,
        cid: Cid,
        node: Node,
        start: u64,
        want_start: u64,
        want_end: u64,
        depth: usize,
    ) -> BoxFuture<'_, Result<Bytes, IpfsError>> {
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
                let node = self.node(&child).await?;
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
                self.read_node(child, node, pos, want_start, want_end, depth + 1)
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
