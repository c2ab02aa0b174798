//! The composition root: builds backends, the router, the core and the FUSE
//! session from a [`Config`], serves until unmounted or signalled, then
//! drains pending uploads. Tests run this same wiring.

use crate::backend::Backend;
use crate::cache::readahead::DEFAULT_PREFETCH_BUDGET;
use crate::cache::{BlockCache, CacheConfig, PrefetchBudget};
use crate::config::Config;
use crate::fs::{staging::StagingDir, Fs, FsOptions, Owner, Reader};
use crate::fuse::{self, MountOptions};
use crate::vfs::{MountTree, Router};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Everything a mount needs.
#[derive(Debug, Clone)]
pub struct MountSpec {
    pub mountpoint: PathBuf,
    pub config: Config,
    pub options: MountOptions,
    pub home: PathBuf,
}

/// True when `(fstype, source)` is one of our mounts (the kernel shows
/// `fuse` or `fuse.ipfs-kit-fuse` depending on who mounted it).
pub fn is_ours(fstype: &str, source: &str) -> bool {
    fstype == "fuse.ipfs-kit-fuse" || (fstype.starts_with("fuse") && source == "ipfs-kit-fuse")
}

/// Checks that can fail before anything starts: the mount point exists, is a
/// directory, is not mounted already, and `/dev/fuse` opens.
pub fn preflight(mountpoint: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata(mountpoint)
        .with_context(|| format!("mount point {} does not exist", mountpoint.display()))?;
    if !meta.is_dir() {
        bail!("mount point {} is not a directory", mountpoint.display());
    }
    let canon = mountpoint.canonicalize()?;
    if mounted_at(&canon)?.is_some() {
        bail!("{} is already a mount point", canon.display());
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .context("/dev/fuse is not usable (is the fuse module loaded? are you allowed to open it?)")?;
    Ok(canon)
}

/// What is mounted exactly at `path`: (filesystem type, source), from /proc/self/mountinfo.
pub fn mounted_at(path: &Path) -> Result<Option<(String, String)>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let want = path.to_string_lossy();
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() > 4 && unescape_mountinfo(fields[4]) == want && sep + 2 < fields.len() {
            return Ok(Some((
                fields[sep + 1].to_string(),
                unescape_mountinfo(fields[sep + 2]),
            )));
        }
    }
    Ok(None)
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Builds the mount table from the config.
pub fn build_router(config: &Config) -> Result<Arc<Router>> {
    let router = Arc::new(Router::new());
    let timeout = Duration::from_secs(config.vfs.io_timeout_secs.max(1));
    for (i, m) in config.mounts.iter().enumerate() {
        let path = m.normalized_path();
        let (scheme, options) = m
            .resolved()
            .map_err(|e| anyhow::anyhow!("mount entry #{i} ({path}): {e}"))?;
        let backend = Backend::open(&scheme, &options, timeout).map_err(|e| {
            anyhow::anyhow!(
                "mount entry #{i} ({path}): cannot open {scheme} backend: {}",
                e.message
            )
        })?;
        if !router.add(&path, Arc::new(MountTree::new(backend, m.read_only))) {
            bail!("mount entry #{i} ({path}) overlaps another mount");
        }
    }
    Ok(router)
}

/// Builds the core for `spec`.
pub fn build_fs(spec: &MountSpec) -> Result<Arc<Fs>> {
    spec.config.validate()?;
    let router = build_router(&spec.config)?;
    let staging = StagingDir::new(spec.home.join("staging"))
        .with_context(|| format!("creating staging dir in {}", spec.home.display()))?;
    let ttl = spec.options.attr_ttl.unwrap_or(spec.config.vfs.attr_ttl_secs);
    let owner = Owner {
        uid: spec
            .options
            .uid
            .unwrap_or_else(|| nix::unistd::geteuid().as_raw()),
        gid: spec
            .options
            .gid
            .unwrap_or_else(|| nix::unistd::getegid().as_raw()),
        started: SystemTime::now(),
    };
    let cache_cfg = spec
        .config
        .cache
        .clone()
        .unwrap_or_else(|| CacheConfig::with_dir(spec.home.join("cache")));
    let cache = BlockCache::open(&cache_cfg).context("opening the block cache")?;
    let reader = Reader::new(cache, PrefetchBudget::new(DEFAULT_PREFETCH_BUDGET));
    let fs = Fs::new(
        router,
        staging,
        FsOptions {
            owner,
            ttl: Duration::from_secs_f64(ttl),
        },
    );
    Ok(Arc::new(fs.with_reader(reader)))
}

/// Runs a mount until it is unmounted or the process is signalled.
/// `ready` is called once: `Ok` when the mount is live, `Err` if it failed.
pub fn run(spec: MountSpec, ready: impl FnOnce(Result<(), String>)) -> Result<()> {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ikf-worker")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ready(Err(format!("cannot start runtime: {e}")));
            return Err(e.into());
        }
    };
    let fs = match rt.block_on(async { build_fs(&spec) }) {
        Ok(fs) => fs,
        Err(e) => {
            ready(Err(format!("{e:#}")));
            return Err(e);
        }
    };
    let (session, unmounter) = match fuse::mount(
        fs.clone(),
        rt.handle().clone(),
        &spec.mountpoint,
        &spec.options,
        spec.config.vfs.max_in_flight,
    ) {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("cannot mount {}: {e}", spec.mountpoint.display());
            ready(Err(msg.clone()));
            bail!(msg);
        }
    };
    tracing::info!(mountpoint = %spec.mountpoint.display(), mounts = spec.config.mounts.len(), "mounted");
    ready(Ok(()));

    let fs_sig = fs.clone();
    rt.spawn(async move {
        wait_for_stop_signal().await;
        tracing::info!("stop signal: draining uploads, then unmounting");
        for e in fs_sig.flush_all().await {
            tracing::error!(error = %e, "upload failed during drain");
        }
        if let Err(e) = unmounter.unmount() {
            tracing::warn!(error = %e, "unmount busy; detaching lazily");
            if let Err(e) = unmounter.unmount_lazy() {
                tracing::error!(error = %e, "could not detach the mount");
            }
        }
    });

    let joined = session.join();
    let failures = rt.block_on(fs.flush_all());
    for e in &failures {
        tracing::error!(error = %e, "upload failed at unmount; staged data kept");
    }
    rt.shutdown_timeout(Duration::from_secs(5));
    tracing::info!("unmounted");
    joined.context("FUSE session ended with an error")?;
    if !failures.is_empty() {
        bail!(
            "{} file(s) could not be uploaded; their data is kept in the staging directory",
            failures.len()
        );
    }
    Ok(())
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_decodes_octal_spaces() {
        assert_eq!(unescape_mountinfo("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
