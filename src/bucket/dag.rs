//! A bucket's UnixFS directory DAG built from its rows alone: the root CID
//! and every directory's CID (no file is read: each row carries its file's
//! CID and DAG size), and the same walk with file blocks for CAR preparation.
//!
//! Rows must be sorted by path; the paths under one directory are then
//! contiguous, so each directory is built from a slice and emitted right
//! after its last child (ipfs-car's root-last order). Empty directories are
//! not part of a bucket (only files are indexed).

use super::error::{BucketError, Result};
use super::row::Row;
use crate::car::{BlockSink, Built, DirBuilder, Discard, Profile};
use cid::Cid;
use std::collections::HashMap;

/// Emits a file's blocks (or only names them) for a row.
pub type FileFn<'a> = dyn FnMut(&Row, &mut dyn BlockSink) -> Result<Built> + 'a;

/// The file as the row records it, emitting nothing (root CID only).
pub fn from_row(row: &Row, _sink: &mut dyn BlockSink) -> Result<Built> {
    let cid: Cid = row.cid.parse().map_err(|e| BucketError::Failed {
        bucket: String::new(),
        message: format!("row {:?} has a bad CID {:?}: {e}", row.path, row.cid),
    })?;
    Ok(Built {
        cid,
        size: row.size,
        dag_size: row.dag_size,
    })
}

/// Builds the directory DAG over `rows` (sorted by path), emitting
/// directory blocks into `sink` and each file through `file`.
pub fn build(rows: &[&Row], profile: Profile, sink: &mut dyn BlockSink, file: &mut FileFn) -> Result<Built> {
    build_dir(rows, 0, profile, sink, file, &mut |_, _| {})
}

/// Every directory over `rows` (sorted by path) by its path (`""`: the
/// root, `"a/b"`: a directory under it), from the rows alone.
pub fn dirs(rows: &[&Row], profile: Profile) -> Result<HashMap<String, Built>> {
    let mut out = HashMap::new();
    build_dir(rows, 0, profile, &mut Discard, &mut from_row, &mut |path, b| {
        out.insert(path.to_string(), b);
    })?;
    Ok(out)
}

/// Builds the directory whose entries are `rows` (their paths past
/// `prefix` bytes), telling `on_dir` of it and of each directory under it.
fn build_dir(
    rows: &[&Row],
    prefix: usize,
    profile: Profile,
    sink: &mut dyn BlockSink,
    file: &mut FileFn,
    on_dir: &mut dyn FnMut(&str, Built),
) -> Result<Built> {
    let mut dir = DirBuilder::new(profile);
    let mut i = 0;
    while i < rows.len() {
        let rest = &rows[i].path[prefix..];
        match rest.find('/') {
            None => {
                let b = file(rows[i], sink)?;
                dir.add(rest, b.cid, b.dag_size)?;
                i += 1;
            }
            Some(j) => {
                let name = &rest[..j];
                let cut = prefix + j;
                let end = i + rows[i..]
                    .iter()
                    .take_while(|r| {
                        r.path.len() > cut && r.path.as_bytes()[cut] == b'/' && &r.path[prefix..cut] == name
                    })
                    .count();
                let b = build_dir(&rows[i..end], cut + 1, profile, sink, file, on_dir)?;
                dir.add(name, b.cid, b.dag_size)?;
                i = end;
            }
        }
    }
    let built = dir.finish(sink)?;
    // The directory's own path: its entries' common prefix without the '/'.
    let path = match rows.first() {
        Some(r) if prefix > 0 => &r.path[..prefix - 1],
        _ => "",
    };
    on_dir(path, built);
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::car::{cid_of_path, Discard, FileBuilder};

    #[test]
    fn root_from_rows_equals_cid_of_the_same_tree_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("a.txt", "alpha"),
            ("d/b.txt", "beta"),
            ("d/e/c", ""),
            ("a0", "zz"),
            ("d.x", "q"),
        ];
        let mut rows = Vec::new();
        for (p, body) in files {
            let full = dir.path().join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, body).unwrap();
            {
                let profile = Profile::UnixfsV1_2025;
                let mut sink = Discard;
                let mut fb = FileBuilder::with_threads(profile, &mut sink, 1);
                fb.write(body.as_bytes()).unwrap();
                let b = fb.finish().unwrap();
                rows.push(Row {
                    path: p.into(),
                    cid: b.cid.to_string(),
                    size: b.size,
                    dag_size: b.dag_size,
                    mtime_ms: None,
                    etag: None,
                    indexed_ms: 0,
                });
            }
        }
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        let refs: Vec<&Row> = rows.iter().collect();
        {
            let profile = Profile::UnixfsV1_2025;
            let built = build(&refs, profile, &mut Discard, &mut from_row).unwrap();
            let want = cid_of_path(profile, dir.path(), true).unwrap();
            assert_eq!(built.cid, want);
            let all = dirs(&refs, profile).unwrap();
            assert_eq!(all[""].cid, want);
            let mut names: Vec<&str> = all.keys().map(String::as_str).collect();
            names.sort();
            assert_eq!(names, vec!["", "d", "d/e"]);
            for d in ["d", "d/e"] {
                assert_eq!(
                    all[d].cid,
                    cid_of_path(profile, &dir.path().join(d), true).unwrap(),
                    "{d}"
                );
            }
        }
    }
}
