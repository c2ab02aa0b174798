//! The live mount table: the `[[mount]]` entries as they are now, kept in
//! step with the core's router. Changed by `mounts.add`/`mounts.remove` and by
//! a SIGHUP reload; optionally saved back to the config file.
//!
//! Invariants: changes are serialised (one at a time); an entry is in the
//! list exactly when its tree is in the router; option values are never
//! logged or returned unredacted.

use super::protocol::MountInfo;
use super::redact::redact;
use crate::backend::Backend;
use crate::cache::BlockCache;
use crate::config::{normalize_mount_path, save_mounts, Config, ConfigError, MountEntry};
use crate::fs::{Fs, Invalidator, TableError};
use crate::metrics::Metrics;
use crate::vfs::{MeteredTree, MountTree, Tree};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Why a change of the table failed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The entry itself is wrong (path, scheme, required options).
    #[error("{0}")]
    Invalid(String),
    /// The backend could not be opened.
    #[error("cannot open {scheme} backend for {path}: {message}")]
    Backend {
        path: String,
        scheme: String,
        message: String,
    },
    /// The core refused the change.
    #[error(transparent)]
    Table(#[from] TableError),
    /// Applied, but the config file could not be written.
    #[error("changed, but saving {path} failed: {message}")]
    Save { path: PathBuf, message: String },
}

/// Opens the backend of `entry` as a metered tree for the mount path `path`.
pub fn open_tree(
    path: &str,
    entry: &MountEntry,
    io_timeout: Duration,
    metrics: &Metrics,
    cache: Option<&Arc<BlockCache>>,
) -> Result<Arc<dyn Tree>, ChangeError> {
    let (scheme, options) = entry.resolved().map_err(ChangeError::Invalid)?;
    if crate::ipfs::SCHEMES.contains(&scheme.as_str()) {
        let tree = crate::ipfs::open(&scheme, &options, entry.read_only, io_timeout, cache.cloned())
            .map_err(|e| ChangeError::Backend {
                path: path.to_string(),
                scheme: scheme.clone(),
                message: e.to_string(),
            })?;
        return Ok(Arc::new(MeteredTree::new(tree, metrics.backend(path, &scheme))));
    }
    let backend = Backend::open(&scheme, &options, io_timeout).map_err(|e| ChangeError::Backend {
        path: path.to_string(),
        scheme: scheme.clone(),
        message: e.message,
    })?;
    // Hugging Face repositories are mounted read-only (EROFS): a revision
    // is a fixed tree, and writing would need commits to the Hub.
    let read_only = entry.read_only || scheme == "hf";
    let tree = MountTree::new(backend, read_only)
        .with_direct_writes(entry.direct_writes(&scheme))
        .with_identity(identity(&scheme, &options));
    let tree: Arc<dyn Tree> = Arc::new(tree);
    Ok(Arc::new(MeteredTree::new(tree, metrics.backend(path, &scheme))))
}

/// Options that say where a backend's data is (the rest tune how it is
/// reached: credentials, regions, retries), for [`identity`].
const LOCATING_OPTIONS: [&str; 7] = [
    "endpoint",
    "bucket",
    "container",
    "root",
    "repo_type",
    "repo_id",
    "revision",
];

/// The identity of a backend (see `Tree::identity`): its scheme and the
/// options that locate its data, e.g. `s3:bucket=b,endpoint=http://h:9000`.
/// A `memory` backend starts empty each time: each one is its own.
fn identity(scheme: &str, options: &std::collections::BTreeMap<String, String>) -> String {
    let shown: Vec<String> = options
        .iter()
        .filter(|(k, _)| LOCATING_OPTIONS.contains(&k.as_str()) && !super::redact::is_secret(k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut id = format!("{scheme}:{}", shown.join(","));
    if scheme == "memory" {
        id.push_str(&format!(",instance={}", uuid::Uuid::new_v4().simple()));
    }
    id
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// (path, reason) of changes that failed; the old state stays for them.
    pub failed: Vec<(String, String)>,
}

/// The mount table of a running mount.
pub struct LiveTable {
    fs: Arc<Fs>,
    metrics: Arc<Metrics>,
    io_timeout: Duration,
    config_path: PathBuf,
    entries: tokio::sync::Mutex<Vec<MountEntry>>,
    invalidator: OnceLock<Arc<dyn Invalidator>>,
}

impl LiveTable {
    /// The table as built from `config` (its trees are already in `fs`'s router).
    pub fn new(fs: Arc<Fs>, metrics: Arc<Metrics>, config: &Config, config_path: PathBuf) -> Self {
        Self {
            fs,
            metrics,
            io_timeout: Duration::from_secs(config.vfs.io_timeout_secs.max(1)),
            config_path,
            entries: tokio::sync::Mutex::new(config.mounts.clone()),
            invalidator: OnceLock::new(),
        }
    }

    /// Sets the kernel-cache invalidator once the FUSE session exists.
    pub fn set_invalidator(&self, inval: Arc<dyn Invalidator>) {
        let _ = self.invalidator.set(inval);
    }

    /// The config file `save` writes.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    fn inval(&self) -> Option<Arc<dyn Invalidator>> {
        self.invalidator.get().cloned()
    }

    /// The rows of the table sorted by path, secrets hidden.
    pub async fn list(&self) -> Vec<MountInfo> {
        let entries = self.entries.lock().await;
        let mut rows: Vec<MountInfo> = entries
            .iter()
            .map(|e| {
                let (scheme, options) = e.resolved().unwrap_or_default();
                MountInfo {
                    path: e.normalized_path(),
                    read_only: e.read_only || scheme == "hf",
                    scheme,
                    options: redact(&options),
                }
            })
            .collect();
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        rows
    }

    /// Number of mounts.
    pub async fn len(&self) -> usize {
        self.entries.lock().await.len()
    }

    /// True when the table is empty.
    pub async fn is_empty(&self) -> bool {
        self.len().await == 0
    }

    /// Adds `entry`; with `save`, writes the table to the config file.
    /// Returns the normalised path and the file written.
    pub async fn add(&self, entry: MountEntry, save: bool) -> Result<(String, Option<PathBuf>), ChangeError> {
        let mut entries = self.entries.lock().await;
        let path = self.add_locked(&mut entries, entry).await?;
        let saved = self.maybe_save(&entries, save)?;
        Ok((path, saved))
    }

    /// Removes the mount at `path`; with `save`, writes the table to the config file.
    pub async fn remove(&self, path: &str, save: bool) -> Result<(String, Option<PathBuf>), ChangeError> {
        let path = normalize_mount_path(path).map_err(ChangeError::Invalid)?;
        let mut entries = self.entries.lock().await;
        self.remove_locked(&mut entries, &path).await?;
        let saved = self.maybe_save(&entries, save)?;
        Ok((path, saved))
    }

    /// Applies the difference between the live table and `config` (SIGHUP):
    /// removes mounts that are gone or changed, then adds new or changed ones.
    pub async fn apply(&self, config: &Config) -> ReloadReport {
        let mut report = ReloadReport::default();
        let mut entries = self.entries.lock().await;
        let wanted: Vec<(String, &MountEntry)> =
            config.mounts.iter().map(|m| (m.normalized_path(), m)).collect();
        let stale: Vec<String> = entries
            .iter()
            .filter(|e| !wanted.iter().any(|(p, w)| *p == e.normalized_path() && *w == *e))
            .map(|e| e.normalized_path())
            .collect();
        for path in stale {
            match self.remove_locked(&mut entries, &path).await {
                Ok(()) => report.removed.push(path),
                Err(e) => report.failed.push((path, e.to_string())),
            }
        }
        for (path, w) in wanted {
            if entries.iter().any(|e| e.normalized_path() == path) {
                continue;
            }
            match self.add_locked(&mut entries, w.clone()).await {
                Ok(p) => report.added.push(p),
                Err(e) => report.failed.push((path, e.to_string())),
            }
        }
        report
    }

    async fn add_locked(
        &self,
        entries: &mut Vec<MountEntry>,
        mut entry: MountEntry,
    ) -> Result<String, ChangeError> {
        let path = normalize_mount_path(&entry.path).map_err(ChangeError::Invalid)?;
        entry.path = path.clone();
        let mut probe = Config {
            mounts: entries.clone(),
            ..Config::default()
        };
        probe.mounts.push(entry.clone());
        probe.validate().map_err(|e| match e {
            ConfigError::Entry { path, message, .. } => ChangeError::Invalid(format!("{path}: {message}")),
            other => ChangeError::Invalid(other.to_string()),
        })?;
        let cache = self.fs.reader().map(|r| r.cache());
        let tree = open_tree(&path, &entry, self.io_timeout, &self.metrics, cache)?;
        self.fs.add_mount(&path, tree, self.inval()).await?;
        tracing::info!(path, scheme = %entry.resolved().map(|r| r.0).unwrap_or_default(), "mount added");
        entries.push(entry);
        Ok(path)
    }

    async fn remove_locked(&self, entries: &mut Vec<MountEntry>, path: &str) -> Result<(), ChangeError> {
        let Some(i) = entries.iter().position(|e| e.normalized_path() == path) else {
            return Err(TableError::NotMounted(path.to_string()).into());
        };
        self.fs.remove_mount(path, self.inval()).await?;
        self.metrics.forget_backend(path);
        entries.remove(i);
        tracing::info!(path, "mount removed");
        Ok(())
    }

    fn maybe_save(&self, entries: &[MountEntry], save: bool) -> Result<Option<PathBuf>, ChangeError> {
        if !save {
            return Ok(None);
        }
        save_mounts(&self.config_path, entries).map_err(|e| ChangeError::Save {
            path: self.config_path.clone(),
            message: e.to_string(),
        })?;
        tracing::info!(file = %self.config_path.display(), "mount table saved");
        Ok(Some(self.config_path.clone()))
    }
}
