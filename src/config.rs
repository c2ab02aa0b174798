//! Configuration: the data home, the TOML config file and its validation.
//!
//! Owns the `[[mount]]` table as the user wrote it. Invariants after
//! [`Config::validate`]: every mount path is absolute, normalised (no `.`/`..`,
//! no trailing slash, not `/` itself), unique, and no mount path is a prefix
//! directory of another. Option values are never printed (they may hold
//! secrets); errors name the entry by its path and index instead.

mod save;

pub use save::save_mounts;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Environment variable naming the data home.
pub const HOME_ENV: &str = "IPFS_KIT_HOME";

/// Errors while loading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("mount entry #{index} (path {path:?}): {message}")]
    Entry {
        index: usize,
        path: String,
        message: String,
    },
    #[error("no home directory: set {HOME_ENV} or HOME")]
    NoHome,
}

/// One `[[mount]]` entry: a backend placed at `path` under the mount point.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MountEntry {
    /// Where it appears under the mount point, e.g. `/local` or `/a/b`.
    pub path: String,
    /// An opendal scheme (`fs`, `memory`, ...). Optional when `uri` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// URI shorthand: `fs:///srv/data`, `memory://`, `s3://bucket/prefix?region=x`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Answer EROFS to every mutation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// How writes reach the backend; unset: `direct` for `fs`, `staged` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes: Option<WriteMode>,
    /// Options handed to the opendal service as they are.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Makes this mount a bucket of that name: files closed after writing
    /// are indexed with their CIDs (see `bucket/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The bucket's CID profile (IPIP-0499 name, e.g. `unixfs-v0-2015`);
    /// unset: `unixfs-v1-2025`. Only with `bucket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// How writes to a mount reach its backend.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// Into the backing file itself, as on a local disk: no copy at close,
    /// and other readers of the directory see writes as they happen. Only
    /// for the `fs` scheme, where the backing file is already local.
    Direct,
    /// Into a staging file under the data home, uploaded at flush/close in
    /// one piece: the backend never holds a half-written file.
    Staged,
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, rename = "mount")]
    pub mounts: Vec<MountEntry>,
    /// Settings of the mount itself (TTLs, limits).
    #[serde(default)]
    pub vfs: VfsSettings,
    /// Block cache settings (`memory`, `disk`, `block_size`, `dir`); defaults
    /// to 256 MiB of memory and 10 GiB under `$IPFS_KIT_HOME/cache`.
    #[serde(default)]
    pub cache: Option<crate::cache::CacheConfig>,
}

/// Tunables of the filesystem core.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VfsSettings {
    /// Seconds the kernel may cache attributes and directory entries.
    pub attr_ttl_secs: f64,
    /// Seconds a single backend I/O call may take before it fails with ETIMEDOUT.
    pub io_timeout_secs: u64,
    /// FUSE worker threads, which is the most FUSE operations running at
    /// once; more wait in the kernel (back-pressure).
    pub max_in_flight: usize,
    /// Seconds a stop (SIGTERM, `shutdown`, unmount) waits for staged writes
    /// to upload before it unmounts anyway; what is left stays staged and is
    /// uploaded at the next start.
    pub drain_timeout_secs: u64,
}

impl Default for VfsSettings {
    fn default() -> Self {
        Self {
            // One second, as libfuse and rclone default: fresh enough for shared
            // backends, and saves most repeated getattr round trips.
            attr_ttl_secs: 1.0,
            // A minute per call: longer than any healthy local or S3 request,
            // short enough that a dead backend turns into an error, not a hang.
            io_timeout_secs: 60,
            // Enough parallel requests to keep a backend busy from many
            // processes (readahead runs on its own tasks, not on these); each
            // holds at most one 1 MiB buffer, so memory stays small.
            max_in_flight: 16,
            // Two minutes: a few GiB to a healthy backend; below systemd's
            // TimeoutStopSec (180 s in our units) so the unit stops cleanly.
            drain_timeout_secs: 120,
        }
    }
}

/// The data home: `$IPFS_KIT_HOME`, else `~/.ipfs_kit`.
pub fn data_home() -> Result<PathBuf, ConfigError> {
    if let Some(h) = std::env::var_os(HOME_ENV).filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or(ConfigError::NoHome)?;
    Ok(PathBuf::from(home).join(".ipfs_kit"))
}

impl Config {
    /// Loads `file`, or `$IPFS_KIT_HOME/config.toml`, or the built-in default when
    /// neither is given nor present.
    pub fn load(file: Option<&Path>, home: &Path) -> Result<Config, ConfigError> {
        let default_file = home.join("config.toml");
        let path = match file {
            Some(f) => f.to_path_buf(),
            None if default_file.exists() => default_file,
            None => return Ok(Config::builtin(home)),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let cfg = Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.clone(),
            message,
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML text (no validation).
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.message().to_string())
    }

    /// The built-in default: `/local` (a directory in the data home) and `/memory`.
    pub fn builtin(home: &Path) -> Config {
        let local = home.join("vfs").join("local");
        Config {
            mounts: vec![
                MountEntry {
                    path: "/local".into(),
                    scheme: Some("fs".into()),
                    uri: None,
                    read_only: false,
                    writes: None,
                    options: BTreeMap::from([("root".into(), local.to_string_lossy().into_owned())]),
                    bucket: None,
                    profile: None,
                },
                MountEntry {
                    path: "/memory".into(),
                    scheme: Some("memory".into()),
                    uri: None,
                    read_only: false,
                    writes: None,
                    options: BTreeMap::new(),
                    bucket: None,
                    profile: None,
                },
            ],
            vfs: VfsSettings::default(),
            cache: None,
        }
    }

    /// Checks paths (normalised first), schemes, URI shorthands and required
    /// options, and that mount paths neither repeat nor contain one another.
    /// Changes nothing: callers normalise and expand with
    /// [`MountEntry::normalized_path`] and [`MountEntry::resolved`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen: Vec<String> = Vec::new();
        for (index, m) in self.mounts.iter().enumerate() {
            let fail = |message: String| ConfigError::Entry {
                index,
                path: m.path.clone(),
                message,
            };
            let norm = normalize_mount_path(&m.path).map_err(fail)?;
            let (scheme, options) = m.resolved().map_err(fail)?;
            check_scheme(&scheme, &options).map_err(fail)?;
            if m.writes == Some(WriteMode::Direct) && scheme != "fs" {
                return Err(fail(format!(
                    "writes = \"direct\" needs a local directory (scheme \"fs\"), not {scheme:?}"
                )));
            }
            for other in &seen {
                if *other == norm {
                    return Err(fail(format!("duplicate mount path {norm}")));
                }
                if is_ancestor(other, &norm) || is_ancestor(&norm, other) {
                    return Err(fail(format!("mount path {norm} overlaps {other}")));
                }
            }
            seen.push(norm);
            if let Some(b) = &m.bucket {
                crate::bucket::check_name(b).map_err(|e| fail(e.to_string()))?;
                if self.mounts[..index]
                    .iter()
                    .any(|o| o.bucket.as_deref() == Some(b))
                {
                    return Err(fail(format!("duplicate bucket name {b:?}")));
                }
            }
            if let Some(p) = &m.profile {
                if m.bucket.is_none() {
                    return Err(fail(format!(
                        "profile {p:?} is only for buckets (set `bucket` too)"
                    )));
                }
                p.parse::<crate::car::Profile>()
                    .map_err(|e| fail(e.to_string()))?;
            }
        }
        if self.vfs.attr_ttl_secs < 0.0 || !self.vfs.attr_ttl_secs.is_finite() {
            return Err(ConfigError::Parse {
                path: PathBuf::from("[vfs]"),
                message: "attr_ttl_secs must be a non-negative number".into(),
            });
        }
        Ok(())
    }
}

impl MountEntry {
    /// The scheme and options after expanding a `uri` shorthand.
    pub fn resolved(&self) -> Result<(String, BTreeMap<String, String>), String> {
        let mut options = self.options.clone();
        let Some(uri) = &self.uri else {
            let scheme = self.scheme.clone().ok_or("needs `scheme` or `uri`")?;
            return Ok((scheme, options));
        };
        let (scheme, rest) = uri.split_once("://").ok_or("uri must look like scheme://...")?;
        if let Some(s) = &self.scheme {
            if s != scheme {
                return Err(format!("scheme {s:?} disagrees with uri scheme {scheme:?}"));
            }
        }
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        match scheme {
            "fs" => {
                options.insert("root".into(), location.to_string());
            }
            "memory" => {}
            // ipfs://CID?api=URL mounts one DAG; ipfs://?api=URL any CID.
            "ipfs" => {
                if !location.is_empty() {
                    options.insert("root".into(), location.to_string());
                }
            }
            "car" => {
                options.insert("paths".into(), location.to_string());
            }
            "hf" => hf_uri(location, &mut options)?,
            _ => {
                let (bucket, root) = location.split_once('/').unwrap_or((location, ""));
                if !bucket.is_empty() {
                    options.insert("bucket".into(), bucket.to_string());
                }
                if !root.is_empty() {
                    options.insert("root".into(), format!("/{root}"));
                }
            }
        }
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, "true"));
            options.insert(k.to_string(), v.to_string());
        }
        Ok((scheme.to_string(), options))
    }

    /// True when writes go straight into the backing files (see [`WriteMode`]).
    pub fn direct_writes(&self, scheme: &str) -> bool {
        match self.writes {
            Some(mode) => mode == WriteMode::Direct,
            None => scheme == "fs",
        }
    }

    /// The normalised mount path (valid after [`Config::validate`]).
    pub fn normalized_path(&self) -> String {
        normalize_mount_path(&self.path).unwrap_or_else(|_| self.path.clone())
    }
}

/// `hf://[models/|datasets/|spaces/]ORG/NAME[@REVISION][/ROOT]` (the
/// Hub's own form) into `repo_type`, `repo_id`, `revision` and `root`.
fn hf_uri(location: &str, options: &mut BTreeMap<String, String>) -> Result<(), String> {
    let mut parts: Vec<&str> = location.split('/').filter(|p| !p.is_empty()).collect();
    if let Some(kind) = parts
        .first()
        .and_then(|p| ["models", "datasets", "spaces"].iter().find(|k| *k == p))
    {
        options.insert("repo_type".into(), kind.trim_end_matches('s').into());
        parts.remove(0);
    }
    if parts.len() < 2 {
        return Err("hf uri must look like hf://[datasets/|spaces/]ORG/NAME[@REVISION][/PATH]".into());
    }
    let (name, revision) = parts[1].split_once('@').unwrap_or((parts[1], ""));
    options.insert("repo_id".into(), format!("{}/{name}", parts[0]));
    if !revision.is_empty() {
        options.insert("revision".into(), revision.replace("%2F", "/"));
    }
    if parts.len() > 2 {
        options.insert("root".into(), format!("/{}", parts[2..].join("/")));
    }
    Ok(())
}

/// Schemes compiled into this build, with the options each one requires.
/// `ipfs` needs `api` or `gateway`, checked when it is opened (see `ipfs`).
const SCHEMES: &[(&str, &[&str])] = &[
    ("fs", &["root"]),
    ("memory", &[]),
    ("s3", &["bucket"]),
    ("ipfs", &[]),
    ("car", &["paths"]),
    // A Kubo node's MFS (src/ipfs/mfs.rs): api = URL, optional root.
    ("ipfs-mfs", &["api"]),
    // Hugging Face repositories (src/backend/hf.rs), read-only; cargo feature `hf`.
    #[cfg(feature = "hf")]
    ("hf", &["repo_id"]),
];

fn check_scheme(scheme: &str, options: &BTreeMap<String, String>) -> Result<(), String> {
    let Some((_, required)) = SCHEMES.iter().find(|(s, _)| *s == scheme) else {
        let known: Vec<&str> = SCHEMES.iter().map(|(s, _)| *s).collect();
        return Err(format!(
            "unknown scheme {scheme:?} (compiled in: {})",
            known.join(", ")
        ));
    };
    for key in *required {
        if options.get(*key).is_none_or(|v| v.is_empty()) {
            return Err(format!("scheme {scheme:?} needs option {key:?}"));
        }
    }
    Ok(())
}

/// `/a//b/` -> `/a/b`; rejects relative paths, `.`/`..`, the root and control characters.
pub fn normalize_mount_path(p: &str) -> Result<String, String> {
    if !p.starts_with('/') {
        return Err(format!("mount path {p:?} must start with '/'"));
    }
    let mut parts = Vec::new();
    for part in p.split('/').filter(|s| !s.is_empty()) {
        if part == "." || part == ".." || part.chars().any(char::is_control) {
            return Err(format!("mount path {p:?} has an invalid component {part:?}"));
        }
        parts.push(part);
    }
    if parts.is_empty() {
        return Err("mount path cannot be the root '/'".into());
    }
    Ok(format!("/{}", parts.join("/")))
}

fn is_ancestor(a: &str, b: &str) -> bool {
    b.len() > a.len() && b.starts_with(a) && b.as_bytes()[a.len()] == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, scheme: &str) -> MountEntry {
        MountEntry {
            path: path.into(),
            scheme: Some(scheme.into()),
            uri: None,
            read_only: false,
            writes: None,
            options: BTreeMap::from([("root".to_string(), "/tmp/x".to_string())]),
            bucket: None,
            profile: None,
        }
    }

    #[test]
    fn validate_rejects_overlapping_paths() {
        let cfg = Config {
            mounts: vec![entry("/a", "fs"), entry("/a/b", "memory")],
            vfs: Default::default(),
            cache: None,
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("overlaps"), "{err}");
    }

    #[test]
    fn validate_checks_a_bucket_profile() {
        let with = |bucket: Option<&str>, profile: &str| Config {
            mounts: vec![MountEntry {
                bucket: bucket.map(String::from),
                profile: Some(profile.into()),
                ..entry("/b", "fs")
            }],
            vfs: Default::default(),
            cache: None,
        };
        assert!(with(Some("b"), "unixfs-v0-2015").validate().is_ok());
        let err = with(Some("b"), "nope").validate().unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
        let err = with(None, "ipfs-car").validate().unwrap_err().to_string();
        assert!(err.contains("only for buckets"), "{err}");
    }

    #[test]
    fn validate_rejects_duplicates_after_normalising() {
        let cfg = Config {
            mounts: vec![entry("/a/", "fs"), entry("//a", "fs")],
            vfs: Default::default(),
            cache: None,
        };
        assert!(cfg.validate().unwrap_err().to_string().contains("duplicate"));
    }

    #[test]
    fn validate_names_unknown_scheme_and_entry() {
        let cfg = Config {
            mounts: vec![entry("/x", "nosuch")],
            vfs: Default::default(),
            cache: None,
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("#0") && err.contains("/x") && err.contains("nosuch"),
            "{err}"
        );
    }

    #[test]
    fn validate_requires_fs_root() {
        let mut e = entry("/x", "fs");
        e.options.clear();
        let cfg = Config {
            mounts: vec![e],
            vfs: Default::default(),
            cache: None,
        };
        assert!(cfg.validate().unwrap_err().to_string().contains("root"));
    }

    #[test]
    fn parse_reads_the_documented_shape() {
        let cfg = Config::parse(
            "[[mount]]\npath = \"/local\"\nscheme = \"fs\"\nread_only = true\n[mount.options]\nroot = \"/srv\"\n",
        )
        .unwrap();
        assert_eq!(cfg.mounts.len(), 1);
        assert!(cfg.mounts[0].read_only);
        assert_eq!(cfg.mounts[0].options["root"], "/srv");
        cfg.validate().unwrap();
    }

    #[test]
    fn parse_rejects_unknown_keys() {
        assert!(Config::parse("[[mount]]\npath=\"/a\"\nschem=\"fs\"\n").is_err());
    }

    #[test]
    fn uri_shorthand_expands_to_scheme_and_options() {
        let e = MountEntry {
            path: "/s".into(),
            scheme: None,
            uri: Some("s3://bkt/pre/fix?region=eu&endpoint=http://h".into()),
            read_only: false,
            writes: None,
            options: Default::default(),
            bucket: None,
            profile: None,
        };
        let (s, o) = e.resolved().unwrap();
        assert_eq!(s, "s3");
        assert_eq!(o["bucket"], "bkt");
        assert_eq!(o["root"], "/pre/fix");
        assert_eq!(o["region"], "eu");
        let fs = MountEntry {
            uri: Some("fs:///srv/data".into()),
            ..e
        };
        assert_eq!(fs.resolved().unwrap().1["root"], "/srv/data");
    }

    #[test]
    fn hf_uri_names_type_repo_revision_and_root_as_the_hub_writes_them() {
        let at = |uri: &str| {
            MountEntry {
                path: "/h".into(),
                scheme: None,
                uri: Some(uri.into()),
                read_only: false,
                writes: None,
                options: Default::default(),
                bucket: None,
                profile: None,
            }
            .resolved()
        };
        let (s, o) =
            at("hf://datasets/org/set@refs%2Fconvert%2Fparquet/data/train?endpoint=http://h:1").unwrap();
        assert_eq!(s, "hf");
        assert_eq!(o["repo_type"], "dataset");
        assert_eq!(o["repo_id"], "org/set");
        assert_eq!(o["revision"], "refs/convert/parquet");
        assert_eq!(o["root"], "/data/train");
        assert_eq!(o["endpoint"], "http://h:1");
        let (_, o) = at("hf://org/model").unwrap();
        assert_eq!(o["repo_id"], "org/model");
        assert!(!o.contains_key("repo_type") && !o.contains_key("revision") && !o.contains_key("root"));
        assert!(at("hf://spaces/org@v1").unwrap_err().contains("ORG/NAME"));
    }

    #[test]
    fn normalize_rejects_dotdot_and_root() {
        assert!(normalize_mount_path("/a/../b").is_err());
        assert!(normalize_mount_path("/").is_err());
        assert!(normalize_mount_path("a").is_err());
        assert_eq!(normalize_mount_path("/a//b/").unwrap(), "/a/b");
    }
}
