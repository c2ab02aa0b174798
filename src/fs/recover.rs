//! Crash recovery: staged files left by a crash (kill -9, power loss) or by an
//! upload that never succeeded are uploaded to their targets at the next
//! start, before the mount is reported ready.
//!
//! Invariants: it runs before the kernel mount exists, so no live file state
//! shares the staging directory; a leftover is deleted only after its upload
//! succeeded, or when it carries no dirty marker (a clean copy: nothing to
//! lose); one whose mount is gone or whose upload fails stays where it is and
//! is named in the log.

use super::Fs;
use std::path::PathBuf;

/// What recovery did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// `mount/path` of each file uploaded.
    pub uploaded: Vec<String>,
    /// Clean copies deleted.
    pub dropped: usize,
    /// (`mount/path`, staged data file, reason) of each file kept.
    pub kept: Vec<(String, PathBuf, String)>,
}

impl Fs {
    /// Uploads every dirty leftover in the staging directory. Call before serving.
    pub async fn recover_leftovers(&self) -> std::io::Result<Recovery> {
        let staging = self.staging.clone();
        let leftovers = tokio::task::spawn_blocking(move || staging.leftovers())
            .await
            .map_err(std::io::Error::other)??;
        let mut report = Recovery::default();
        let mounts = self.router.list();
        for (data, target) in leftovers {
            let name = format!("{}/{}", target.mount, target.path);
            if !self.staging.leftover_is_dirty(&data) {
                if self.staging.remove_leftover(&data).is_ok() {
                    report.dropped += 1;
                }
                continue;
            }
            let Some((_, tree)) = mounts.iter().find(|(p, _)| *p == target.mount) else {
                report
                    .kept
                    .push((name, data, "its mount is not in the table".into()));
                continue;
            };
            match tree.upload(&target.path, &data).await {
                Ok(bytes) => {
                    tracing::info!(file = %name, bytes, "recovered a staged write");
                    if let Err(e) = self.staging.remove_leftover(&data) {
                        tracing::warn!(file = %name, error = %e, "uploaded, but the staged copy could not be removed");
                    }
                    report.uploaded.push(name);
                }
                Err(e) => report.kept.push((name, data, e.to_string())),
            }
        }
        for (name, data, why) in &report.kept {
            tracing::error!(file = %name, staged = %data.display(), reason = %why, "staged write not recovered; kept");
        }
        Ok(report)
    }
}
