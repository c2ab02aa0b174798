//! Unsigned LEB128 varints, as used by protobuf (dag-pb, UnixFS) and CAR
//! section framing. Decoding is bounded: at most 10 bytes, no overflow.

use super::error::{CarError, Result};
use std::io::Read;

/// Longest valid encoding of a u64 (7 payload bits per byte).
const MAX_LEN: usize = 10;

/// Append `v` as a varint to `out`.
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Number of bytes [`put`] writes for `v`.
pub fn len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Decode a varint at the start of `buf`: (value, bytes used).
/// `what`/`offset` name the place in errors.
pub fn get(buf: &[u8], what: &'static str, offset: u64) -> Result<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(MAX_LEN) {
        let part = u64::from(b & 0x7f);
        if i == MAX_LEN - 1 && b > 1 {
            return Err(CarError::malformed(
                what,
                offset,
                "varint overflows 64 bits",
            ));
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    if buf.len() < MAX_LEN {
        Err(CarError::malformed(what, offset, "truncated varint"))
    } else {
        Err(CarError::malformed(
            what,
            offset,
            "varint longer than 10 bytes",
        ))
    }
}

/// Read one varint from a stream. `Ok(None)` at a clean end of stream
/// (no byte read); an end inside the varint is an error.
pub fn read<R: Read>(r: &mut R, what: &'static str, offset: u64) -> Result<Option<(u64, usize)>> {
    let mut buf = [0u8; MAX_LEN];
    for i in 0..MAX_LEN {
        let mut b = [0u8; 1];
        let n = loop {
            match r.read(&mut b) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(CarError::malformed(what, offset, "truncated varint"));
        }
        buf[i] = b[0];
        if b[0] & 0x80 == 0 {
            return get(&buf[..=i], what, offset).map(Some);
        }
    }
    Err(CarError::malformed(
        what,
        offset,
        "varint longer than 10 bytes",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_when_values_span_byte_boundaries() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16383,
            16384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put(&mut b, v);
            assert_eq!(b.len(), len(v));
            assert_eq!(get(&b, "t", 0).unwrap(), (v, b.len()));
        }
    }

    #[test]
    fn errors_when_varint_truncated_or_overlong() {
        assert!(get(&[0x80], "t", 0).is_err());
        assert!(get(&[0xff; 11], "t", 0).is_err());
        assert!(get(
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            "t",
            0
        )
        .is_err());
    }
}
