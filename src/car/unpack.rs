//! Reading UnixFS back out of a CAR: an indexed block store over a CAR
//! file, and a DAG walk that lists or extracts files, directories (basic
//! and HAMT) and symlinks.
//!
//! Safety on hostile CARs: every block is hash-verified while indexing;
//! entry names must be single path components (no `/`, `.`, `..`), so
//! nothing is written outside the target directory; a block that is its own
//! ancestor is a cycle error; nesting is capped at [`MAX_DEPTH`].

use super::block::{DAG_PB, RAW};
use super::dagpb;
use super::dir::check_name;
use super::error::{CarError, Result};
use super::reader::CarReader;
use super::unixfs::{Data, DataType};
use cid::Cid;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Deepest DAG nesting followed; far beyond any real tree (a 1 PiB file is depth 4).
pub const MAX_DEPTH: usize = 4096;

/// A CAR file indexed by CID for random access.
pub struct CarStore {
    file: File,
    index: HashMap<Cid, (u64, u32)>,
    roots: Vec<Cid>,
    blocks: u64,
}

impl CarStore {
    /// Scan (and verify) the CAR at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let f = File::open(path).map_err(CarError::path(path))?;
        let mut reader = CarReader::new(BufReader::with_capacity(1 << 20, f))?;
        let roots = reader.roots().to_vec();
        let mut index = HashMap::new();
        let mut blocks = 0;
        while let Some(b) = reader.next_block()? {
            index
                .entry(b.cid)
                .or_insert((b.data_offset, b.data.len() as u32));
            blocks += 1;
        }
        let file = File::open(path).map_err(CarError::path(path))?;
        Ok(CarStore {
            file,
            index,
            roots,
            blocks,
        })
    }

    /// The header's roots.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// Number of sections read (duplicates included).
    pub fn block_count(&self) -> u64 {
        self.blocks
    }

    /// Whether the CAR holds `cid`.
    pub fn has(&self, cid: &Cid) -> bool {
        self.index.contains_key(cid)
    }

    /// The bytes of `cid`.
    pub fn get(&mut self, cid: &Cid) -> Result<Vec<u8>> {
        let &(off, len) = self
            .index
            .get(cid)
            .ok_or_else(|| CarError::MissingBlock(cid.to_string()))?;
        let mut buf = vec![0u8; len as usize];
        self.file.seek(SeekFrom::Start(off))?;
        self.file.read_exact(&mut buf)?;
        Ok(buf)
    }
}

/// What a listed path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory (basic or HAMT).
    Dir,
    /// A file of this many bytes.
    File(u64),
    /// A symlink to this target.
    Symlink(String),
}

/// One listed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Path relative to the root ("" for the root itself).
    pub path: String,
    /// The entry's CID.
    pub cid: Cid,
    /// What it is.
    pub kind: Kind,
}

struct Walk<'a> {
    store: &'a mut CarStore,
    out: Option<PathBuf>,
    listed: Vec<Listed>,
    ancestors: HashSet<Cid>,
    file_budget: u64,
}

enum Decoded {
    Raw(Vec<u8>),
    Node(dagpb::PbNode, Data),
}

impl Walk<'_> {
    fn decode(&mut self, cid: &Cid) -> Result<Decoded> {
        let bytes = self.store.get(cid)?;
        match cid.codec() {
            RAW => Ok(Decoded::Raw(bytes)),
            DAG_PB => {
                let node = dagpb::decode(&bytes)?;
                let data = Data::decode(node.data.as_deref().unwrap_or_default())?;
                Ok(Decoded::Node(node, data))
            }
            c => Err(CarError::Unsupported(format!(
                "block {cid}: codec 0x{c:x} is not UnixFS"
            ))),
        }
    }

    fn enter(&mut self, cid: &Cid, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(CarError::Invalid(format!(
                "DAG deeper than {MAX_DEPTH} at block {cid}"
            )));
        }
        if !self.ancestors.insert(*cid) {
            return Err(CarError::Invalid(format!(
                "cycle: block {cid} links to itself"
            )));
        }
        Ok(())
    }

    fn entry(&mut self, cid: &Cid, rel: &str, depth: usize) -> Result<()> {
        self.enter(cid, depth)?;
        let target = self.out.as_ref().map(|o| {
            if rel.is_empty() {
                o.clone()
            } else {
                o.join(rel)
            }
        });
        match self.decode(cid)? {
            Decoded::Raw(bytes) => {
                if let Some(t) = &target {
                    std::fs::write(t, &bytes).map_err(CarError::path(t))?;
                }
                self.listed.push(Listed {
                    path: rel.into(),
                    cid: *cid,
                    kind: Kind::File(bytes.len() as u64),
                });
            }
            Decoded::Node(node, data) => match data.kind {
                DataType::File | DataType::Raw => {
                    let mut w: Box<dyn Write> = match &target {
                        Some(t) => Box::new(std::io::BufWriter::new(
                            File::create(t).map_err(CarError::path(t))?,
                        )),
                        None => Box::new(std::io::sink()),
                    };
                    // A DAG that reuses blocks can expand far beyond the CAR's
                    // size; the root's filesize bounds what we write.
                    self.file_budget = data.filesize.unwrap_or(u64::MAX);
                    let size = self.file_body(&node, &data, &mut w, depth)?;
                    w.flush()?;
                    self.listed.push(Listed {
                        path: rel.into(),
                        cid: *cid,
                        kind: Kind::File(size),
                    });
                }
                DataType::Directory | DataType::HamtShard => {
                    if let Some(t) = &target {
                        std::fs::create_dir_all(t).map_err(CarError::path(t))?;
                    }
                    self.listed.push(Listed {
                        path: rel.into(),
                        cid: *cid,
                        kind: Kind::Dir,
                    });
                    let hamt = data.kind == DataType::HamtShard;
                    self.dir_links(&node, hamt, rel, depth)?;
                }
                DataType::Symlink => {
                    let link = String::from_utf8(data.data.unwrap_or_default()).map_err(|_| {
                        CarError::Invalid(format!("symlink {cid}: target is not UTF-8"))
                    })?;
                    if let Some(t) = &target {
                        std::os::unix::fs::symlink(&link, t).map_err(CarError::path(t))?;
                    }
                    self.listed.push(Listed {
                        path: rel.into(),
                        cid: *cid,
                        kind: Kind::Symlink(link),
                    });
                }
                DataType::Metadata => {
                    return Err(CarError::Unsupported(format!(
                        "block {cid}: UnixFS metadata node"
                    )))
                }
            },
        }
        self.ancestors.remove(cid);
        Ok(())
    }

    fn dir_links(
        &mut self,
        node: &dagpb::PbNode,
        hamt: bool,
        rel: &str,
        depth: usize,
    ) -> Result<()> {
        for link in &node.links {
            let name = if hamt {
                if !link.name.is_char_boundary(2.min(link.name.len())) || link.name.len() < 2 {
                    return Err(CarError::Invalid(format!(
                        "HAMT link name {:?} too short",
                        link.name
                    )));
                }
                if link.name.len() == 2 {
                    self.enter(&link.cid, depth + 1)?;
                    match self.decode(&link.cid)? {
                        Decoded::Node(sub, d) if d.kind == DataType::HamtShard => {
                            self.dir_links(&sub, true, rel, depth + 1)?
                        }
                        _ => {
                            return Err(CarError::Invalid(format!(
                                "HAMT sub-shard {} is not a shard",
                                link.cid
                            )))
                        }
                    }
                    self.ancestors.remove(&link.cid);
                    continue;
                }
                &link.name[2..]
            } else {
                link.name.as_str()
            };
            check_name(name)?;
            let child = if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            };
            self.entry(&link.cid, &child, depth + 1)?;
        }
        Ok(())
    }

    /// Count `n` more bytes of the current file against its declared size.
    fn spend(&mut self, n: usize) -> Result<()> {
        self.file_budget = self.file_budget.checked_sub(n as u64).ok_or_else(|| {
            CarError::Invalid("file DAG holds more bytes than its root's filesize".into())
        })?;
        Ok(())
    }

    fn file_body(
        &mut self,
        node: &dagpb::PbNode,
        data: &Data,
        w: &mut dyn Write,
        depth: usize,
    ) -> Result<u64> {
        let mut size = 0;
        if let Some(d) = &data.data {
            self.spend(d.len())?;
            w.write_all(d)?;
            size += d.len() as u64;
        }
        for link in &node.links {
            self.enter(&link.cid, depth + 1)?;
            size += match self.decode(&link.cid)? {
                Decoded::Raw(bytes) => {
                    self.spend(bytes.len())?;
                    w.write_all(&bytes)?;
                    bytes.len() as u64
                }
                Decoded::Node(n, d) if matches!(d.kind, DataType::File | DataType::Raw) => {
                    self.file_body(&n, &d, w, depth + 1)?
                }
                Decoded::Node(..) => {
                    return Err(CarError::Invalid(format!(
                        "file chunk {} is not a file node",
                        link.cid
                    )))
                }
            };
            self.ancestors.remove(&link.cid);
        }
        Ok(size)
    }
}

/// Walk the UnixFS DAG under `root`, listing every path; with `out`, also
/// write it there (`out` becomes the root file or directory).
pub fn walk(store: &mut CarStore, root: &Cid, out: Option<&Path>) -> Result<Vec<Listed>> {
    let mut w = Walk {
        store,
        out: out.map(Path::to_owned),
        listed: Vec::new(),
        ancestors: HashSet::new(),
        file_budget: 0,
    };
    w.entry(root, "", 0)?;
    Ok(w.listed)
}
