//! The `bucket.*` operations, one implementation for both callers: the
//! control socket of a running mount and the in-process CLI (no daemon).
//! Each takes [`BucketParams`] and answers a JSON value (documented in
//! docs/CONTROL.md); the mount table is reached through [`Mounts`], which
//! the daemon implements with its live table and the CLI with the config
//! file.

use super::catalog::{check_name, BucketDef, Catalog};
use super::error::{BucketError, Result};
use super::scan::ProgressFn;
use crate::car::Profile;
use crate::config::MountEntry;
use crate::control::protocol::{BucketMethod, BucketParams};
use crate::vfs::Router;
use async_trait::async_trait;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// Parent of the default bucket mount paths (`/buckets/NAME`).
pub const DEFAULT_PARENT: &str = "/buckets";

/// The mount table as bucket create/remove need it.
#[async_trait]
pub trait Mounts: Send + Sync {
    /// Places `entry` and saves the table; the config file written.
    async fn add(&self, entry: MountEntry) -> Result<Option<String>, String>;
    /// Removes the mount at `path` and saves the table; the config file written.
    async fn remove(&self, path: &str) -> Result<Option<String>, String>;
}

/// What the `bucket.*` methods work on.
pub struct Service {
    pub catalog: Arc<Catalog>,
    pub router: Arc<Router>,
    pub mounts: Arc<dyn Mounts>,
}

fn need(name: &Option<String>) -> Result<&str> {
    name.as_deref().ok_or_else(|| BucketError::Failed {
        bucket: String::new(),
        message: "this method needs a bucket name (`name`)".into(),
    })
}

fn val<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl Service {
    /// `(bucket, error)` of each bucket with an error now (for `status`).
    pub fn errors(&self) -> Vec<(String, String)> {
        self.catalog
            .all()
            .iter()
            .filter_map(|b| b.lock().error.clone().map(|e| (b.def.name.clone(), e)))
            .collect()
    }

    /// Runs one method, once every change queued before the call is in
    /// the journal (so a file closed before is listed).
    pub async fn call(&self, method: BucketMethod, p: BucketParams, progress: ProgressFn) -> Result<Value> {
        let cat = &self.catalog;
        cat.settled(&self.router).await;
        Ok(match method {
            BucketMethod::List => json!({ "buckets": cat.list()? }),
            BucketMethod::Create => self.create(p).await?,
            BucketMethod::Remove => {
                let name = need(&p.name)?;
                let b = cat.get(name)?;
                let saved =
                    self.mounts
                        .remove(&b.def.mount)
                        .await
                        .map_err(|message| BucketError::Failed {
                            bucket: name.into(),
                            message,
                        })?;
                cat.compact(&b)?;
                cat.remove(name);
                json!({ "name": name, "path": b.def.mount, "saved_to": saved })
            }
            BucketMethod::Index => val(cat.index(&self.router, need(&p.name)?, p.full, progress).await?),
            BucketMethod::Files => {
                let name = need(&p.name)?;
                let files = cat.files(name, p.prefix.as_deref().unwrap_or(""))?;
                json!({ "bucket": name, "files": files })
            }
            BucketMethod::FindCid => {
                let cid = p.cid.as_deref().ok_or_else(|| BucketError::Failed {
                    bucket: String::new(),
                    message: "find_cid needs `cid`".into(),
                })?;
                let found: Vec<Value> = cat
                    .find_cid(cid)
                    .into_iter()
                    .map(|(bucket, r)| json!({ "bucket": bucket, "path": r.path, "size": r.size }))
                    .collect();
                json!({ "cid": cid, "found": found })
            }
            BucketMethod::Snapshot => {
                let names: Vec<String> = if p.all {
                    Vec::new()
                } else {
                    p.name.iter().cloned().collect()
                };
                let c = cat.clone();
                let snap = tokio::task::spawn_blocking(move || c.snapshot(&names))
                    .await
                    .map_err(|e| BucketError::Failed {
                        bucket: String::new(),
                        message: format!("snapshot task: {e}"),
                    })??;
                val(snap)
            }
            BucketMethod::Snapshots => json!({ "snapshots": cat.snapshots(p.name.as_deref())? }),
            BucketMethod::PrepareCar => {
                let names: Vec<String> = if p.all {
                    cat.all().iter().map(|b| b.def.name.clone()).collect()
                } else {
                    vec![need(&p.name)?.to_string()]
                };
                let mut reports = Vec::new();
                for n in &names {
                    let out = p.out.as_ref().map(|o| {
                        let o = PathBuf::from(o);
                        if p.all {
                            o.join(n)
                        } else {
                            o
                        }
                    });
                    reports.push(
                        cat.prepare_car(&self.router, n, out, p.shard_size, progress.clone())
                            .await?,
                    );
                }
                if p.all {
                    json!({ "buckets": reports })
                } else {
                    val(reports.pop())
                }
            }
        })
    }

    async fn create(&self, p: BucketParams) -> Result<Value> {
        let name = need(&p.name)?.to_string();
        check_name(&name)?;
        if self.catalog.get(&name).is_ok() {
            return Err(BucketError::Exists(name));
        }
        let target = p.scheme.clone().ok_or_else(|| BucketError::Failed {
            bucket: name.clone(),
            message: "create needs a scheme or URI".into(),
        })?;
        let path = p
            .path
            .clone()
            .unwrap_or_else(|| format!("{DEFAULT_PARENT}/{name}"));
        let profile: Profile = match &p.profile {
            Some(s) => s.parse().map_err(|e: crate::car::CarError| BucketError::Failed {
                bucket: name.clone(),
                message: e.to_string(),
            })?,
            None => Profile::default(),
        };
        let (scheme, uri) = if target.contains("://") {
            (None, Some(target))
        } else {
            (Some(target), None)
        };
        let entry = MountEntry {
            path: path.clone(),
            scheme,
            uri,
            read_only: false,
            writes: None,
            options: p.options.clone(),
            bucket: Some(name.clone()),
            profile: p.profile.as_ref().map(|_| profile.name().to_string()),
        };
        let saved = self
            .mounts
            .add(entry.clone())
            .await
            .map_err(|message| BucketError::Failed {
                bucket: name.clone(),
                message,
            })?;
        self.catalog.add(BucketDef {
            name: name.clone(),
            mount: entry.normalized_path(),
            profile,
        });
        super::place_trees(&self.catalog, &self.router);
        Ok(json!({ "name": name, "path": entry.normalized_path(), "saved_to": saved }))
    }
}
