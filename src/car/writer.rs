//! CARv1 writing: the header (DAG-CBOR `{roots, version: 1}` behind a varint
//! length) and `varint(len) ++ cid ++ bytes` sections.
//!
//! Two block orders:
//! - root-last ([`CarWriter`] used directly as a [`BlockSink`]): blocks in the
//!   order the builders emit them, which is the order ipfs-car writes; the
//!   header is written first with a same-length placeholder root and patched
//!   at the end ([`patch_header`]), as ipfs-car does, so nothing is buffered.
//! - DFS pre-order, root first, as `ipfs dag export` ([`DfsSpool`]): blocks
//!   are spooled to a temporary file with an in-memory CID -> offset index
//!   (~60 bytes per block), then written by walking the DAG from the root.
//!
//! De-duplication (optional) keeps a set of the CIDs already written.

use super::block::{BlockSink, DAG_PB};
use super::cbor::{self, Value};
use super::dagpb;
use super::error::{CarError, Result};
use super::varint;
use cid::Cid;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The header section (length prefix included) of a CARv1 with `roots`.
pub fn header(roots: &[Cid]) -> Vec<u8> {
    let v = Value::Map(vec![
        (
            "roots".into(),
            Value::Array(roots.iter().map(|c| Value::Link(*c)).collect()),
        ),
        ("version".into(), Value::Uint(1)),
    ]);
    let body = cbor::to_vec(&v);
    let mut out = Vec::with_capacity(body.len() + 2);
    varint::put(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out
}

/// A root placeholder of `len` bytes (34: CIDv0, 36: CIDv1) to patch later.
/// For CIDv1 it is the placeholder ipfs-car itself writes.
pub fn placeholder_root(len: usize) -> Cid {
    let digest = [0u8; 32];
    if len == 34 {
        super::block::cid_from_digest(true, DAG_PB, &digest)
    } else {
        "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
            .parse()
            .unwrap_or_else(|_| super::block::cid_from_digest(false, DAG_PB, &digest))
    }
}

/// Overwrite the header at the start of `out` with one naming `roots`; it must
/// have the same length as the header written there before.
pub fn patch_header<W: Write + Seek>(out: &mut W, old_roots: &[Cid], roots: &[Cid]) -> Result<()> {
    let (old, new) = (header(old_roots), header(roots));
    if old.len() != new.len() {
        return Err(CarError::Invalid(format!(
            "root CID {} does not fit the reserved header ({} vs {} bytes)",
            roots.first().map(|c| c.to_string()).unwrap_or_default(),
            new.len(),
            old.len()
        )));
    }
    out.seek(SeekFrom::Start(0))?;
    out.write_all(&new)?;
    out.flush()?;
    Ok(())
}

/// Bytes of one section's prefix (varint length + CID).
fn section_prefix(cid: &Cid, data_len: usize) -> Vec<u8> {
    let cid_bytes = cid.to_bytes();
    let mut out = Vec::with_capacity(cid_bytes.len() + 4);
    varint::put(&mut out, (cid_bytes.len() + data_len) as u64);
    out.extend_from_slice(&cid_bytes);
    out
}

/// Size of a block's section in a CAR.
pub fn section_len(cid: &Cid, data_len: usize) -> u64 {
    let n = cid.encoded_len() + data_len;
    (varint::len(n as u64) + n) as u64
}

/// Streams a CARv1: header first, then every block it is given.
pub struct CarWriter<W: Write> {
    out: W,
    written: u64,
    blocks: u64,
    seen: Option<HashSet<Cid>>,
}

impl<W: Write> CarWriter<W> {
    /// Write the header for `roots`; `dedup` drops blocks already written.
    pub fn new(mut out: W, roots: &[Cid], dedup: bool) -> Result<Self> {
        let h = header(roots);
        out.write_all(&h)?;
        Ok(CarWriter {
            out,
            written: h.len() as u64,
            blocks: 0,
            seen: dedup.then(HashSet::new),
        })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Blocks written so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Flush and hand back the output.
    pub fn into_inner(mut self) -> Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> BlockSink for CarWriter<W> {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<()> {
        if let Some(seen) = &mut self.seen {
            if !seen.insert(*cid) {
                return Ok(());
            }
        }
        let prefix = section_prefix(cid, data.len());
        self.out.write_all(&prefix)?;
        self.out.write_all(data)?;
        self.written += (prefix.len() + data.len()) as u64;
        self.blocks += 1;
        Ok(())
    }
}

/// Spools blocks to a temporary file, then writes them root first in DFS
/// pre-order (children in link order), as `ipfs dag export` does.
pub struct DfsSpool {
    path: PathBuf,
    file: BufWriter<File>,
    len: u64,
    index: HashMap<Cid, (u64, u32)>,
}

impl DfsSpool {
    /// A spool file at `path` (removed when the spool is dropped).
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(CarError::path(path))?;
        Ok(DfsSpool {
            path: path.to_owned(),
            file: BufWriter::new(file),
            len: 0,
            index: HashMap::new(),
        })
    }

    /// Write the CAR with `root` to `out` (de-duplicating if asked).
    pub fn write_to<W: Write>(mut self, root: &Cid, out: W, dedup: bool) -> Result<CarWriter<W>> {
        self.file.flush()?;
        let file = self.file.get_mut();
        let mut car = CarWriter::new(out, &[*root], dedup)?;
        let mut stack = vec![*root];
        let mut buf = Vec::new();
        while let Some(cid) = stack.pop() {
            let &(off, len) = self
                .index
                .get(&cid)
                .ok_or_else(|| CarError::MissingBlock(cid.to_string()))?;
            buf.resize(len as usize, 0);
            file.seek(SeekFrom::Start(off))?;
            file.read_exact(&mut buf)?;
            car.put(&cid, &buf)?;
            if cid.codec() == DAG_PB {
                let node = dagpb::decode(&buf)?;
                stack.extend(node.links.iter().rev().map(|l| l.cid));
            }
        }
        Ok(car)
    }
}

impl BlockSink for DfsSpool {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<()> {
        if self.index.contains_key(cid) {
            return Ok(());
        }
        let len = u32::try_from(data.len()).map_err(|_| CarError::Invalid("block over 4 GiB".into()))?;
        self.file.write_all(data)?;
        self.index.insert(*cid, (self.len, len));
        self.len += u64::from(len);
        Ok(())
    }
}

impl Drop for DfsSpool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_ipfs_car_bytes_when_one_v1_root() {
        let root: Cid = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
            .parse()
            .unwrap();
        let h = header(&[root]);
        // varint(58) a2 "roots" [tag42 bytes(37)] "version" 1
        assert_eq!(h[0] as usize, h.len() - 1);
        assert_eq!(h.len(), 59);
        assert_eq!(header(&[placeholder_root(36)]).len(), h.len());
        let v0: Cid = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn".parse().unwrap();
        assert_eq!(header(&[placeholder_root(34)]).len(), header(&[v0]).len());
    }
}
