//! dag-pb (codec 0x70) nodes: exact encoding and strict, bounded decoding.
//!
//! Invariants of what we write (they decide CIDs): Links (field 2) come
//! before Data (field 1); every link has Hash, Name and Tsize, Name present
//! even when empty (file links); the caller gives links already in the
//! order the format wants (directories: sorted by name bytes).

use super::error::{CarError, Result};
use super::pbwire::{self, Fields, Value};
use cid::Cid;

/// A link in a dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbLink {
    /// Target block.
    pub cid: Cid,
    /// Entry name (empty for file chunks).
    pub name: String,
    /// Cumulative byte size of the target DAG.
    pub tsize: u64,
}

/// A decoded dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PbNode {
    /// Links in stored order.
    pub links: Vec<PbLink>,
    /// The Data field, if present.
    pub data: Option<Vec<u8>>,
}

/// Encode one link's fields (without the outer key/length).
fn encode_link(out: &mut Vec<u8>, link: &PbLink) {
    let cid = link.cid.to_bytes();
    pbwire::put_bytes(out, 1, &cid);
    pbwire::put_bytes(out, 2, link.name.as_bytes());
    pbwire::put_uint(out, 3, link.tsize);
}

/// Encode a node: links in the given order, then data.
pub fn encode(links: &[PbLink], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(links.len() * 48 + data.len() + 8);
    let mut tmp = Vec::with_capacity(128);
    for link in links {
        tmp.clear();
        encode_link(&mut tmp, link);
        pbwire::put_bytes(&mut out, 2, &tmp);
    }
    pbwire::put_bytes(&mut out, 1, data);
    out
}

/// Exact encoded size of a node with these links and `data_len` bytes of data.
pub fn encoded_len(links: &[PbLink], data_len: usize) -> usize {
    let mut n = pbwire::bytes_field_len(data_len);
    for link in links {
        let inner = pbwire::bytes_field_len(link.cid.encoded_len())
            + pbwire::bytes_field_len(link.name.len())
            + 1
            + super::varint::len(link.tsize);
        n += pbwire::bytes_field_len(inner);
    }
    n
}

/// Decode a dag-pb node. Rejects unknown fields, links after data, bad CIDs.
pub fn decode(bytes: &[u8]) -> Result<PbNode> {
    const WHAT: &str = "dag-pb node";
    let mut node = PbNode::default();
    let mut fields = Fields::new(bytes, WHAT);
    loop {
        let at = fields.offset();
        let Some((field, value)) = fields.next_field()? else {
            break;
        };
        match (field, value) {
            (1, Value::Bytes(d)) if node.data.is_none() => node.data = Some(d.to_vec()),
            (2, Value::Bytes(l)) if node.data.is_none() => node.links.push(decode_link(l, at)?),
            _ => {
                return Err(CarError::malformed(
                    WHAT,
                    at,
                    format!("unexpected field {field}"),
                ))
            }
        }
    }
    Ok(node)
}

fn decode_link(bytes: &[u8], at: u64) -> Result<PbLink> {
    const WHAT: &str = "dag-pb link";
    let mut cid = None;
    let mut name = String::new();
    let mut tsize = 0;
    let mut fields = Fields::new(bytes, WHAT);
    while let Some((field, value)) = fields.next_field()? {
        match (field, value) {
            (1, Value::Bytes(h)) => {
                cid = Some(
                    Cid::try_from(h)
                        .map_err(|e| CarError::malformed(WHAT, at, format!("bad CID: {e}")))?,
                )
            }
            (2, Value::Bytes(n)) => {
                name = String::from_utf8(n.to_vec())
                    .map_err(|_| CarError::malformed(WHAT, at, "name is not UTF-8"))?
            }
            (3, Value::Uint(t)) => tsize = t,
            _ => {
                return Err(CarError::malformed(
                    WHAT,
                    at,
                    format!("unexpected field {field}"),
                ))
            }
        }
    }
    let cid = cid.ok_or_else(|| CarError::malformed(WHAT, at, "link without Hash"))?;
    Ok(PbLink { cid, name, tsize })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_inverts_encode_when_node_has_links_and_data() {
        let cid: Cid = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
            .parse()
            .unwrap();
        let links = vec![
            PbLink {
                cid,
                name: String::new(),
                tsize: 4,
            },
            PbLink {
                cid,
                name: "é".into(),
                tsize: 300,
            },
        ];
        let bytes = encode(&links, &[8, 1]);
        assert_eq!(bytes.len(), encoded_len(&links, 2));
        let node = decode(&bytes).unwrap();
        assert_eq!(node.links, links);
        assert_eq!(node.data.as_deref(), Some(&[8u8, 1][..]));
    }

    #[test]
    fn decode_errors_when_bytes_truncated_or_garbage() {
        let cid: Cid = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
            .parse()
            .unwrap();
        let bytes = encode(
            &[PbLink {
                cid,
                name: "a".into(),
                tsize: 1,
            }],
            &[8, 1],
        );
        for cut in 0..bytes.len() {
            let _ = decode(&bytes[..cut]); // must not panic
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&[0xff, 0xff, 0xff]).is_err());
    }
}
