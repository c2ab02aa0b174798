//! The daemon's side of the `bucket.*` methods: the live mount table as the
//! bucket service's [`Mounts`] (create/remove take effect at once and are
//! saved to the config file), and the dispatch of one call with its
//! progress notifications.

use super::protocol::{code, BucketMethod, BucketParams, Progress, RpcError};
use super::table::LiveTable;
use crate::bucket::{Mounts, ProgressFn, Service};
use crate::config::MountEntry;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Code of a failed `bucket.*` call (unknown bucket, corrupt file, backend error).
pub const BUCKET_FAILED: i64 = code::BUCKET;

/// The live table, saving every change.
pub struct TableMounts(pub Arc<LiveTable>);

#[async_trait]
impl Mounts for TableMounts {
    async fn add(&self, entry: MountEntry) -> Result<Option<String>, String> {
        let (_, saved) = self.0.add(entry, true).await.map_err(|e| e.to_string())?;
        Ok(saved.map(|p| p.display().to_string()))
    }

    async fn remove(&self, path: &str) -> Result<Option<String>, String> {
        let (_, saved) = self.0.remove(path, true).await.map_err(|e| e.to_string())?;
        Ok(saved.map(|p| p.display().to_string()))
    }
}

/// Serves one `bucket.*` request, sending progress for the long ones.
pub async fn call(
    service: Option<&Arc<Service>>,
    id: &Value,
    method: BucketMethod,
    params: BucketParams,
    progress: mpsc::UnboundedSender<Progress>,
) -> Result<Value, RpcError> {
    let service = service.ok_or_else(|| RpcError::new(BUCKET_FAILED, "this mount has no bucket service"))?;
    let (id, name) = (id.clone(), method.name());
    let report: ProgressFn = Arc::new(move |stage: &str, done: u64, total: u64| {
        let _ = progress.send(Progress {
            id: id.clone(),
            method: name.into(),
            files_remaining: total.saturating_sub(done) as usize,
            stage: Some(stage.into()),
            done: Some(done),
            total: Some(total),
            ..Default::default()
        });
    });
    service
        .call(method, params, report)
        .await
        .map_err(|e| RpcError::new(BUCKET_FAILED, e.to_string()))
}
