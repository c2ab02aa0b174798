//! The kernel's readahead for the mount: how far ahead of a sequential
//! reader the kernel asks the daemon for pages.
//!
//! The kernel gives a FUSE mount the readahead of its backing device info
//! (`/sys/class/bdi/MAJOR:MINOR/read_ahead_kb`), 128 KiB by default, and
//! caps it at the size the daemon answers at INIT (at most what the kernel
//! offered, the same 128 KiB). At 128 KiB a sequential reader waits for
//! one round trip per 128 KiB: a 256 MiB file the block cache holds was read
//! in 0.36-0.48 s, and in 0.14-0.20 s with 512 KiB to 4 MiB
//! (docs/BENCHMARKS.md). The value can only be raised through sysfs, after
//! INIT: a `stat` of the mount point returns once INIT is done (the kernel
//! holds every request until then), so the setting follows it. Writing to
//! sysfs needs root; without it the kernel's default stays and the log says
//! so once.

use std::path::Path;
use std::time::Duration;

/// Default readahead, KiB: the fastest setting measured for sequential reads
/// of cached files with `cat` and 4 KiB `dd` (4 MiB: 0.18-0.20 s and 0.23 s
/// for 256 MiB, against 0.36-0.48 s and 0.60 s at the kernel's 128 KiB; 16
/// MiB was slower again, 0.27 s). Reads of it arrive as 1 MiB requests
/// (`max_write`/`max_pages`), several at once and in any order, which the
/// block cache's readahead takes as one stream (`cache::readahead`).
pub const DEFAULT_READ_AHEAD_KB: u32 = 4096;

/// How long the mount waits for the setting: the `stat` it needs is the
/// first request the new session answers, normally within milliseconds.
const SETTLE: Duration = Duration::from_secs(2);

/// Sets the kernel's readahead of the FUSE mount at `mountpoint` to `kb`
/// KiB (0 leaves the kernel's default). Waits up to [`SETTLE`] for it (on a
/// thread of its own, so a session that does not answer cannot hang the
/// caller); failures are logged, never fatal.
pub fn apply(mountpoint: &Path, kb: u32) {
    if kb == 0 {
        return;
    }
    let path = mountpoint.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("ikf-readahead".into())
        .spawn(move || {
            let _ = tx.send(set(&path, kb));
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot set the kernel readahead: no thread");
        return;
    }
    match rx.recv_timeout(SETTLE) {
        Ok(Ok(file)) => tracing::debug!(file = %file, kb, "kernel readahead set"),
        Ok(Err(e)) => tracing::info!(
            "kernel readahead left at its default ({e}); sequential reads of cached files are slower"
        ),
        Err(_) => {
            tracing::warn!("kernel readahead not set: the mount did not answer a stat within {SETTLE:?}")
        }
    }
}

/// Writes `kb` to the `read_ahead_kb` of the device of the mount at
/// `mountpoint`; returns the sysfs file written.
fn set(mountpoint: &Path, kb: u32) -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(mountpoint)
        .map_err(|e| format!("stat {}: {e}", mountpoint.display()))?
        .dev();
    let file = bdi_file(dev);
    std::fs::write(&file, format!("{kb}\n")).map_err(|e| format!("{file}: {e}"))?;
    Ok(file)
}

/// The sysfs file holding the readahead of the device `dev`.
fn bdi_file(dev: u64) -> String {
    format!(
        "/sys/class/bdi/{}:{}/read_ahead_kb",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdi_file_names_major_and_minor() {
        let dev = nix::sys::stat::makedev(0, 57);
        assert_eq!(bdi_file(dev), "/sys/class/bdi/0:57/read_ahead_kb");
    }

    #[test]
    fn zero_leaves_the_kernel_alone_and_failures_are_not_fatal() {
        apply(Path::new("/nonexistent/mount"), 0);
        apply(Path::new("/nonexistent/mount"), 4096);
        assert!(set(Path::new("/nonexistent/mount"), 4096).is_err());
    }
}
