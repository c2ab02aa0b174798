//! Draining staged writes: what is waiting to upload (for `status`), uploading
//! it all with progress (for `flush`, SIGTERM and unmount), and naming what is
//! left when a drain gives up.
//!
//! Invariant: a drain never discards data; a file whose upload fails keeps its
//! staged copy and stays dirty, to be retried by a later drain or by crash
//! recovery at the next start. Reports never wait long on a busy file: an
//! upload holds its file's lock for the whole backend call, so a file whose
//! lock is not free within [`REPORT_WAIT`] is reported as pending and busy.

use super::{Fs, FsError};
use std::time::Duration;

/// How long a report (`status`, the count of what a stop leaves) waits in
/// all for file locks: well under the one second `status` must answer in.
const REPORT_WAIT: Duration = Duration::from_millis(200);

/// What [`PendingFile::staged`] says of a file whose lock is held (an upload
/// or a write is in progress).
pub const BUSY: &str = "(busy: an upload or write is in progress)";

/// Passes a drain makes when files become dirty while it runs: enough for a
/// writer that closes during the drain, without chasing one that never stops.
const DRAIN_PASSES: usize = 3;

/// What waits to be uploaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    pub files: usize,
    pub bytes: u64,
}

/// One file with data not yet uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFile {
    /// Virtual path (absent when the name is gone, e.g. a removed mount).
    pub path: Option<String>,
    /// Where its data is kept.
    pub staged: String,
    pub bytes: u64,
}

impl Fs {
    /// Files with data not yet uploaded, and their staged size.
    pub async fn pending(&self) -> Pending {
        let files = self.pending_files().await;
        Pending {
            files: files.len(),
            bytes: files.iter().map(|f| f.bytes).sum(),
        }
    }

    /// Every file with data not yet uploaded.
    pub async fn pending_files(&self) -> Vec<PendingFile> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + REPORT_WAIT;
        for (ino, state) in self.handles.all_states() {
            let Ok(st) = tokio::time::timeout_at(deadline, state.lock()).await else {
                out.push(PendingFile {
                    path: self.inodes.path(ino),
                    staged: BUSY.into(),
                    bytes: 0,
                });
                continue;
            };
            if !st.dirty || st.unlinked {
                continue;
            }
            if let Some(s) = st.staged.as_ref().filter(|s| !s.is_in_place()) {
                out.push(PendingFile {
                    path: self.inodes.path(ino),
                    staged: s.data_path().display().to_string(),
                    bytes: s.len().unwrap_or(0),
                });
            }
        }
        out
    }

    /// Uploads every dirty file, calling `progress(files_remaining)` before
    /// each upload and once at the end; returns the failures.
    pub async fn drain(&self, mut progress: impl FnMut(usize) + Send) -> Vec<FsError> {
        let mut errors = Vec::new();
        for _ in 0..DRAIN_PASSES {
            errors.clear();
            let dirty = self.dirty_states().await;
            if dirty.is_empty() {
                break;
            }
            let mut remaining = dirty.len();
            for (ino, state) in dirty {
                progress(remaining);
                let mut st = state.lock().await;
                match self.upload_locked(ino, &mut st).await {
                    Ok(()) => self.settle(ino, &state, &mut st),
                    Err(e) => errors.push(e),
                }
                remaining -= 1;
            }
            if !errors.is_empty() {
                break;
            }
        }
        progress(errors.len());
        errors
    }

    /// Uploads dirty files at or under the virtual path `prefix`.
    pub(super) async fn flush_under(&self, prefix: &str) -> Vec<FsError> {
        let under = format!("{prefix}/");
        let mut errors = Vec::new();
        for (ino, state) in self.dirty_states().await {
            let Some(path) = self.inodes.path(ino) else {
                continue;
            };
            if path != prefix && !path.starts_with(&under) {
                continue;
            }
            let mut st = state.lock().await;
            match self.upload_locked(ino, &mut st).await {
                Ok(()) => self.settle(ino, &state, &mut st),
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    async fn dirty_states(&self) -> Vec<(u64, super::handles::SharedState)> {
        let mut out = Vec::new();
        for (ino, state) in self.handles.all_states() {
            let st = state.lock().await;
            if st.dirty && !st.unlinked {
                drop(st);
                out.push((ino, state));
            }
        }
        out
    }
}
