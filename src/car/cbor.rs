//! The small subset of DAG-CBOR that CAR headers and Storacha indexes use:
//! unsigned ints, byte and text strings, arrays, string-keyed maps and CID
//! links (tag 42). Encoding is canonical (map keys sorted by length, then
//! bytes; shortest integer forms). Decoding is bounded: nesting depth and
//! every length are checked against the input before anything is allocated.

use super::error::{CarError, Result};
use cid::Cid;

/// Deepest nesting accepted on decode (headers and indexes need 4).
const MAX_DEPTH: usize = 16;
/// The CBOR tag for IPLD links.
const TAG_CID: u64 = 42;

/// A DAG-CBOR value of the supported subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Major type 0.
    Uint(u64),
    /// Major type 2.
    Bytes(Vec<u8>),
    /// Major type 3.
    Text(String),
    /// Major type 4.
    Array(Vec<Value>),
    /// Major type 5 with text keys.
    Map(Vec<(String, Value)>),
    /// Tag 42 over bytes `0x00 ++ cid`.
    Link(Cid),
    /// `true`/`false`/`null` and other simple values, kept only to be rejected later.
    Simple(u8),
}

fn put_head(out: &mut Vec<u8>, major: u8, v: u64) {
    let m = major << 5;
    if v < 24 {
        out.push(m | v as u8);
    } else if v <= 0xff {
        out.extend_from_slice(&[m | 24, v as u8]);
    } else if v <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Encode canonically.
pub fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Uint(n) => put_head(out, 0, *n),
        Value::Bytes(b) => {
            put_head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Text(s) => {
            put_head(out, 3, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            put_head(out, 4, items.len() as u64);
            for i in items {
                encode(i, out);
            }
        }
        Value::Map(entries) => {
            let mut sorted: Vec<&(String, Value)> = entries.iter().collect();
            sorted.sort_by(|a, b| {
                a.0.len()
                    .cmp(&b.0.len())
                    .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
            });
            put_head(out, 5, sorted.len() as u64);
            for (k, v) in sorted {
                put_head(out, 3, k.len() as u64);
                out.extend_from_slice(k.as_bytes());
                encode(v, out);
            }
        }
        Value::Link(cid) => {
            put_head(out, 6, TAG_CID);
            let bytes = cid.to_bytes();
            put_head(out, 2, bytes.len() as u64 + 1);
            out.push(0);
            out.extend_from_slice(&bytes);
        }
        Value::Simple(s) => put_head(out, 7, u64::from(*s)),
    }
}

/// Encode to a new buffer.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(v, &mut out);
    out
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
    base: u64,
}

impl Decoder<'_> {
    fn err(&self, reason: impl Into<String>) -> CarError {
        CarError::malformed(self.what, self.base + self.pos as u64, reason)
    }

    fn take(&mut self, n: u64) -> Result<&[u8]> {
        let n = usize::try_from(n).map_err(|_| self.err("length too large"))?;
        if self.buf.len() - self.pos < n {
            return Err(self.err("truncated"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn head(&mut self) -> Result<(u8, u64)> {
        let b = self.take(1)?[0];
        let (major, info) = (b >> 5, b & 0x1f);
        let v = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(
                self.take(2)?.try_into().unwrap_or_default(),
            )),
            26 => u64::from(u32::from_be_bytes(
                self.take(4)?.try_into().unwrap_or_default(),
            )),
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap_or_default()),
            _ => return Err(self.err("indefinite lengths are not DAG-CBOR")),
        };
        Ok((major, v))
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deep"));
        }
        let (major, v) = self.head()?;
        Ok(match major {
            0 => Value::Uint(v),
            2 => Value::Bytes(self.take(v)?.to_vec()),
            3 => Value::Text(
                String::from_utf8(self.take(v)?.to_vec())
                    .map_err(|_| self.err("text is not UTF-8"))?,
            ),
            4 => {
                // Each item takes at least one byte: bound the count by what is left.
                if v > (self.buf.len() - self.pos) as u64 {
                    return Err(self.err("array longer than input"));
                }
                let mut items = Vec::with_capacity(v as usize);
                for _ in 0..v {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            5 => {
                if v > (self.buf.len() - self.pos) as u64 / 2 {
                    return Err(self.err("map longer than input"));
                }
                let mut entries = Vec::with_capacity(v as usize);
                for _ in 0..v {
                    let Value::Text(k) = self.value(depth + 1)? else {
                        return Err(self.err("map key is not text"));
                    };
                    entries.push((k, self.value(depth + 1)?));
                }
                Value::Map(entries)
            }
            6 if v == TAG_CID => {
                let Value::Bytes(b) = self.value(depth + 1)? else {
                    return Err(self.err("tag 42 without bytes"));
                };
                if b.first() != Some(&0) {
                    return Err(self.err("CID link without 0x00 prefix"));
                }
                Value::Link(Cid::try_from(&b[1..]).map_err(|e| self.err(format!("bad CID: {e}")))?)
            }
            7 if v < 24 => Value::Simple(v as u8),
            _ => return Err(self.err(format!("unsupported CBOR item (major {major})"))),
        })
    }
}

/// Decode one value that must fill `buf`; `base` is its offset for errors.
pub fn decode(buf: &[u8], what: &'static str, base: u64) -> Result<Value> {
    let mut d = Decoder {
        buf,
        pos: 0,
        what,
        base,
    };
    let v = d.value(0)?;
    if d.pos != buf.len() {
        return Err(d.err("trailing bytes"));
    }
    Ok(v)
}

impl Value {
    /// Look up a key of a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_inverts_encode_when_map_has_links() {
        let cid: Cid = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
            .parse()
            .unwrap();
        let v = Value::Map(vec![
            ("version".into(), Value::Uint(1)),
            ("roots".into(), Value::Array(vec![Value::Link(cid)])),
        ]);
        let bytes = to_vec(&v);
        assert_eq!(&bytes[..7], &[0xa2, 0x65, b'r', b'o', b'o', b't', b's']);
        let back = decode(&bytes, "t", 0).unwrap();
        assert_eq!(back.get("roots"), v.get("roots"));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], "t", 0).is_err());
        }
        assert!(decode(
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            "t",
            0
        )
        .is_err());
    }
}
