//! Crash recovery: staged files left by a crash (kill -9, power loss) or by an
//! upload that never succeeded are uploaded at the next start.
//!
//! The staging directory is scanned before the kernel mount exists
//! ([`Fs::scan_leftovers`]), so only files of an earlier run are taken; the
//! uploads run after the mount is ready ([`Fs::recover`]), in the
//! background, so a dead backend does not keep the mount from starting.
//!
//! Per leftover: one without a dirty marker is a clean copy and is deleted.
//! A dirty one is written only into a backend with the identity it was
//! staged for (whatever is mounted at its mount path now), and only over the
//! object version it was based on (`staging::Base`). If the object changed
//! since (written, replaced or deleted by someone else), or if a sealed
//! copy's bytes no longer match their seal (length and checksum recorded
//! when its upload failed), or an unsealed copy was written before the
//! machine restarted (a power loss may have torn it), the bytes go beside it as
//! `NAME.ipfs-kit-conflict-<UTC time>` instead, and a warning names both:
//! newer data is never overwritten and no byte is dropped. A leftover whose
//! mount or backend is missing, or whose upload fails, stays where it is and
//! is named in the log; it is tried again at the next start. A staged file
//! whose destination record is missing or unreadable cannot go anywhere: it
//! is named in the log at every start, kept, and counted as left staged.
//!
//! A file opened through the mount while its leftover is being recovered is
//! not coordinated with it: recovery checks the base just before its upload.

use super::staging::{boot_id as boot_id_now, seal_of, Marker, Target};
use super::Fs;
use crate::vfs::{Meta, Tree, VfsError};
use std::path::PathBuf;
use std::sync::Arc;

/// What recovery did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// `mount/path` of each file uploaded to its own name.
    pub uploaded: Vec<String>,
    /// (`mount/path`, conflict name, reason) of each file uploaded beside its name.
    pub conflicts: Vec<(String, String, String)>,
    /// Clean copies deleted.
    pub dropped: usize,
    /// (`mount/path`, staged data file, reason) of each file kept.
    pub kept: Vec<(String, PathBuf, String)>,
}

/// Staged files of an earlier run, found by [`Fs::scan_leftovers`].
#[derive(Debug, Default)]
pub struct Leftovers(Vec<(PathBuf, Target)>);

impl Leftovers {
    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where a leftover goes.
enum Dest {
    Own,
    /// (name written, reason).
    Conflict(String, String),
}

impl Fs {
    /// Lists the staged files of an earlier run. Call before the mount
    /// serves, so no live file's staged copy is taken for a leftover.
    /// Staged files whose destination record is unreadable are named in
    /// the log (error level) and kept (an empty one without a dirty marker
    /// holds nothing and is removed).
    pub fn scan_leftovers(&self) -> std::io::Result<Leftovers> {
        let found = self.staging.scan()?;
        for data in &found.orphans {
            let size = std::fs::metadata(data).map(|m| m.len()).unwrap_or(0);
            tracing::error!(
                staged = %data.display(),
                bytes = size,
                "staged data whose destination record (.json beside it) is missing or unreadable: \
                 not uploaded, kept for manual recovery"
            );
        }
        Ok(Leftovers(found.leftovers))
    }

    /// Uploads every dirty leftover of `found` (see the module doc).
    pub async fn recover(&self, found: Leftovers) -> Recovery {
        let mut report = Recovery::default();
        for (data, target) in found.0 {
            let name = format!("{}/{}", target.mount, target.path);
            let marker = self.staging.marker(&data);
            if marker == Marker::Clean {
                if self.staging.remove_leftover(&data).is_ok() {
                    report.dropped += 1;
                }
                continue;
            }
            match self.recover_one(&data, &target, marker).await {
                Ok(Dest::Own) => {
                    tracing::info!(file = %name, "recovered a staged write");
                    report.uploaded.push(name);
                }
                Ok(Dest::Conflict(to, why)) => {
                    report
                        .conflicts
                        .push((name, format!("{}/{to}", target.mount), why));
                }
                Err(why) => {
                    tracing::error!(file = %name, staged = %data.display(), reason = %why, "staged write not recovered; kept");
                    report.kept.push((name, data, why));
                    continue;
                }
            }
            if let Err(e) = self.staging.remove_leftover(&data) {
                tracing::warn!(staged = %data.display(), error = %e, "uploaded, but the staged copy could not be removed");
            }
        }
        report
    }

    async fn recover_one(
        &self,
        data: &std::path::Path,
        target: &Target,
        marker: Marker,
    ) -> Result<Dest, String> {
        let tree = self
            .router
            .list()
            .into_iter()
            .find(|(p, _)| *p == target.mount)
            .map(|(_, t)| t)
            .ok_or("its mount is not in the table")?;
        if let Some(id) = &target.backend {
            if *id != tree.identity() {
                return Err(format!(
                    "the backend mounted at {} now is not the one it was staged for ({id})",
                    target.mount
                ));
            }
        }
        let torn = match marker {
            Marker::Sealed(seal) => {
                let path = data.to_path_buf();
                let now = tokio::task::spawn_blocking(move || seal_of(&path))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("reading the staged copy: {e}"))?;
                (now != seal).then_some(
                    "its bytes do not match the length and checksum recorded when its upload failed",
                )
            }
            // Written, then the process was killed before a close: in the
            // same boot the page cache kept every byte.
            Marker::Dirty { boot_id } if boot_id.is_some() && boot_id.as_deref() == boot_id_now() => None,
            Marker::Dirty { .. } => {
                Some("it was written before a restart of the machine and never sealed (it may be torn)")
            }
            Marker::Clean => None,
        };
        let now = current(&tree, &target.path).await?;
        let why = if let Some(torn) = torn {
            Some(torn.to_string())
        } else if !target.base.matches(now.as_ref()) {
            Some(match now {
                None => "the file was deleted since it was staged".to_string(),
                Some(_) => "the file was changed since it was staged".to_string(),
            })
        } else {
            None
        };
        let dest = match &why {
            None => target.path.clone(),
            Some(_) => conflict_name(&target.path),
        };
        tree.upload(&dest, data).await.map_err(|e| e.to_string())?;
        Ok(match why {
            None => Dest::Own,
            Some(why) => {
                tracing::warn!(
                    file = %format!("{}/{}", target.mount, target.path),
                    kept_as = %format!("{}/{dest}", target.mount),
                    reason = %why,
                    "staged write recovered beside the file, not over it (conflict)"
                );
                Dest::Conflict(dest, why)
            }
        })
    }
}

/// The object at `path` now (None when absent).
async fn current(tree: &Arc<dyn Tree>, path: &str) -> Result<Option<Meta>, String> {
    match tree.stat(path).await {
        Ok(m) => Ok(Some(m)),
        Err(VfsError::NotFound) => Ok(None),
        Err(e) => Err(format!("cannot stat it: {e}")),
    }
}

/// `path.ipfs-kit-conflict-<UTC time>`, beside `path`.
pub fn conflict_name(path: &str) -> String {
    let now = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    format!("{path}.ipfs-kit-conflict-{now}")
}
