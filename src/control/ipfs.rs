//! The `ipfs.push` and `ipfs.pull` methods: the daemon runs the transfer
//! (`crate::ipfs::push`/`pull`) on a path under its own mount point, so any
//! mount of the table is a source or a target, and sends a progress
//! notification with the bytes done at most every [`PROGRESS_EVERY`] bytes.

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
/// How long one import or export request may take: a large tree on a slow node.
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

impl ControlState {
    pub(super) async fn ipfs_push(
        &self,
        id: &Value,
        p: IpfsPush,
        progress: mpsc::UnboundedSender<Progress>,
    ) -> Result<Value, RpcError> {
        let path = under(&self.mountpoint, &p.path)?;
        let profile = match p.profile.as_deref() {
            None => crate::car::Profile::default(),
            Some(s) => s
                .parse()
                .map_err(|e| RpcError::new(code::INVALID_PARAMS, format!("profile {s:?}: {e}")))?,
        };
        let report = reporter(id, "ipfs.push", progress);
        let pushed = crate::ipfs::push(&p.api, &path, profile, p.hidden, TRANSFER_TIMEOUT, report)
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
