//! What the control server serves from: the core, the live mount table, the
//! cache and metrics of one mount, and the stop switch; and the dispatch of
//! each typed [`Request`] to its typed reply.
//!
//! Invariants: every reply is built from snapshots (no lock is held while a
//! reply is written); a `shutdown` only flips the stop switch, the daemon
//! does the draining and unmounting.

use super::protocol::{
    code, BucketErrorInfo, CacheDropReply, CacheFigures, ChangeReply, FlushReply, MountsReply, Progress,
    Request, RpcError, ShutdownReply, StatsReply, StatusReply, TierStats, VersionReply, PROTOCOL_VERSION,
};
use super::table::{ChangeError, LiveTable};
use crate::cache::{BlockCache, CacheStats};
use crate::config::MountEntry;
use crate::fs::Fs;
use crate::metrics::{Metrics, BUCKETS_US};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// Why the daemon is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Signal,
    Control,
}

/// The stop switch: flipped once by a signal or `shutdown`, watched by the daemon.
#[derive(Debug, Clone)]
pub struct Stopper {
    tx: Arc<watch::Sender<Option<StopReason>>>,
}

impl Default for Stopper {
    fn default() -> Self {
        Self::new()
    }
}

impl Stopper {
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(None).0),
        }
    }

    /// Asks the daemon to stop (the first reason wins).
    pub fn request(&self, why: StopReason) {
        self.tx.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(why);
                true
            } else {
                false
            }
        });
    }

    /// The reason, once a stop was asked.
    pub fn reason(&self) -> Option<StopReason> {
        *self.tx.borrow()
    }

    /// Waits until a stop is asked.
    pub async fn wait(&self) -> StopReason {
        let mut rx = self.tx.subscribe();
        loop {
            if let Some(r) = *rx.borrow_and_update() {
                return r;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// The state shared by every control connection of one mount.
pub struct ControlState {
    pub fs: Arc<Fs>,
    pub table: Arc<LiveTable>,
    /// The block cache, when the mount has one.
    pub cache: Option<Arc<BlockCache>>,
    pub metrics: Arc<Metrics>,
    pub mountpoint: PathBuf,
    /// The uid allowed besides root: the mount's owner.
    pub owner_uid: u32,
    pub started: Instant,
    pub stopper: Stopper,
    /// The `bucket.*` methods (None: answered with an error).
    pub buckets: Option<Arc<crate::bucket::Service>>,
}

fn figures(s: CacheStats) -> CacheFigures {
    CacheFigures {
        memory: TierStats {
            hits: s.memory_hits,
            misses: s.memory_misses,
            evictions: s.memory_evictions,
            used_bytes: s.memory_used_bytes,
            writes_refused: 0,
        },
        disk: TierStats {
            hits: s.disk_hits,
            misses: s.disk_misses,
            evictions: s.disk_evictions,
            used_bytes: s.disk_used_bytes,
            writes_refused: s.disk_writes_refused,
        },
        backend_fetches: s.backend_fetches,
        backend_bytes: s.backend_bytes,
        backend_requests: s.backend_requests,
    }
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::new(code::INTERNAL, e.to_string()))
}

fn change_error(e: ChangeError) -> RpcError {
    let c = match e {
        ChangeError::Save { .. } => code::SAVE_FAILED,
        _ => code::TABLE,
    };
    RpcError::new(c, e.to_string())
}

impl ControlState {
    /// True when `uid` may use the socket.
    pub fn allowed(&self, uid: u32) -> bool {
        uid == 0 || uid == self.owner_uid
    }

    /// `status`.
    pub async fn status(&self) -> StatusReply {
        let (open_handles, inodes, _) = self.fs.counters().await;
        let pending = self.fs.pending().await;
        StatusReply {
            protocol: PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            mountpoint: self.mountpoint.display().to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            // From the router, not the table: a `backend remove` holds the
            // table while it uploads, and status must not wait for that.
            mounts: self.fs.router().list().len(),
            in_flight: self.metrics.in_flight(),
            open_handles,
            inodes,
            staged_files: pending.files,
            staged_bytes: pending.bytes,
            stopping: self.stopper.reason().is_some(),
            bucket_errors: self
                .buckets
                .as_ref()
                .map(|s| s.errors())
                .unwrap_or_default()
                .into_iter()
                .map(|(bucket, error)| BucketErrorInfo { bucket, error })
                .collect(),
        }
    }

    /// `stats` (also what the Prometheus endpoint shows).
    pub fn stats(&self) -> StatsReply {
        StatsReply {
            cache: self.cache.as_ref().map(|c| figures(c.stats())),
            backends: self.metrics.backends(),
            ops: self.metrics.ops(),
            latency_buckets_us: BUCKETS_US.to_vec(),
            in_flight: self.metrics.in_flight(),
        }
    }

    /// Serves one request; long ones send [`Progress`] on `progress`.
    pub async fn handle(
        &self,
        id: &Value,
        req: Request,
        progress: mpsc::UnboundedSender<Progress>,
    ) -> Result<Value, RpcError> {
        match req {
            Request::Version => to_value(VersionReply {
                protocol: PROTOCOL_VERSION,
                version: env!("CARGO_PKG_VERSION").into(),
            }),
            Request::Status => to_value(self.status().await),
            Request::Stats => to_value(self.stats()),
            Request::MountsList => to_value(MountsReply {
                mounts: self.table.list().await,
            }),
            Request::MountsAdd(a) => {
                let entry = MountEntry {
                    path: a.path,
                    scheme: a.scheme,
                    uri: a.uri,
                    read_only: a.read_only,
                    writes: None,
                    options: a.options,
                    bucket: None,
                    profile: None,
                };
                let (path, saved) = self.table.add(entry, a.save).await.map_err(change_error)?;
                to_value(ChangeReply {
                    path,
                    saved_to: saved.map(|p| p.display().to_string()),
                })
            }
            Request::MountsRemove(r) => {
                let (path, saved) = self.table.remove(&r.path, r.save).await.map_err(change_error)?;
                to_value(ChangeReply {
                    path,
                    saved_to: saved.map(|p| p.display().to_string()),
                })
            }
            Request::CacheDrop => {
                if let Some(c) = &self.cache {
                    c.drop_all();
                }
                to_value(CacheDropReply {
                    dropped: self.cache.is_some(),
                })
            }
            Request::Flush => self.flush(id, progress).await,
            Request::IpfsPush(p) => self.ipfs_push(id, p, progress).await,
            Request::IpfsPull(p) => self.ipfs_pull(id, p, progress).await,
            Request::Shutdown => {
                self.stopper.request(StopReason::Control);
                to_value(ShutdownReply { stopping: true })
            }
            Request::Bucket(m, p) => super::buckets::call(self.buckets.as_ref(), id, m, p, progress).await,
        }
    }

    async fn flush(&self, id: &Value, progress: mpsc::UnboundedSender<Progress>) -> Result<Value, RpcError> {
        let files = self.fs.pending().await.files;
        let id = id.clone();
        let failures = self
            .fs
            .drain(move |remaining| {
                let _ = progress.send(Progress {
                    id: id.clone(),
                    method: "flush".into(),
                    files_remaining: remaining,
                    ..Default::default()
                });
            })
            .await;
        if failures.is_empty() {
            return to_value(FlushReply { files });
        }
        let mut e = RpcError::new(
            code::UPLOAD_FAILED,
            format!(
                "{} file(s) could not be uploaded; their data stays staged",
                failures.len()
            ),
        );
        e.data = Some(Value::Array(
            failures.iter().map(|f| Value::String(f.to_string())).collect(),
        ));
        Err(e)
    }
}
