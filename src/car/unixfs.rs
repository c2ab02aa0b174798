//! The UnixFS `Data` protobuf carried in dag-pb nodes: encode and decode.
//!
//! Field order on the wire is by field number (Type, Data, filesize,
//! blocksizes, hashType, fanout), `blocksizes` unpacked, as kubo and
//! js-unixfs write it. `mode`/`mtime` are skipped on decode and never written
//! (no profile stores them).

use super::error::{CarError, Result};
use super::pbwire::{self, Fields, Value};

/// Multicodec of murmur3-x64-64, the HAMT key hash (UnixFS `hashType`).
pub const HASH_MURMUR3: u64 = 0x22;

/// UnixFS node types (`Data.DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// Raw bytes (legacy leaves).
    Raw = 0,
    /// A basic directory.
    Directory = 1,
    /// A file or file chunk.
    File = 2,
    /// Legacy metadata node.
    Metadata = 3,
    /// A symbolic link; Data holds the target.
    Symlink = 4,
    /// A HAMT-sharded directory node.
    HamtShard = 5,
}

impl DataType {
    fn from_u64(v: u64) -> Option<Self> {
        Some(match v {
            0 => DataType::Raw,
            1 => DataType::Directory,
            2 => DataType::File,
            3 => DataType::Metadata,
            4 => DataType::Symlink,
            5 => DataType::HamtShard,
            _ => return None,
        })
    }
}

/// A UnixFS `Data` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// Node type.
    pub kind: DataType,
    /// Inline bytes (file data, symlink target, HAMT bitfield).
    pub data: Option<Vec<u8>>,
    /// Total file bytes under this node (files only).
    pub filesize: Option<u64>,
    /// File bytes under each child link, in link order.
    pub blocksizes: Vec<u64>,
    /// HAMT hash function multicodec.
    pub hash_type: Option<u64>,
    /// HAMT fanout.
    pub fanout: Option<u64>,
}

impl Data {
    /// A message of `kind` with every optional field unset.
    pub fn new(kind: DataType) -> Self {
        Data {
            kind,
            data: None,
            filesize: None,
            blocksizes: Vec::new(),
            hash_type: None,
            fanout: None,
        }
    }

    /// Serialize.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            16 + self.data.as_ref().map_or(0, Vec::len) + self.blocksizes.len() * 4,
        );
        pbwire::put_uint(&mut out, 1, self.kind as u64);
        if let Some(d) = &self.data {
            pbwire::put_bytes(&mut out, 2, d);
        }
        if let Some(s) = self.filesize {
            pbwire::put_uint(&mut out, 3, s);
        }
        for &b in &self.blocksizes {
            pbwire::put_uint(&mut out, 4, b);
        }
        if let Some(h) = self.hash_type {
            pbwire::put_uint(&mut out, 5, h);
        }
        if let Some(f) = self.fanout {
            pbwire::put_uint(&mut out, 6, f);
        }
        out
    }

    /// Parse; unknown types and malformed fields are errors.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "UnixFS data";
        let mut kind = None;
        let mut d = Data::new(DataType::Raw);
        let mut fields = Fields::new(bytes, WHAT);
        loop {
            let at = fields.offset();
            let Some((field, value)) = fields.next_field()? else {
                break;
            };
            match (field, value) {
                (1, Value::Uint(t)) => {
                    kind = Some(DataType::from_u64(t).ok_or_else(|| {
                        CarError::malformed(WHAT, at, format!("unknown type {t}"))
                    })?)
                }
                (2, Value::Bytes(b)) => d.data = Some(b.to_vec()),
                (3, Value::Uint(s)) => d.filesize = Some(s),
                (4, Value::Uint(b)) => d.blocksizes.push(b),
                (4, Value::Bytes(packed)) => {
                    let mut pos = 0;
                    while pos < packed.len() {
                        let (v, n) = super::varint::get(&packed[pos..], WHAT, at)?;
                        d.blocksizes.push(v);
                        pos += n;
                    }
                }
                (5, Value::Uint(h)) => d.hash_type = Some(h),
                (6, Value::Uint(f)) => d.fanout = Some(f),
                (7, _) | (8, _) => {}
                (f, _) => {
                    return Err(CarError::malformed(
                        WHAT,
                        at,
                        format!("unexpected field {f}"),
                    ))
                }
            }
        }
        d.kind = kind.ok_or_else(|| CarError::malformed(WHAT, 0, "missing Type"))?;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_kubo_bytes_when_empty_directory() {
        assert_eq!(Data::new(DataType::Directory).encode(), vec![0x08, 0x01]);
    }

    #[test]
    fn decode_inverts_encode_when_file_has_blocksizes() {
        let mut d = Data::new(DataType::File);
        d.filesize = Some(1 << 30);
        d.blocksizes = vec![1 << 20, 5];
        assert_eq!(Data::decode(&d.encode()).unwrap(), d);
        assert!(Data::decode(&[0x08, 0x09]).is_err());
        assert!(Data::decode(&[0x12, 0x05, 0x00]).is_err());
    }
}
