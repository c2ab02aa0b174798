//! The `ipfs.push` and `ipfs.pull` methods: the daemon runs the transfer
//! (`crate::ipfs::push`/`pull`) on a path under its own mount point, so any
//! mount of the table is a source or a target, and sends a progress
//! notification with the bytes done at most every [`PROGRESS_EVERY`] bytes:
//! packed or received, then for a push the CAR bytes sent to the node
//! (`stage: "uploading"`, `done`/`total` bytes, the last one at the end).

use super::protocol::{code, IpfsPull, IpfsPullReply, IpfsPush, IpfsPushReply, Progress, RpcError};
use super::state::ControlState;
use serde_json::Value;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Bytes between two progress notifications (a few per second at disk speed).
const PROGRESS_EVERY: u64 = 16 << 20;
/// How long a push or pull waits while the node sends nothing: an offline
/// node's export of blocks it lacks, or its import and pinning of a large
/// tree after the upload (a push's upload itself gets `push_deadline`).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(3600);

fn ipfs_error(msg: impl std::fmt::Display) -> RpcError {
    RpcError::new(code::IPFS, msg.to_string())
}

/// `mountpoint/vpath`, refusing anything but plain components.
fn under(mountpoint: &Path, vpath: &str) -> Result<PathBuf, RpcError> {
    let rel = Path::new(vpath.trim_start_matches('/'));
    if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(RpcError::new(
            code::INVALID_PARAMS,
            format!("{vpath:?} is not a path under the mount point"),
        ));
    }
    Ok(mountpoint.join(rel))
}

/// A progress callback that counts bytes and notifies every [`PROGRESS_EVERY`].
fn reporter(
    id: &Value,
    method: &'static str,
    tx: mpsc::UnboundedSender<Progress>,
) -> impl Fn(u64) + Send + Sync {
    let (id, done, last) = (
        id.clone(),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    move |n| {
        let total = done.fetch_add(n, Ordering::Relaxed) + n;
        if total - last.load(Ordering::Relaxed) >= PROGRESS_EVERY {
            last.store(total, Ordering::Relaxed);
            let _ = tx.send(Progress {
                id: id.clone(),
                method: method.into(),
                files_remaining: 0,
                bytes: Some(total),
                ..Default::default()
            });
        }
    }
}

/// An upload callback (`import_car`'s `sent`) that notifies `stage:
/// "uploading"` with the CAR bytes sent and the CAR's size, every
/// [`PROGRESS_EVERY`] bytes and at the end.
fn uploader(
    id: &Value,
    method: &'static str,
    tx: mpsc::UnboundedSender<Progress>,
) -> impl FnMut(u64, u64) + Send {
    let (id, mut last) = (id.clone(), 0u64);
    move |done, total| {
        if done - last >= PROGRESS_EVERY || done == total {
            last = done;
            let _ = tx.send(Progress {
                id: id.clone(),
                method: method.into(),
                stage: Some("uploading".into()),
                done: Some(done),
                total: Some(total),
                ..Default::default()
            });
        }
    }
}

impl ControlState {
    pub(super) async fn ipfs_push(
        &self,
        id: &Value,
        p: IpfsPush,
        progress: mpsc::UnboundedSender<Progress>,
    ) -> Result<Value, RpcError> {
        let path = under(&self.mountpoint, &p.path)?;
        if let Some(reply) = self.push_bucket(id, &p, &progress).await? {
            return Ok(reply);
        }
        let profile = match p.profile.as_deref() {
            None => crate::car::Profile::default(),
            Some(s) => s
                .parse()
                .map_err(|e| RpcError::new(code::INVALID_PARAMS, format!("profile {s:?}: {e}")))?,
        };
        let sent = uploader(id, "ipfs.push", progress.clone());
        let report = reporter(id, "ipfs.push", progress);
        let pushed = crate::ipfs::push(&p.api, &path, profile, p.hidden, TRANSFER_TIMEOUT, report, sent)
            .await
            .map_err(|e| ipfs_error(format!("push {}: {e}", p.path)))?;
        tracing::info!(path = %p.path, root = %pushed.root, "pushed to the node");
        serde_json::to_value(IpfsPushReply {
            root: pushed.root.to_string(),
            car_bytes: pushed.car_bytes,
            blocks: pushed.blocks,
        })
        .map_err(|e| RpcError::new(code::INTERNAL, e.to_string()))
    }

    /// Pushes the bucket mounted at `p.path`, if one is: its CAR is prepared
    /// as `bucket prepare-car` does (under `vfs/cars/<bucket>/`, recorded in
    /// the manifest) and imported, so the root pushed is the bucket's root
    /// CID. None when no bucket is mounted there.
    async fn push_bucket(
        &self,
        id: &Value,
        p: &IpfsPush,
        progress: &mpsc::UnboundedSender<Progress>,
    ) -> Result<Option<Value>, RpcError> {
        let Some(service) = &self.buckets else {
            return Ok(None);
        };
        let Ok(mount) = crate::config::normalize_mount_path(&p.path) else {
            return Ok(None);
        };
        let Some(bucket) = service.catalog.at_mount(&mount) else {
            return Ok(None);
        };
        // Files closed before the push are in the bucket's rows first.
        service.catalog.settled(&service.router).await;
        let name = bucket.def.name.clone();
        if let Some(asked) = p.profile.as_deref() {
            let asked: crate::car::Profile = asked
                .parse()
                .map_err(|e| RpcError::new(code::INVALID_PARAMS, format!("profile {asked:?}: {e}")))?;
            if asked != bucket.def.profile {
                return Err(RpcError::new(
                    code::INVALID_PARAMS,
                    format!("bucket {name} is pushed with its own profile, not {asked:?}"),
                ));
            }
        }
        let sent = uploader(id, "ipfs.push", progress.clone());
        let (id, tx) = (id.clone(), progress.clone());
        let report: crate::bucket::ProgressFn = Arc::new(move |stage: &str, done: u64, total: u64| {
            let _ = tx.send(Progress {
                id: id.clone(),
                method: "ipfs.push".into(),
                files_remaining: total.saturating_sub(done) as usize,
                stage: Some(stage.into()),
                done: Some(done),
                total: Some(total),
                ..Default::default()
            });
        });
        let fail = |e: &dyn std::fmt::Display| ipfs_error(format!("push bucket {name}: {e}"));
        let car = service
            .catalog
            .prepare_car(&service.router, &name, None, None, report)
            .await
            .map_err(|e| fail(&e))?;
        let root = cid::Cid::try_from(car.root.as_str()).map_err(|e| fail(&e))?;
        let file = car.cars.first().ok_or_else(|| fail(&"no CAR was written"))?;
        crate::ipfs::import_car(&p.api, Path::new(&file.path), &root, TRANSFER_TIMEOUT, sent)
            .await
            .map_err(|e| fail(&e))?;
        tracing::info!(bucket = %name, %root, "bucket pushed to the node");
        serde_json::to_value(IpfsPushReply {
            root: root.to_string(),
            car_bytes: file.size,
            blocks: car.blocks,
        })
        .map(Some)
        .map_err(|e| RpcError::new(code::INTERNAL, e.to_string()))
    }

    pub(super) async fn ipfs_pull(
        &self,
        id: &Value,
        p: IpfsPull,
        progress: mpsc::UnboundedSender<Progress>,
    ) -> Result<Value, RpcError> {
        let path = under(&self.mountpoint, &p.path)?;
        let cid = cid::Cid::try_from(p.cid.as_str())
            .map_err(|e| RpcError::new(code::INVALID_PARAMS, format!("bad CID {:?}: {e}", p.cid)))?;
        let report = reporter(id, "ipfs.pull", progress);
        let pulled = crate::ipfs::pull(&p.api, &cid, &path, TRANSFER_TIMEOUT, report)
            .await
            .map_err(|e| ipfs_error(format!("pull {cid}: {e}")))?;
        tracing::info!(%cid, path = %p.path, files = pulled.files, "pulled from the node");
        serde_json::to_value(IpfsPullReply {
            root: cid.to_string(),
            files: pulled.files,
            dirs: pulled.dirs,
            bytes: pulled.bytes,
        })
        .map_err(|e| RpcError::new(code::INTERNAL, e.to_string()))
    }
}
