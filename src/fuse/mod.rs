//! The FUSE adapter: the only module that speaks fuser.
//!
//! Each kernel request runs on the async core from the FUSE worker thread
//! that received it (the one async seam, [`Adapter::spawn`], blocks that
//! thread on the tokio runtime until the core answers, then replies).
//! In-flight work is bounded by the number of worker threads (`[vfs]
//! max_in_flight`): further requests wait in the kernel, never in an
//! unbounded queue here. A panic in the core is caught, and the reply it
//! dropped answers EIO, so the kernel never waits forever.

mod adapter;
mod invalidator;
mod options;
mod passthrough;
mod readahead;

pub use adapter::Adapter;
pub use options::{MountOptions, OptionError};
pub use readahead::DEFAULT_READ_AHEAD_KB;

use crate::fs::{Fs, Invalidator};
use crate::metrics::Metrics;
use std::path::Path;
use std::sync::Arc;

/// A live FUSE session running on its own thread.
pub struct Session {
    bg: fuser::BackgroundSession,
}

/// Something that can unmount the session from another thread.
pub struct Unmounter {
    path: std::path::PathBuf,
}

impl Unmounter {
    /// Asks the kernel to unmount (as `fusermount3 -u` would).
    pub fn unmount(&self) -> std::io::Result<()> {
        unmount_path(&self.path, false)
    }

    /// Detaches the mount now; the kernel ends the session when the last
    /// open file closes.
    pub fn unmount_lazy(&self) -> std::io::Result<()> {
        unmount_path(&self.path, true)
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Unmounts `path` with `umount2` (root) or `fusermount3 -u` (anyone else).
pub fn unmount_path(path: &Path, lazy: bool) -> std::io::Result<()> {
    if nix::unistd::geteuid().is_root() {
        let flags = if lazy {
            nix::mount::MntFlags::MNT_DETACH
        } else {
            nix::mount::MntFlags::empty()
        };
        nix::mount::umount2(path, flags).map_err(std::io::Error::from)
    } else {
        let mut cmd = std::process::Command::new("fusermount3");
        cmd.arg(if lazy { "-uz" } else { "-u" });
        let st = cmd.arg(path).status()?;
        if st.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "fusermount3 -u {} failed",
                path.display()
            )))
        }
    }
}

/// Mounts `fs` at `mountpoint` and serves it on a background thread.
pub fn mount(
    fs: Arc<Fs>,
    rt: tokio::runtime::Handle,
    mountpoint: &Path,
    opts: &MountOptions,
    worker_threads: usize,
    metrics: Arc<Metrics>,
) -> std::io::Result<(Session, Unmounter)> {
    if let Some(w) = opts.warning() {
        tracing::warn!("{w}");
    }
    let adapter = Adapter::new(fs, rt, opts.read_only, metrics, !opts.no_passthrough);
    let config = opts.fuser_config(worker_threads);
    let bg = fuser::spawn_mount(adapter, mountpoint, &config)?;
    readahead::apply(
        mountpoint,
        opts.read_ahead_kb.unwrap_or(readahead::DEFAULT_READ_AHEAD_KB),
    );
    Ok((
        Session { bg },
        Unmounter {
            path: mountpoint.to_path_buf(),
        },
    ))
}

impl Session {
    /// A handle that invalidates kernel-cached entries of this session
    /// (after a mount-table change).
    pub fn invalidator(&self) -> Arc<dyn Invalidator> {
        Arc::new(invalidator::NotifierInvalidator::new(self.bg.notifier()))
    }

    /// Waits until the kernel ends the session (after an unmount).
    pub fn join(self) -> std::io::Result<()> {
        self.bg.join()
    }
}
