//! The life of a running mount after it is live: signals (SIGTERM/SIGINT
//! stop, SIGHUP reload), the stop sequence (drain staged uploads within the
//! drain timeout, then unmount) and naming what a drain leaves behind.
//!
//! Invariants: the signal handlers exist before the kernel mount does (a
//! SIGTERM during start-up is a clean stop, never a dead mount); a stop
//! drains before it unmounts, and never discards staged data; whatever is
//! still staged after the timeout is named in the log with the file that
//! keeps it, is uploaded by crash recovery at the next start, and makes the
//! daemon exit with `EXIT_LEFT_STAGED`. A second SIGTERM/SIGINT during a stop skips the rest of the drain
//! and detaches the mount at once.

use super::notify;
use crate::config::Config;
use crate::control::{LiveTable, StopReason, Stopper};
use crate::fs::Fs;
use crate::fuse::Unmounter;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// How to reload the config on SIGHUP.
pub struct Reload {
    /// `--config`, if given (else the data home's config.toml or the built-in default).
    pub file: Option<PathBuf>,
    pub home: PathBuf,
    pub table: Arc<LiveTable>,
}

/// The unmounter, once the kernel mount exists (signals are handled before).
pub type UnmounterSlot = Arc<std::sync::OnceLock<Arc<Unmounter>>>;

/// SIGTERM, SIGINT and SIGHUP, taken over from their default actions.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the handlers (inside the runtime). From this call on these
    /// signals no longer end the process by themselves.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Handles SIGTERM/SIGINT (stop) and SIGHUP (reload) until the process ends.
pub async fn signals(sig: Signals, stopper: Stopper, unmounter: UnmounterSlot, reload: Reload) {
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = sig;
    loop {
        let stop = tokio::select! {
            _ = term.recv() => true,
            _ = int.recv() => true,
            _ = hup.recv() => false,
        };
        if !stop {
            reload_config(&reload).await;
        } else if let (Some(_), Some(u)) = (stopper.reason(), unmounter.get()) {
            tracing::warn!("second stop signal: detaching the mount now without waiting for uploads");
            let u = u.clone();
            let _ = tokio::task::spawn_blocking(move || u.unmount_lazy()).await;
        } else {
            stopper.request(StopReason::Signal);
        }
    }
}

async fn reload_config(r: &Reload) {
    notify::reloading();
    tracing::info!("SIGHUP: reloading the mount table");
    match Config::load(r.file.as_deref(), &r.home) {
        Ok(cfg) => {
            let report = r.table.apply(&cfg).await;
            tracing::info!(added = ?report.added, removed = ?report.removed, "reload applied");
            for (path, why) in &report.failed {
                tracing::error!(path, reason = %why, "reload could not apply a change; kept the old state");
            }
        }
        Err(e) => tracing::error!(error = %e, "reload failed; the mount table is unchanged"),
    }
    notify::ready("reloaded");
}

/// Waits for a stop request, drains within `timeout`, then unmounts (lazily
/// when busy, so open files finish and the session ends when they close).
pub async fn stop_when_asked(stopper: Stopper, fs: Arc<Fs>, unmounter: Arc<Unmounter>, timeout: Duration) {
    let why = stopper.wait().await;
    notify::stopping("draining staged uploads");
    drain(&fs, timeout, &format!("{why:?}")).await;
    let u = unmounter.clone();
    let res = tokio::task::spawn_blocking(move || {
        u.unmount().or_else(|e| {
            tracing::warn!(error = %e, "unmount busy; detaching lazily (open files finish first)");
            u.unmount_lazy()
        })
    })
    .await;
    match res {
        Ok(Ok(())) => tracing::info!(mountpoint = %unmounter.path().display(), "unmount requested"),
        Ok(Err(e)) => tracing::error!(error = %e, "could not unmount"),
        Err(e) => tracing::error!(error = %e, "unmount task failed"),
    }
}

/// Uploads what is staged, for at most `timeout`; logs what is left.
/// Returns the number of files left staged.
pub async fn drain(fs: &Fs, timeout: Duration, why: &str) -> usize {
    let pending = fs.pending().await;
    if pending.files > 0 {
        tracing::info!(
            why,
            files = pending.files,
            bytes = pending.bytes,
            timeout_secs = timeout.as_secs(),
            "draining staged uploads"
        );
    }
    let progress = |n: usize| tracing::debug!(files_remaining = n, "drain");
    match tokio::time::timeout(timeout, fs.drain(progress)).await {
        Ok(failures) => {
            for e in &failures {
                tracing::error!(error = %e, "upload failed during drain; staged data kept");
            }
        }
        Err(_) => tracing::warn!(timeout_secs = timeout.as_secs(), "drain timed out"),
    }
    let left = fs.pending_files().await;
    for f in &left {
        tracing::error!(
            path = f.path.as_deref().unwrap_or("(unnamed)"),
            staged = %f.staged,
            bytes = f.bytes,
            "not uploaded; kept in staging and retried at the next start"
        );
    }
    left.len()
}
