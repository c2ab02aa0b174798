//! CAR files as a block source (`scheme = "car"`): one or more CARv1/CARv2
//! files, blocks in any order, root-less shards included.
//!
//! At mount every file is read once, front to back, and each block's place
//! (file, offset, length) goes into an index keyed by CID; no block bytes are
//! kept. Reads are positioned reads (`pread`) on a blocking thread. The store
//! verifies every block again when it is used, so a CAR changed on disk after
//! the mount gives EIO, never wrong bytes.

use super::source::{BlockSource, SourceError};
use crate::car::CarReader;
use async_trait::async_trait;
use bytes::Bytes;
use cid::Cid;
use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Read buffer while indexing: large sequential reads of the CAR.
const INDEX_READ_BUF: usize = 1 << 20;

/// Where one block lives.
#[derive(Debug, Clone, Copy)]
struct Place {
    file: usize,
    offset: u64,
    len: u32,
}

/// Indexed CAR files.
pub struct CarFiles {
    paths: Vec<PathBuf>,
    files: Vec<Arc<File>>,
    index: HashMap<Cid, Place>,
    roots: Vec<Cid>,
}

impl CarFiles {
    /// Indexes the CARs at `paths` (blocking: reads every file once).
    pub fn open(paths: &[PathBuf]) -> Result<Self, String> {
        let mut files = Vec::with_capacity(paths.len());
        let mut index = HashMap::new();
        let mut roots = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            let (file, found) =
                index_one(path, i, &mut index).map_err(|e| format!("{}: {e}", path.display()))?;
            for r in found {
                if !roots.contains(&r) {
                    roots.push(r);
                }
            }
            files.push(Arc::new(file));
        }
        Ok(Self {
            paths: paths.to_vec(),
            files,
            index,
            roots,
        })
    }

    /// The roots named in the headers, in file order, without repeats (a
    /// set's shards name none but the last, or none at all).
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// Number of distinct blocks indexed.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no block was found.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

fn index_one(path: &Path, i: usize, index: &mut HashMap<Cid, Place>) -> Result<(File, Vec<Cid>), String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let mut reader =
        CarReader::new(BufReader::with_capacity(INDEX_READ_BUF, f)).map_err(|e| e.to_string())?;
    let roots = reader.roots().to_vec();
    while let Some(b) = reader.next_block().map_err(|e| e.to_string())? {
        index.entry(b.cid).or_insert(Place {
            file: i,
            offset: b.data_offset,
            len: b.data.len() as u32,
        });
    }
    let file = File::open(path).map_err(|e| e.to_string())?;
    Ok((file, roots))
}

#[async_trait]
impl BlockSource for CarFiles {
    fn name(&self) -> String {
        let names: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        format!("car {}", names.join(","))
    }

    async fn get(&self, cid: &Cid) -> Result<Bytes, SourceError> {
        let Some(place) = self.index.get(cid).copied() else {
            return Err(SourceError::Missing("not in the CAR files".into()));
        };
        let file = self.files[place.file].clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; place.len as usize];
            file.read_exact_at(&mut buf, place.offset).map(|()| buf)
        })
        .await;
        match read {
            Ok(Ok(buf)) => Ok(Bytes::from(buf)),
            Ok(Err(e)) => Err(SourceError::Failed(format!(
                "{} at byte {}: {e}",
                self.paths[place.file].display(),
                place.offset
            ))),
            Err(e) => Err(SourceError::Failed(format!("read task: {e}"))),
        }
    }
}
