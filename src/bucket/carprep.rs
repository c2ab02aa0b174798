//! `bucket prepare-car`: the bucket's whole DAG as CARv1, root last (the
//! order ipfs-car writes), under `vfs/cars/<bucket>/` by default; with a
//! shard size, Storacha shards plus the `index/sharded/dag@0.1` CAR.
//!
//! Every file is read from the bucket's backend and its root compared with
//! the row's CID; a mismatch (the file changed outside the mount) re-indexes
//! that file (the CAR holds the bytes read) and is reported. The manifest
//! then records the CARs and marks the bucket `car_ready` while its root
//! stays the CAR's root.

use super::catalog::Catalog;
use super::dag;
use super::error::{BucketError, Result};
use super::hash::add_from_tree;
use super::journal::Op;
use super::manifest::CarFile;
use super::row::{now_ms, Row};
use super::scan::{tree_at, ProgressFn};
use crate::car::{patch_header, placeholder_root, Built, CarWriter, ShardWriter, CAR_CODEC};
use crate::vfs::Router;
use serde::{Deserialize, Serialize};
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Output buffer of a CAR file: one 1 MiB chunk per write.
const OUT_BUF: usize = 1 << 20;

/// What `prepare-car` wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CarReport {
    pub bucket: String,
    pub root: String,
    pub cars: Vec<CarFile>,
    /// CID of the Storacha index CAR when sharded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<CarFile>,
    pub blocks: u64,
    pub files: u64,
    /// Files whose bytes no longer matched their row (re-indexed).
    pub reindexed: Vec<String>,
    /// Commands that would publish the CARs.
    pub commands: Vec<String>,
}

fn car_cid(path: &Path) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(path).map_err(BucketError::io(path))?;
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    let mut buf = vec![0u8; OUT_BUF];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(BucketError::io(path))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        sha2::Digest::update(&mut h, &buf[..n]);
    }
    let digest: [u8; 32] = sha2::Digest::finalize(h).into();
    let mh = multihash::Multihash::<64>::wrap(0x12, &digest).unwrap_or_default();
    Ok((cid::Cid::new_v1(CAR_CODEC, mh).to_string(), size))
}

impl Catalog {
    /// Writes the CAR(s) of bucket `name`; see the module doc.
    pub async fn prepare_car(
        self: &Arc<Self>,
        router: &Router,
        name: &str,
        out: Option<PathBuf>,
        shard_size: Option<u64>,
        progress: ProgressFn,
    ) -> Result<CarReport> {
        let b = self.get(name)?;
        let tree = tree_at(router, &b.def.mount)?;
        let dir = match out {
            Some(d) => d,
            None => self
                .store
                .local_path(&format!("cars/{name}"))
                .ok_or_else(|| BucketError::Failed {
                    bucket: name.into(),
                    message: "no local directory for CARs; give --out".into(),
                })?,
        };
        std::fs::create_dir_all(&dir).map_err(BucketError::io(&dir))?;
        let rows: Vec<Row> = b.lock().rows.values().cloned().collect();
        let profile = b.def.profile;
        let rt = tokio::runtime::Handle::current();
        let bucket = name.to_string();
        let reindex: Arc<Mutex<Vec<Row>>> = Arc::default();
        let found = reindex.clone();
        let work = move || -> Result<CarReport> {
            let refs: Vec<&Row> = rows.iter().collect();
            let total = rows.len() as u64;
            let mut done = 0u64;
            let mut file = |row: &Row, sink: &mut dyn crate::car::BlockSink| -> Result<Built> {
                let built = add_from_tree(&rt, &tree, &row.path, profile, sink)?;
                if built.cid.to_string() != row.cid {
                    tracing::warn!(bucket = %bucket, path = %row.path, indexed = %row.cid, now = %built.cid, "file changed outside the mount; re-indexed");
                    found.lock().unwrap_or_else(|e| e.into_inner()).push(Row {
                        cid: built.cid.to_string(),
                        size: built.size,
                        dag_size: built.dag_size,
                        indexed_ms: now_ms(),
                        mtime_ms: None,
                        etag: None,
                        ..row.clone()
                    });
                }
                done += 1;
                progress("packing", done, total);
                Ok(built)
            };
            let mut report = CarReport {
                bucket: bucket.clone(),
                files: total,
                ..Default::default()
            };
            match shard_size {
                None => {
                    let tmp = dir.join(".bucket.car.tmp");
                    let f = std::fs::File::create(&tmp).map_err(BucketError::io(&tmp))?;
                    let ph = placeholder_root(profile.root_cid_len());
                    let mut car = CarWriter::new(BufWriter::with_capacity(OUT_BUF, f), &[ph], false)?;
                    let built = dag::build(&refs, profile, &mut car, &mut file)?;
                    report.blocks = car.blocks();
                    let mut f = car
                        .into_inner()?
                        .into_inner()
                        .map_err(|e| BucketError::io(&tmp)(e.into_error()))?;
                    patch_header(&mut f, &[ph], &[built.cid])?;
                    f.sync_all().map_err(BucketError::io(&tmp))?;
                    let path = dir.join(format!("{}.car", built.cid));
                    std::fs::rename(&tmp, &path).map_err(BucketError::io(&path))?;
                    let (cid, size) = car_cid(&path)?;
                    report.root = built.cid.to_string();
                    report.commands = vec![
                        format!("ipfs dag import {}", path.display()),
                        format!("storacha up --car {}", path.display()),
                    ];
                    report.cars.push(CarFile {
                        path: path.display().to_string(),
                        size,
                        cid,
                    });
                }
                Some(n) => {
                    let mut w = ShardWriter::create(&dir, n)?;
                    let built = dag::build(&refs, profile, &mut w, &mut file)?;
                    let sharded = w.finish(&built.cid)?;
                    report.root = built.cid.to_string();
                    for s in &sharded.shards {
                        report.blocks += s.blocks as u64;
                        report
                            .commands
                            .push(format!("storacha up --car {}", s.path.display()));
                        report.cars.push(CarFile {
                            path: s.path.display().to_string(),
                            size: s.size,
                            cid: s.cid.to_string(),
                        });
                    }
                    let isize = std::fs::metadata(&sharded.index_path)
                        .map(|m| m.len())
                        .unwrap_or(0);
                    report.index = Some(CarFile {
                        path: sharded.index_path.display().to_string(),
                        size: isize,
                        cid: sharded.index.to_string(),
                    });
                    for s in &sharded.shards {
                        report
                            .commands
                            .push(format!("ipfs dag import {}", s.path.display()));
                    }
                }
            }
            Ok(report)
        };
        let mut report = tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| BucketError::Failed {
                bucket: name.into(),
                message: format!("CAR task: {e}"),
            })??;
        let changed = std::mem::take(&mut *reindex.lock().unwrap_or_else(|e| e.into_inner()));
        for row in changed {
            report.reindexed.push(row.path.clone());
            self.record(&b, Op::Put(row))?;
        }
        self.compact(&b)?;
        let mut m = self.manifest()?;
        if let Some(e) = m.buckets.get_mut(name) {
            if e.root_cid == report.root {
                e.cars = report.cars.clone();
                e.car_root = Some(report.root.clone());
                e.car_ready = true;
            }
        }
        m.global_hash = super::manifest::global_hash(&m.buckets)?.cid.to_string();
        self.write_manifest(&m)?;
        Ok(report)
    }
}
