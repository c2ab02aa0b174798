//! CAR reading: CARv1 and CARv2 (the CARv1 payload inside; its index is
//! ignored), root-less shards included, every block's hash verified.
//!
//! Bounds: a header over [`MAX_HEADER`] or a section over [`MAX_SECTION`]
//! bytes is refused before anything is allocated, so a corrupt length cannot
//! exhaust memory. Every error names the byte offset (and the block's index
//! and CID where known).

use super::block::{sha256, IDENTITY, SHA2_256};
use super::cbor::{self, Value};
use super::error::{CarError, Result};
use super::varint;
use cid::Cid;
use std::io::Read;

/// Largest header accepted: 1 MiB is thousands of roots; real headers are ~60 bytes.
pub const MAX_HEADER: u64 = 1 << 20;
/// Largest section accepted: 8 MiB, 4x the 2 MiB block limit IPFS peers
/// enforce; we and ipfs-car write at most 1 MiB + a few bytes.
pub const MAX_SECTION: u64 = 8 << 20;
/// CARv2's fixed header after the 11-byte pragma: characteristics (16),
/// data offset, data size, index offset (8 each).
const V2_HEADER_LEN: usize = 40;
/// Length of the CARv2 pragma (varint 10 + `{"version": 2}`).
const V2_PRAGMA_LEN: u64 = 11;

/// One verified block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The block's CID.
    pub cid: Cid,
    /// The block's bytes.
    pub data: Vec<u8>,
    /// Byte offset of the section (its length varint) in the file.
    pub offset: u64,
    /// Byte offset of the block's data in the file.
    pub data_offset: u64,
}

/// Reads blocks from a CAR stream (wrap files in a `BufReader`).
pub struct CarReader<R: Read> {
    r: R,
    roots: Vec<Cid>,
    version: u64,
    pos: u64,
    index: u64,
    end: Option<u64>,
}

fn truncated(what: &'static str, offset: u64) -> impl FnOnce(std::io::Error) -> CarError {
    move |e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            CarError::malformed(what, offset, "file ends early (truncated)")
        } else {
            CarError::Io(e)
        }
    }
}

impl<R: Read> CarReader<R> {
    /// Parse the header(s); blocks follow with [`CarReader::next_block`].
    pub fn new(mut r: R) -> Result<Self> {
        let (header, used) = read_header(&mut r, 0)?;
        let version = match header.get("version") {
            Some(Value::Uint(v)) => *v,
            _ => return Err(CarError::malformed("CAR header", 0, "no version")),
        };
        match version {
            1 => {
                let roots = roots_of(&header)?;
                Ok(CarReader {
                    r,
                    roots,
                    version,
                    pos: used,
                    index: 0,
                    end: None,
                })
            }
            2 => {
                if used != V2_PRAGMA_LEN {
                    return Err(CarError::malformed(
                        "CARv2 pragma",
                        0,
                        "unexpected pragma length",
                    ));
                }
                let mut h = [0u8; V2_HEADER_LEN];
                r.read_exact(&mut h)
                    .map_err(truncated("CARv2 header", used))?;
                let word = |i: usize| {
                    u64::from_le_bytes(h[16 + 8 * i..24 + 8 * i].try_into().unwrap_or_default())
                };
                let (data_offset, data_size) = (word(0), word(1));
                let mut pos = used + V2_HEADER_LEN as u64;
                if data_offset < pos {
                    return Err(CarError::malformed(
                        "CARv2 header",
                        used,
                        "data offset inside the header",
                    ));
                }
                let skip = data_offset - pos;
                let skipped = std::io::copy(&mut (&mut r).take(skip), &mut std::io::sink())?;
                if skipped != skip {
                    return Err(CarError::malformed(
                        "CARv2 header",
                        pos,
                        "file ends before the data payload",
                    ));
                }
                pos = data_offset;
                let end = data_offset.checked_add(data_size).ok_or_else(|| {
                    CarError::malformed("CARv2 header", used, "data size overflows")
                })?;
                let (inner, used) = read_header(&mut r, pos)?;
                if inner.get("version") != Some(&Value::Uint(1)) {
                    return Err(CarError::malformed(
                        "CARv2 payload header",
                        pos,
                        "payload is not CARv1",
                    ));
                }
                let roots = roots_of(&inner)?;
                Ok(CarReader {
                    r,
                    roots,
                    version,
                    pos: pos + used,
                    index: 0,
                    end: Some(end),
                })
            }
            v => Err(CarError::Unsupported(format!("CAR version {v}"))),
        }
    }

    /// The header's roots (empty for a shard).
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// 1 or 2.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Byte offset of the next section.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The next block, verified; `None` at the end.
    pub fn next_block(&mut self) -> Result<Option<Block>> {
        if self.end.is_some_and(|e| self.pos >= e) {
            return Ok(None);
        }
        let offset = self.pos;
        let Some((len, n)) = varint::read(&mut self.r, "CAR section length", offset)? else {
            if self.end.is_some() {
                return Err(CarError::malformed(
                    "CAR section",
                    offset,
                    "file ends before the CARv2 data size",
                ));
            }
            return Ok(None);
        };
        let index = self.index;
        if len == 0 || len > MAX_SECTION {
            return Err(CarError::malformed(
                "CAR section",
                offset,
                format!("block {index}: section length {len} outside 1..={MAX_SECTION}"),
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.r
            .read_exact(&mut buf)
            .map_err(truncated("CAR section", offset))?;
        let cid = Cid::read_bytes(&buf[..]).map_err(|e| {
            CarError::malformed(
                "CAR section",
                offset,
                format!("block {index}: bad CID: {e}"),
            )
        })?;
        let cid_len = cid.encoded_len();
        buf.drain(..cid_len);
        verify(&cid, &buf, index, offset)?;
        self.pos += n as u64 + len;
        self.index += 1;
        if self.end.is_some_and(|e| self.pos > e) {
            return Err(CarError::malformed(
                "CAR section",
                offset,
                "block runs past the CARv2 data size",
            ));
        }
        Ok(Some(Block {
            cid,
            data: buf,
            offset,
            data_offset: offset + n as u64 + cid_len as u64,
        }))
    }
}

fn read_header<R: Read>(r: &mut R, offset: u64) -> Result<(Value, u64)> {
    let (len, n) = varint::read(r, "CAR header", offset)?
        .ok_or_else(|| CarError::malformed("CAR header", offset, "empty file"))?;
    if len == 0 || len > MAX_HEADER {
        return Err(CarError::malformed(
            "CAR header",
            offset,
            format!("header length {len} outside 1..={MAX_HEADER}"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)
        .map_err(truncated("CAR header", offset))?;
    let v = cbor::decode(&buf, "CAR header", offset + n as u64)?;
    Ok((v, n as u64 + len))
}

fn roots_of(header: &Value) -> Result<Vec<Cid>> {
    match header.get("roots") {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Link(c) => Ok(*c),
                _ => Err(CarError::malformed("CAR header", 0, "a root is not a CID")),
            })
            .collect(),
        Some(_) => Err(CarError::malformed("CAR header", 0, "roots is not a list")),
    }
}

/// Check that `data` hashes to `cid`.
pub fn verify(cid: &Cid, data: &[u8], index: u64, offset: u64) -> Result<()> {
    let mh = cid.hash();
    let ok = match mh.code() {
        SHA2_256 => mh.digest() == sha256(data),
        IDENTITY => mh.digest() == data,
        other => {
            return Err(CarError::Unsupported(format!(
                "block {index} at byte {offset}: hash function 0x{other:x} of {cid}"
            )))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(CarError::HashMismatch {
            index,
            offset,
            cid: cid.to_string(),
        })
    }
}
