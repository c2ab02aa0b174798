//! The few pieces of the protobuf wire format that dag-pb and UnixFS need.
//!
//! Hand-written instead of `prost`/`quick-protobuf`: the two schemas are tiny,
//! and CIDs depend on exact bytes that generated code does not promise
//! (dag-pb writes Links (field 2) before Data (field 1), and file links carry
//! an empty but present Name). The reader walks fields without allocating and
//! rejects truncation, group wire types and lengths past the end.

use super::error::{CarError, Result};
use super::varint;

/// Wire type of varint fields.
pub const VARINT: u8 = 0;
/// Wire type of length-delimited fields (bytes, strings, messages, packed).
pub const LEN: u8 = 2;

/// Append a field key.
pub fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint::put(out, (u64::from(field) << 3) | u64::from(wire));
}

/// Append a varint field.
pub fn put_uint(out: &mut Vec<u8>, field: u32, v: u64) {
    put_key(out, field, VARINT);
    varint::put(out, v);
}

/// Append a length-delimited field.
pub fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, LEN);
    varint::put(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Encoded size of a length-delimited field with a one-byte key.
pub fn bytes_field_len(payload: usize) -> usize {
    1 + varint::len(payload as u64) + payload
}

/// One decoded field.
pub enum Value<'a> {
    /// A varint (wire type 0).
    Uint(u64),
    /// A length-delimited payload (wire type 2).
    Bytes(&'a [u8]),
    /// A fixed 32/64-bit value, kept only to be skipped.
    Fixed,
}

/// Iterator over the fields of one message.
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Fields<'a> {
    /// Walk the fields of `buf`; `what` names the message in errors.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Fields { buf, pos: 0, what }
    }

    /// Byte offset of the next field.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn err(&self, reason: &str) -> CarError {
        CarError::malformed(self.what, self.pos as u64, reason)
    }

    /// Next `(field number, value)`, or `None` at the end.
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let (key, n) = varint::get(&self.buf[self.pos..], self.what, self.pos as u64)?;
        let field = key >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(self.err("invalid field number"));
        }
        self.pos += n;
        let value = match (key & 7) as u8 {
            VARINT => {
                let (v, n) = varint::get(&self.buf[self.pos..], self.what, self.pos as u64)?;
                self.pos += n;
                Value::Uint(v)
            }
            LEN => {
                let (l, n) = varint::get(&self.buf[self.pos..], self.what, self.pos as u64)?;
                let start = self.pos + n;
                let end = usize::try_from(l)
                    .ok()
                    .and_then(|l| start.checked_add(l))
                    .filter(|&e| e <= self.buf.len())
                    .ok_or_else(|| self.err("length runs past the end"))?;
                self.pos = end;
                Value::Bytes(&self.buf[start..end])
            }
            1 | 5 => {
                let w = if key & 7 == 1 { 8 } else { 4 };
                if self.pos + w > self.buf.len() {
                    return Err(self.err("truncated fixed-width field"));
                }
                self.pos += w;
                Value::Fixed
            }
            _ => return Err(self.err("unsupported wire type")),
        };
        Ok(Some((field as u32, value)))
    }
}
