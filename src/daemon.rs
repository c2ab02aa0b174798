//! The composition root: builds backends, the router, the core and the FUSE
//! session from a [`Config`], serves the mount and its control socket until
//! unmounted, signalled or told to stop, recovers staged writes left by a
//! crash in the background, then drains pending uploads. Tests run this same
//! wiring.
//!
//! Exit status: a stop that leaves staged data behind (uploads still
//! failing after the drain) is an error of kind [`LeftStaged`], which the
//! CLI turns into exit code [`EXIT_LEFT_STAGED`].

mod lifecycle;
mod notify;

use crate::cache::readahead::DEFAULT_PREFETCH_BUDGET;
use crate::cache::{BlockCache, CacheConfig, PrefetchBudget};
use crate::config::Config;
use crate::control::table::open_tree;
use crate::control::{http, paths, server, ControlState, LiveTable, Stopper};
use crate::fs::{staging::StagingDir, Fs, FsOptions, Owner, Reader};
use crate::fuse::{self, MountOptions};
use crate::metrics::Metrics;
use crate::vfs::Router;
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Longest wait at unmount for the block cache's queued disk writes: at
/// most 64 blocks of 1 MiB are queued, well under a second on any disk.
const CACHE_FLUSH: Duration = Duration::from_secs(10);

/// The exit code of a daemon (and of `unmount`) that stopped with data
/// still staged: distinct from 1 (could not run at all) so scripts and
/// systemd can tell "stopped, but uploads are pending" apart.
pub const EXIT_LEFT_STAGED: u8 = 3;

/// A stop that left files staged: how many, how many bytes, and where.
#[derive(Debug, thiserror::Error)]
#[error("{files} file(s), {bytes} byte(s) could not be uploaded; they are kept in {} and uploaded at the next start", .dir.display())]
pub struct LeftStaged {
    pub files: usize,
    pub bytes: u64,
    pub dir: PathBuf,
}

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
///
/// A dead mount of ours at the mount point (ENOTCONN: its daemon was killed)
/// is detached lazily first, with a line on stderr, so a restart after a
/// crash needs no manual clean-up; a dead mount of another filesystem is
/// refused.
pub fn preflight(mountpoint: &Path) -> Result<PathBuf> {
    if let Err(e) = std::fs::metadata(mountpoint) {
        if e.raw_os_error() == Some(libc::ENOTCONN) {
            detach_dead_mount(mountpoint)?;
        }
    }
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

/// Detaches the dead FUSE mount at `mountpoint` if it is ours.
fn detach_dead_mount(mountpoint: &Path) -> Result<()> {
    let abs = std::path::absolute(mountpoint)?;
    match mounted_at(&abs)? {
        Some((t, src)) if is_ours(&t, &src) => {
            let msg = format!(
                "{} holds a dead ipfs-kit-fuse mount (its daemon ended without unmounting); detaching it lazily",
                abs.display()
            );
            eprintln!("ipfs-kit-fuse: {msg}");
            tracing::warn!("{msg}");
            crate::fuse::unmount_path(&abs, true)
                .with_context(|| format!("cannot detach the dead mount at {}", abs.display()))
        }
        Some((t, src)) => bail!(
            "{} is held by another filesystem ({t} from {src}) that does not answer (transport endpoint is not connected)",
            abs.display()
        ),
        None => Ok(()),
    }
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

/// The signals a running mount handles itself (see `lifecycle`).
fn stop_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    set
}

/// Blocks the stop signals in the calling thread (and the threads and
/// processes it starts) until [`run_with`] has installed their handlers.
pub fn block_stop_signals() -> nix::Result<()> {
    stop_signals().thread_block()
}

/// Undoes [`block_stop_signals`] (in a process that will not serve a mount).
pub fn unblock_stop_signals() -> nix::Result<()> {
    stop_signals().thread_unblock()
}

/// Builds the mount table from the config.
pub fn build_router(config: &Config) -> Result<Arc<Router>> {
    build_router_with(config, &Metrics::default(), None)
}

/// Builds the mount table from the config, counting each backend's bytes in
/// `metrics`; IPFS trees keep their DAG nodes in `cache` too.
pub fn build_router_with(
    config: &Config,
    metrics: &Metrics,
    cache: Option<&Arc<BlockCache>>,
) -> Result<Arc<Router>> {
    let router = Arc::new(Router::new());
    let timeout = Duration::from_secs(config.vfs.io_timeout_secs.max(1));
    for (i, m) in config.mounts.iter().enumerate() {
        let path = m.normalized_path();
        let tree = open_tree(&path, m, timeout, metrics, cache)
            .map_err(|e| anyhow::anyhow!("mount entry #{i} ({path}): {e}"))?;
        if !router.add(&path, tree) {
            bail!("mount entry #{i} ({path}) overlaps another mount");
        }
    }
    Ok(router)
}

/// Builds the core for `spec`.
pub fn build_fs(spec: &MountSpec) -> Result<Arc<Fs>> {
    build_fs_with(spec, &Metrics::default())
}

/// Builds the core for `spec`, counting backend bytes in `metrics`. Staged
/// files live in `staging/<escaped mount point>/`, so crash recovery of one
/// mount never touches another mount's live files.
pub fn build_fs_with(spec: &MountSpec, metrics: &Metrics) -> Result<Arc<Fs>> {
    spec.config.validate()?;
    let cache_cfg = spec
        .config
        .cache
        .clone()
        .unwrap_or_else(|| CacheConfig::with_dir(spec.home.join("cache")));
    let cache = BlockCache::open(&cache_cfg).context("opening the block cache")?;
    let router = build_router_with(&spec.config, metrics, Some(&cache))?;
    let staging = StagingDir::new(staging_dir(&spec.home, &spec.mountpoint))
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
        shared: spec.options.allow_other,
    };
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

/// Settings of a running mount beyond [`MountSpec`] (all optional).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The config file given with `--config`: `save` writes it and SIGHUP
    /// reloads it (default: `$IPFS_KIT_HOME/config.toml`).
    pub config_file: Option<PathBuf>,
    /// Serve Prometheus metrics on this address.
    pub metrics_addr: Option<SocketAddr>,
    /// The control socket (default: [`paths::socket_path`] of the mount point).
    pub socket: Option<PathBuf>,
}

/// Runs a mount until it is unmounted or the process is signalled.
/// `ready` is called once: `Ok` when the mount is live, `Err` if it failed.
pub fn run(spec: MountSpec, ready: impl FnOnce(Result<(), String>)) -> Result<()> {
    run_with(spec, RunOptions::default(), ready)
}

/// [`run`] with control socket, metrics endpoint and config file settings.
///
/// Order: build the core; upload staged files left by a crash; bind the
/// metrics endpoint; mount; bind the control socket; report ready (`ready`
/// and sd_notify READY=1). A stop (SIGTERM/SIGINT or `shutdown`) drains
/// staged uploads within `[vfs] drain_timeout_secs`, then unmounts.
pub fn run_with(spec: MountSpec, ops: RunOptions, ready: impl FnOnce(Result<(), String>)) -> Result<()> {
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
    // Signals are taken over before the kernel mount exists: a SIGTERM
    // from here on asks for a clean stop, never the default death that
    // would leave a dead mount behind.
    let stopper = Stopper::new();
    let unmounter_slot: lifecycle::UnmounterSlot = Default::default();
    let signals = match rt.block_on(async { lifecycle::Signals::install() }) {
        Ok(s) => s,
        Err(e) => {
            ready(Err(format!("cannot install signal handlers: {e}")));
            return Err(e.into());
        }
    };
    // Handlers are in place: a stop signal held back since start-up
    // (`block_stop_signals`) is delivered now, to this thread.
    if let Err(e) = stop_signals().thread_unblock() {
        tracing::warn!(error = %e, "cannot unblock the stop signals");
    }
    let metrics = Metrics::new();
    let fs = match rt.block_on(async { build_fs_with(&spec, &metrics) }) {
        Ok(fs) => fs,
        Err(e) => {
            ready(Err(format!("{e:#}")));
            return Err(e);
        }
    };
    let config_path = ops
        .config_file
        .clone()
        .unwrap_or_else(|| spec.home.join("config.toml"));
    let table = Arc::new(LiveTable::new(
        fs.clone(),
        metrics.clone(),
        &spec.config,
        config_path,
    ));
    rt.spawn(lifecycle::signals(
        signals,
        stopper.clone(),
        unmounter_slot.clone(),
        lifecycle::Reload {
            file: ops.config_file.clone(),
            home: spec.home.clone(),
            table: table.clone(),
        },
    ));
    // Only files of an earlier run: scanned before anything can stage.
    let leftovers = match fs.scan_leftovers() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot scan the staging directory for leftovers");
            Default::default()
        }
    };
    let metrics_listener = match ops.metrics_addr {
        Some(addr) => match rt.block_on(tokio::net::TcpListener::bind(addr)) {
            Ok(l) => Some(l),
            Err(e) => {
                let msg = format!("cannot serve metrics on {addr}: {e}");
                ready(Err(msg.clone()));
                bail!(msg);
            }
        },
        None => None,
    };
    if stopper.reason().is_some() {
        let msg = "stopped by a signal before the mount was live".to_string();
        ready(Err(msg.clone()));
        bail!(msg);
    }
    let (session, unmounter) = match fuse::mount(
        fs.clone(),
        rt.handle().clone(),
        &spec.mountpoint,
        &spec.options,
        spec.config.vfs.max_in_flight,
        metrics.clone(),
    ) {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("cannot mount {}: {e}", spec.mountpoint.display());
            ready(Err(msg.clone()));
            bail!(msg);
        }
    };
    let unmounter = Arc::new(unmounter);
    let _ = unmounter_slot.set(unmounter.clone());
    table.set_invalidator(session.invalidator());
    let catalog = crate::bucket::attach(&fs, &spec.home, &spec.config);
    let bucket_service = Arc::new(crate::bucket::Service {
        catalog: catalog.clone(),
        router: fs.router().clone(),
        mounts: Arc::new(crate::control::buckets::TableMounts(table.clone())),
    });
    rt.spawn(crate::bucket::maintain(catalog.clone(), fs.router().clone()));
    let state = Arc::new(ControlState {
        fs: fs.clone(),
        table: table.clone(),
        cache: fs.reader().map(|r| r.cache().clone()),
        metrics: metrics.clone(),
        mountpoint: spec.mountpoint.clone(),
        owner_uid: nix::unistd::geteuid().as_raw(),
        started: Instant::now(),
        stopper: stopper.clone(),
        buckets: Some(bucket_service),
    });
    let (ended_tx, ended_rx) = tokio::sync::watch::channel(false);
    let socket = ops
        .socket
        .clone()
        .unwrap_or_else(|| paths::socket_path(&spec.mountpoint));
    let bound = rt.block_on(async { server::bind(&socket) });
    let socket = match bound {
        Ok(listener) => {
            rt.spawn(server::run(
                listener,
                state.clone(),
                session_ended(ended_rx.clone()),
            ));
            tracing::info!(socket = %socket.display(), "control socket listening");
            Some(socket)
        }
        Err(e) => {
            tracing::error!(socket = %socket.display(), error = %e, "no control socket; the mount runs without one");
            None
        }
    };
    if let Some(l) = metrics_listener {
        rt.spawn(http::run(l, state.clone(), session_ended(ended_rx.clone())));
    }
    tracing::info!(mountpoint = %spec.mountpoint.display(), mounts = spec.config.mounts.len(), "mounted");
    ready(Ok(()));
    notify::ready(&format!("mounted at {}", spec.mountpoint.display()));

    let drain_timeout = Duration::from_secs(spec.config.vfs.drain_timeout_secs);
    if !leftovers.is_empty() {
        let fs = fs.clone();
        rt.spawn(async move {
            tracing::info!(
                files = leftovers.len(),
                "crash recovery: uploading staged files of an earlier run"
            );
            let r = fs.recover(leftovers).await;
            tracing::info!(
                uploaded = r.uploaded.len(),
                conflicts = r.conflicts.len(),
                dropped = r.dropped,
                kept = r.kept.len(),
                "crash recovery done"
            );
        });
    }
    rt.spawn(lifecycle::stop_when_asked(
        stopper.clone(),
        fs.clone(),
        unmounter,
        drain_timeout,
    ));

    let joined = session.join();
    let _ = ended_tx.send(true);
    if stopper.reason().is_none() {
        notify::stopping("unmounted; uploading what is left");
    }
    rt.block_on(lifecycle::drain(&fs, drain_timeout, "unmounted"));
    // Closes queued for the bucket journals land before the last checkpoint
    // (past the timeout, the marker stays and the next start re-indexes).
    let drained = rt.block_on(async { tokio::time::timeout(drain_timeout, catalog.drained()).await });
    if drained.is_err() {
        tracing::error!(
            "bucket index records still queued at unmount; the next start re-indexes those buckets"
        );
    }
    if let Err(e) = catalog.checkpoint() {
        tracing::error!(error = %e, "bucket indexes not compacted at unmount; their journals are kept");
    }
    if let Some(s) = socket {
        let _ = std::fs::remove_file(s);
    }
    // Block cache writes still queued finish before the runtime stops (a
    // stopping runtime drops blocking tasks that have not started), so what
    // was read is on disk for the next start.
    if let Some(reader) = fs.reader() {
        let flushed = rt.block_on(async { tokio::time::timeout(CACHE_FLUSH, reader.cache().flush()).await });
        if flushed.is_err() {
            tracing::warn!("block cache writes still queued at unmount after {CACHE_FLUSH:?}; those blocks are not cached");
        }
    }
    rt.shutdown_timeout(Duration::from_secs(5));
    tracing::info!("unmounted");
    match joined {
        // A stop we asked for may race the kernel tearing the connection
        // down; the data is drained, so the stop still succeeds.
        Err(e) if stopper.reason().is_some() => {
            tracing::warn!(error = %e, "FUSE session ended with an error during the stop")
        }
        other => other.context("FUSE session ended with an error")?,
    }
    // What is left: this run's failed uploads and an earlier run's files
    // that recovery could not (or did not yet) upload.
    if let Some(e) = left_staged(fs.staging().path()) {
        tracing::error!("{e}");
        return Err(e.into());
    }
    Ok(())
}

/// The files with data the backend lacks in the staging directory `dir`
/// (those with a dirty marker), or None when there are none.
pub fn left_staged(dir: &Path) -> Option<LeftStaged> {
    if !dir.is_dir() {
        return None;
    }
    let stage = StagingDir::new(dir.to_path_buf()).ok()?;
    let (mut files, mut bytes) = (0, 0);
    let found = stage.scan().unwrap_or_default();
    let dirty = found
        .leftovers
        .into_iter()
        .map(|(data, _)| data)
        .filter(|data| stage.leftover_is_dirty(data));
    // Bytes whose destination record is unreadable are left staged too.
    for data in dirty.chain(found.orphans) {
        files += 1;
        bytes += std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
    }
    (files > 0).then(|| LeftStaged {
        files,
        bytes,
        dir: dir.to_path_buf(),
    })
}

/// The staging directory of the mount at `mountpoint` in the data home `home`.
pub fn staging_dir(home: &Path, mountpoint: &Path) -> PathBuf {
    home.join("staging").join(paths::escape(mountpoint))
}

/// Completes when the FUSE session has ended.
async fn session_ended(mut rx: tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
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
