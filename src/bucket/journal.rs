//! The append-only journal beside a bucket's index
//! (`<bucket>_vfs.journal`): one JSON object per line, each with a
//! sequence number, so a close never rewrites the Parquet file. Compaction
//! folds the journal into the index (which records the last sequence number
//! it includes) and then removes it; entries at or below the index's number
//! are skipped on replay, so a crash between the two steps loses nothing and
//! applies nothing twice.
//!
//! A torn last line (a crash mid-append, no trailing newline) is ignored;
//! any other unreadable line makes the journal corrupt.

use super::error::{BucketError, Result};
use super::row::Row;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One change to a bucket's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Adds or replaces the row at its path.
    Put(Row),
    /// Removes the file at the path, or every file under it when it is a directory.
    Del(String),
    /// Moves the file at `from` (or everything under the directory `from`) to `to`.
    Mv { from: String, to: String },
}

/// A journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    #[serde(flatten)]
    pub op: Op,
}

/// The line for `entry`, newline-terminated.
pub fn encode(entry: &Entry) -> Vec<u8> {
    // A struct of strings and integers always serialises.
    let mut line = serde_json::to_vec(entry).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Parses a journal; `path` only names it in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => &bytes[..=i],
        None => &[][..],
    };
    if complete.len() < bytes.len() {
        tracing::warn!(journal = %path.display(), bytes = bytes.len() - complete.len(), "ignoring a torn last journal line");
    }
    for (i, line) in complete.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let e: Entry = serde_json::from_slice(line).map_err(|e| BucketError::Corrupt {
            what: "journal",
            path: path.to_path_buf(),
            message: format!("line {}: {e}", i + 1),
        })?;
        out.push(e);
    }
    Ok(out)
}

/// True when `path` is `dir` or lies under it.
fn within(dir: &str, path: &str) -> bool {
    path == dir || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

/// Applies one change to the rows.
pub fn apply(rows: &mut BTreeMap<String, Row>, op: &Op) {
    match op {
        Op::Put(r) => {
            rows.insert(r.path.clone(), r.clone());
        }
        Op::Del(p) => {
            let gone: Vec<String> = under(rows, p).collect();
            for k in gone {
                rows.remove(&k);
            }
        }
        Op::Mv { from, to } => {
            let moved: Vec<String> = under(rows, from).collect();
            for k in moved {
                if let Some(mut r) = rows.remove(&k) {
                    r.path = format!("{to}{}", &k[from.len()..]);
                    rows.insert(r.path.clone(), r);
                }
            }
        }
    }
}

/// Paths equal to `p` or under the directory `p`.
fn under<'a>(rows: &'a BTreeMap<String, Row>, p: &'a str) -> impl Iterator<Item = String> + 'a {
    rows.range(p.to_string()..)
        .map(|(k, _)| k)
        .take_while(move |k| k.starts_with(p))
        .filter(move |k| within(p, k))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(p: &str) -> Row {
        Row {
            path: p.into(),
            cid: format!("cid-{p}"),
            size: 1,
            dag_size: 1,
            mtime_ms: None,
            etag: None,
            indexed_ms: 0,
        }
    }

    #[test]
    fn replay_applies_puts_moves_and_deletes_of_directories() {
        let mut rows = BTreeMap::new();
        for p in ["a", "d/x", "d/y", "d2", "e"] {
            apply(&mut rows, &Op::Put(row(p)));
        }
        apply(
            &mut rows,
            &Op::Mv {
                from: "d".into(),
                to: "z/d".into(),
            },
        );
        apply(&mut rows, &Op::Del("e".into()));
        let keys: Vec<&str> = rows.keys().map(|s| s.as_str()).collect();
        assert_eq!(keys, vec!["a", "d2", "z/d/x", "z/d/y"]);
        assert_eq!(rows["z/d/x"].cid, "cid-d/x");
    }

    #[test]
    fn decode_skips_torn_last_line_and_refuses_garbage_lines() {
        let e = Entry {
            seq: 1,
            op: Op::Del("a".into()),
        };
        let mut bytes = encode(&e);
        bytes.extend_from_slice(b"{\"seq\":2,\"del\":");
        assert_eq!(decode(&bytes, Path::new("j")).unwrap(), vec![e.clone()]);
        let mut bad = b"nonsense\n".to_vec();
        bad.extend(encode(&e));
        let err = decode(&bad, Path::new("/j")).unwrap_err().to_string();
        assert!(err.contains("/j") && err.contains("line 1"), "{err}");
    }
}
