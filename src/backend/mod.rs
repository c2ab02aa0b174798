//! Storage backends: the only module that speaks opendal.
//!
//! A [`Backend`] wraps one opendal `Operator` with the timeout and retry
//! layers, and offers the few path-based operations the filesystem needs, on
//! relative paths without a leading slash (`""` is the backend's root;
//! directories are addressed without a trailing slash, which is added here).
//! Everything opendal returns is turned into [`Meta`] and [`BackendError`], so
//! no opendal type leaves this module. Operations a service lacks (rename,
//! copy) are emulated here with the ones it has.

mod error;
#[cfg(feature = "hf")]
mod hf;
mod local;
mod memattrs;
mod s3copy;
mod s3meta;
mod stream;

use error::is_short_read;
pub use error::{BackendError, BackendErrorKind};

use bytes::Bytes;
use local::LocalRoot;
use memattrs::MemAttrs;
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{EntryMode, ErrorKind, Operator};
use s3copy::MetaCopier;
use s3meta::UserMeta;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};
pub use stream::StreamUpload;
use tokio::io::AsyncReadExt;

/// What a backend knows about a name. The POSIX fields are `None` where
/// the service stores no such thing (the core then shows defaults); build
/// values with `..Meta::default()` so new fields need no edits elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    pub is_dir: bool,
    pub size: u64,
    pub mtime: Option<SystemTime>,
    /// An opaque version (etag or version id) when the service has one.
    pub version: Option<String>,
    /// The whole `st_mode`: file type (`S_IFMT` bits) and permission bits.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<SystemTime>,
    /// Last change of the inode (`st_ctime`).
    pub ctime: Option<SystemTime>,
    /// Hard links (directories: 2 + subdirectories, as the host counts).
    pub nlink: Option<u32>,
    /// Device number of a device node.
    pub rdev: u64,
    /// 512-byte blocks allocated (`st_blocks`), where known.
    pub blocks: Option<u64>,
}

impl Meta {
    /// A directory with no known times (directory markers, synthetic prefixes).
    pub fn dir() -> Meta {
        Meta {
            is_dir: true,
            ..Meta::default()
        }
    }
}

/// Attribute changes a backend stores (`None`: leave as is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetMeta {
    /// Permission bits (`0o7777`).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
}

/// Size and free space of the storage under a backend (`statvfs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceInfo {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub frsize: u32,
    pub namelen: u32,
}

/// One configured storage service.
#[derive(Clone, Debug)]
pub struct Backend {
    op: Operator,
    scheme: String,
    native_rename: bool,
    native_copy: bool,
    if_match: bool,
    /// Writes can go up in several parts (multipart uploads).
    multipart: bool,
    /// The root directory of an `fs` service: opendal renames files only, so
    /// directories there are renamed with one `rename(2)`.
    fs_root: Option<LocalRoot>,
    /// Modes, owners, times and special entries of a `memory` service.
    mem: Option<std::sync::Arc<MemAttrs>>,
    /// An `s3` service: POSIX attributes live in object user metadata
    /// (`s3meta.rs`), changed by copies of an object onto itself.
    s3: Option<std::sync::Arc<MetaCopier>>,
}

/// Size of each piece streamed from a staged file to the service's writer:
/// large enough for S3 multipart parts (min 5 MiB), small enough to keep
/// memory flat.
const UPLOAD_CHUNK: usize = 8 << 20;
/// Parts uploaded at once where the service does multipart uploads.
const UPLOAD_CONCURRENCY: usize = 4;
/// Retries of a failed idempotent request before giving up (4 attempts).
const RETRY_TIMES: usize = 3;
/// First pause before a retry; it doubles per retry (0.2, 0.4, 0.8 s).
const RETRY_MIN_DELAY: Duration = Duration::from_millis(200);
/// Longest pause before a retry.
const RETRY_MAX_DELAY: Duration = Duration::from_millis(800);
/// Sum of the pauses of one call (0.2 + 0.4 + 0.8 s), for [`attempt_timeout`].
const RETRY_PAUSES: Duration = Duration::from_millis(1400);

/// The time one attempt gets, so that every attempt and pause of one call
/// fit in `io_timeout` (the documented bound of a backend call): the
/// timeout less the pauses, shared by the attempts, at least one second.
fn attempt_timeout(io_timeout: Duration) -> Duration {
    let attempts = RETRY_TIMES as u32 + 1;
    (io_timeout.saturating_sub(RETRY_PAUSES) / attempts).max(Duration::from_secs(1))
}

impl Backend {
    /// Builds the service `scheme` from `options` (as opendal names them).
    pub fn open(
        scheme: &str,
        options: &BTreeMap<String, String>,
        io_timeout: Duration,
    ) -> Result<Backend, BackendError> {
        let mut fs_root = None;
        if scheme == "fs" {
            if let Some(root) = options.get("root") {
                let cannot = |e: std::io::Error| {
                    BackendError::new(BackendErrorKind::Config, format!("cannot open root {root}: {e}"))
                };
                std::fs::create_dir_all(root).map_err(cannot)?;
                fs_root = Some(LocalRoot::open(Path::new(root)).map_err(cannot)?);
            }
        }
        install_tls_provider();
        let s3 = match scheme {
            "s3" => Some(std::sync::Arc::new(MetaCopier::new(options, io_timeout)?)),
            _ => None,
        };
        #[cfg(feature = "hf")]
        let options = &match scheme {
            "hf" => hf::options(options),
            _ => options.clone(),
        };
        let iter = options.iter().map(|(k, v)| (k.clone(), v.clone()));
        let op = Operator::via_iter(scheme, iter).map_err(BackendError::from)?;
        let attempt = attempt_timeout(io_timeout);
        let op = op
            .layer(TimeoutLayer::new().with_timeout(attempt).with_io_timeout(attempt))
            .layer(
                RetryLayer::new()
                    .with_max_times(RETRY_TIMES)
                    .with_min_delay(RETRY_MIN_DELAY)
                    .with_max_delay(RETRY_MAX_DELAY),
            );
        #[cfg(feature = "hf")]
        if scheme == "hf" {
            hf::check_repository(&op, options)?;
        }
        let cap = op.info().capability();
        Ok(Backend {
            scheme: scheme.to_string(),
            native_rename: cap.rename,
            native_copy: cap.copy,
            if_match: cap.read_with_if_match,
            multipart: cap.write_can_multi,
            fs_root,
            mem: (scheme == "memory").then(Default::default),
            s3,
            op,
        })
    }

    /// True for services whose data is on this machine already (fs, memory).
    pub fn is_local(&self) -> bool {
        matches!(self.scheme.as_str(), "fs" | "memory")
    }

    /// Where `path` lives on this machine, for a local directory backend
    /// (None too when a symlink is on the way or is `path` itself).
    pub fn local_path(&self, path: &str) -> Option<std::path::PathBuf> {
        self.fs_root.as_ref().and_then(|r| r.checked_path(path))
    }

    /// The backing file of `path` opened for direct writes, for a local
    /// directory (opened beneath its root, whatever the host path's length).
    pub fn open_local_rw(&self, path: &str, truncate: bool) -> Option<Result<std::fs::File, BackendError>> {
        self.fs_root.as_ref().map(|r| r.open_rw(path, truncate))
    }

    /// The existing backing file of `path` and its metadata, for a local
    /// directory (see `LocalRoot::open_existing`).
    pub fn open_local(&self, path: &str, write: bool) -> Option<Result<(std::fs::File, Meta), BackendError>> {
        self.fs_root.as_ref().map(|r| r.open_existing(path, write))
    }

    /// Whether the service stores modes, owners, times and special files
    /// ([`Backend::set_meta`], [`Backend::symlink`], ... work): a local
    /// directory on disk, `memory` in RAM, `s3` in object user metadata.
    pub fn stores_posix(&self) -> bool {
        self.fs_root.is_some() || self.mem.is_some() || self.s3.is_some()
    }

    /// Stores mode, owner and times of `path`.
    pub async fn set_meta(&self, path: &str, set: &SetMeta) -> Result<(), BackendError> {
        if let Some(mem) = &self.mem {
            self.stat(path).await?;
            mem.set(path, set);
            return Ok(());
        }
        if let Some(copier) = &self.s3 {
            if path.is_empty() {
                return Err(os_error(
                    libc::EPERM,
                    "the root of an S3 mount keeps no attributes",
                ));
            }
            return self.s3_set_meta(copier, path, set).await;
        }
        self.local()?.set_meta(path, set)
    }

    /// Creates the symlink `path` -> `target`.
    pub async fn symlink(&self, path: &str, target: &str) -> Result<(), BackendError> {
        if let Some(mem) = &self.mem {
            self.new_special(path).await?;
            mem.make(path, libc::S_IFLNK, Some(target.as_bytes().to_vec()));
            return Ok(());
        }
        if self.s3.is_some() {
            // s3fs's layout: the body is the target, the mode says symlink.
            self.absent(path).await?;
            let user = self.new_object_meta(libc::S_IFLNK | 0o777);
            self.op
                .write_with(path, target.as_bytes().to_vec())
                .user_metadata(user)
                .await?;
            return Ok(());
        }
        self.local()?.symlink(path, target)
    }

    /// The target of the symlink `path`.
    pub async fn readlink(&self, path: &str) -> Result<Vec<u8>, BackendError> {
        if let Some(mem) = &self.mem {
            return mem
                .target(path)
                .ok_or_else(|| os_error(libc::EINVAL, "not a symlink"));
        }
        if self.s3.is_some() {
            let meta = self.stat(path).await?;
            if meta.mode.map(|m| m & libc::S_IFMT) != Some(libc::S_IFLNK) {
                return Err(os_error(libc::EINVAL, "not a symlink"));
            }
            return Ok(self.op.read(path).await?.to_vec());
        }
        self.local()?.readlink(path)
    }

    /// A hard link `to` of the file `from`.
    pub async fn link(&self, from: &str, to: &str) -> Result<(), BackendError> {
        if self.mem.is_some() {
            return Err(os_error(libc::EPERM, "memory keeps no hard links"));
        }
        if self.s3.is_some() {
            return Err(os_error(libc::EPERM, "an S3 object has one name"));
        }
        self.local()?.link(from, to)
    }

    /// Creates a FIFO, socket or device node (`mode` carries the type).
    pub async fn mknod(&self, path: &str, mode: u32, rdev: u64) -> Result<(), BackendError> {
        if self.s3.is_some() {
            let kind = mode & libc::S_IFMT;
            if kind != libc::S_IFIFO && kind != libc::S_IFSOCK {
                return Err(os_error(libc::EPERM, "S3 keeps no device nodes"));
            }
            self.absent(path).await?;
            let user = self.new_object_meta(mode);
            self.op
                .write_with(path, Vec::<u8>::new())
                .user_metadata(user)
                .await?;
            return Ok(());
        }
        if let Some(mem) = &self.mem {
            let kind = mode & libc::S_IFMT;
            if kind != libc::S_IFIFO && kind != libc::S_IFSOCK {
                return Err(os_error(libc::EPERM, "memory keeps no device nodes"));
            }
            self.new_special(path).await?;
            mem.make(path, kind, None);
            return Ok(());
        }
        self.local()?.mknod(path, mode, rdev)
    }

    /// The empty object that stands for a special entry (EEXIST if taken).
    async fn new_special(&self, path: &str) -> Result<(), BackendError> {
        self.absent(path).await?;
        self.op.write(path, Vec::<u8>::new()).await?;
        Ok(())
    }

    /// EEXIST unless `path` is free.
    async fn absent(&self, path: &str) -> Result<(), BackendError> {
        match self.stat(path).await {
            Ok(_) => Err(os_error(libc::EEXIST, "exists")),
            Err(e) if e.kind == BackendErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The user metadata of a new S3 object of `mode` made by the daemon
    /// (its owner is set apart when another user creates it).
    fn new_object_meta(&self, mode: u32) -> UserMeta {
        let now = SystemTime::now();
        UserMeta::from([
            (s3meta::MODE.to_string(), mode.to_string()),
            (s3meta::MTIME.to_string(), s3meta::format_time(now)),
            (s3meta::CTIME.to_string(), s3meta::format_time(now)),
        ])
    }

    /// The user metadata of the object at `key` (no directory fallback),
    /// or None when there is no such object.
    async fn user_meta_of(&self, key: &str) -> Result<Option<(UserMeta, opendal::Metadata)>, BackendError> {
        match self.op.stat(key).await {
            Ok(m) => Ok(Some((user_meta(&m), m))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// What a new upload of `path` carries over from the object it
    /// replaces (mode, owner, other tools' keys; see [`s3meta::carried`]).
    async fn carried_meta(&self, path: &str) -> Result<Option<UserMeta>, BackendError> {
        if self.s3.is_none() {
            return Ok(None);
        }
        Ok(self.user_meta_of(path).await?.map(|(u, _)| s3meta::carried(&u)))
    }

    /// [`Backend::set_meta`] on S3: the object (or the directory's marker
    /// object, made when the directory is only a prefix) copied onto itself
    /// with the merged metadata.
    async fn s3_set_meta(&self, copier: &MetaCopier, path: &str, set: &SetMeta) -> Result<(), BackendError> {
        let file = self.user_meta_of(path).await?;
        let (key, user, content_type, modified, is_dir) = match file {
            Some((user, m)) => {
                let ct = m.content_type().map(str::to_string);
                (
                    path.to_string(),
                    user,
                    ct,
                    m.last_modified().map(SystemTime::from),
                    false,
                )
            }
            None => {
                let key = dir_key(path);
                let head = match copier.head(&key).await? {
                    Some(head) => head,
                    None => {
                        // A directory that is only a prefix gets a marker to hold its attributes.
                        if self.op.list_with(&key).limit(1).await?.is_empty() {
                            return Err(BackendError::new(
                                BackendErrorKind::NotFound,
                                format!("{path}: no such object"),
                            ));
                        }
                        self.op.create_dir(&key).await?;
                        s3copy::Head {
                            user: UserMeta::new(),
                            content_type: None,
                        }
                    }
                };
                (key, head.user, head.content_type, None, true)
            }
        };
        let mut now = Meta {
            is_dir,
            ..Meta::default()
        };
        s3meta::apply(&mut now, &user);
        let kind = match now.mode {
            Some(mode) => mode & libc::S_IFMT,
            None if is_dir => libc::S_IFDIR,
            None => libc::S_IFREG,
        };
        let new = s3meta::merged(&user, set, kind, modified, SystemTime::now());
        copier.replace(&key, content_type.as_deref(), &new).await
    }

    /// Size and free space of the storage, where the service knows them.
    pub fn space(&self) -> Option<SpaceInfo> {
        self.fs_root.as_ref().and_then(|r| r.space().ok())
    }

    fn local(&self) -> Result<&LocalRoot, BackendError> {
        self.fs_root.as_ref().ok_or_else(|| {
            BackendError::new(
                BackendErrorKind::Unsupported,
                format!("{} stores no modes, owners or special files", self.scheme),
            )
        })
    }

    /// The opendal scheme name.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Metadata of a file or directory; `""` is the root.
    pub async fn stat(&self, path: &str) -> Result<Meta, BackendError> {
        if let Some(root) = &self.fs_root {
            return root.stat(path);
        }
        if path.is_empty() {
            return Ok(Meta::dir());
        }
        let meta = self.stat_service(path).await?;
        Ok(match &self.mem {
            Some(mem) => mem.apply(path, meta),
            None => meta,
        })
    }

    /// Like [`Backend::stat`], and where one request can answer both, the
    /// whole object too when it is at most `max` bytes long. On S3 that is a
    /// ranged GET of its first `max` bytes in place of the HEAD: the answer
    /// carries the same headers (etag, size in `Content-Range`, user
    /// metadata) at the cost of one round trip, so a small file's later
    /// open and read need no request at all. Anything the GET cannot answer
    /// (no such object, a directory, an empty object, an error) is asked
    /// again the way [`Backend::stat`] asks, so nothing is answered
    /// differently from a stat.
    pub async fn stat_peek(&self, path: &str, max: u64) -> Result<(Meta, Option<Bytes>), BackendError> {
        if self.s3.is_some() && !path.is_empty() && max > 0 {
            match self.peek_object(path, max).await? {
                Peek::Object(meta, bytes) => return Ok((meta, bytes)),
                Peek::NoObject => return Ok((self.stat_dir(path).await?, None)),
                Peek::Unknown => {}
            }
        }
        Ok((self.stat(path).await?, None))
    }

    /// The S3 half of [`Backend::stat_peek`]. A failure a HEAD would meet
    /// as well (the server down or slow) is returned, so a dead backend
    /// costs one timeout, not two.
    async fn peek_object(&self, path: &str, max: u64) -> Result<Peek, BackendError> {
        use futures::TryStreamExt;
        // What a GET may refuse that a HEAD answers: a range of an empty
        // object (416), an archived object's bytes (403 InvalidObjectState).
        let sorted = |e: opendal::Error| match e.kind() {
            ErrorKind::NotFound => Ok(Peek::NoObject),
            ErrorKind::RangeNotSatisfied | ErrorKind::PermissionDenied => Ok(Peek::Unknown),
            _ => Err(BackendError::from(e)),
        };
        let reader = match self.op.reader(path).await {
            Ok(r) => r,
            Err(e) => return sorted(e),
        };
        let mut stream = match reader.clone().into_stream(0..max).await {
            Ok(s) => s,
            Err(e) => return sorted(e),
        };
        let mut got = bytes::BytesMut::new();
        loop {
            match stream.try_next().await {
                Ok(Some(buf)) => {
                    for chunk in buf {
                        got.extend_from_slice(&chunk);
                    }
                }
                Ok(None) => break,
                // An object shorter than `max`: the stream ends early, and
                // opendal says so at its end.
                Err(e) if e.kind() == ErrorKind::Unexpected && is_short_read(&e) => break,
                Err(e) => return sorted(e),
            }
        }
        let Some(m) = reader.metadata() else {
            return Ok(Peek::Unknown);
        };
        if m.mode() != EntryMode::FILE {
            return Ok(Peek::Unknown);
        }
        let meta = with_user_meta(to_meta(m), m);
        let whole = got.len() as u64 == meta.size;
        Ok(Peek::Object(meta, whole.then(|| got.freeze())))
    }

    async fn stat_service(&self, path: &str) -> Result<Meta, BackendError> {
        match self.op.stat(path).await {
            Ok(m) => Ok(with_user_meta(to_meta(&m), &m)),
            Err(e) if e.kind() == ErrorKind::NotFound => self.stat_dir(path).await,
            Err(e) => Err(e.into()),
        }
    }

    /// The stat of `path` on a service where no object has that exact name:
    /// a directory, if one is there.
    async fn stat_dir(&self, path: &str) -> Result<Meta, BackendError> {
        // Object stores keep directories as `dir/` markers or prefixes. On
        // S3 the marker's own HEAD carries the directory's attributes.
        if let Some(copier) = &self.s3 {
            if let Some(head) = copier.head(&dir_key(path)).await? {
                let mut meta = Meta::dir();
                s3meta::apply(&mut meta, &head.user);
                return Ok(meta);
            }
        }
        let m = self.op.stat(&dir_key(path)).await?;
        let meta = Meta {
            is_dir: true,
            ..to_meta(&m)
        };
        Ok(with_user_meta(meta, &m))
    }

    /// The entries directly inside a directory, sorted by name, each with
    /// the metadata a stat of it gives (see [`Backend::lists_full_meta`]).
    pub async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, BackendError> {
        let mut out = match &self.fs_root {
            Some(root) => root.list(path).await?,
            None => self.list_service(path).await?,
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        if let Some(mem) = &self.mem {
            for (name, meta) in out.iter_mut() {
                let p = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}/{name}")
                };
                *meta = mem.apply(&p, std::mem::take(meta));
            }
        }
        Ok(out)
    }

    /// Whether [`Backend::list`] gives each entry the size and modification
    /// time a stat of it would, so a listing may answer lookups. True for
    /// `fs` (lists through [`LocalRoot::list`]) and `memory` (keeps no times,
    /// and opendal stats each listed file for its size), and `hf`, which
    /// lists with `expand=True` and so gives what its stat (paths-info, also
    /// expanded) gives. Not `s3`: listings carry sizes, times and etags but
    /// no user metadata, where modes, owners and times are kept, so each name
    /// is stat'ed (HEAD). A service added later must be checked before it is
    /// named here.
    pub fn lists_full_meta(&self) -> bool {
        matches!(self.scheme.as_str(), "fs" | "memory" | "hf")
    }

    /// [`Backend::list`] through the opendal service (unsorted).
    async fn list_service(&self, path: &str) -> Result<Vec<(String, Meta)>, BackendError> {
        let key = dir_key(path);
        let entries = self.op.list(&key).await?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let (p, m) = e.into_parts();
            if p == key || p == "/" || p.is_empty() {
                continue;
            }
            let name = p.strip_prefix(&key).unwrap_or(&p).trim_end_matches('/');
            if name.is_empty() || name.contains('/') {
                continue;
            }
            let mut meta = to_meta(&m);
            meta.is_dir |= p.ends_with('/');
            out.push((name.to_string(), meta));
        }
        Ok(out)
    }

    /// Reads `len` bytes at `offset` (fewer at the end of the object).
    pub async fn read(&self, path: &str, offset: u64, len: u64) -> Result<Bytes, BackendError> {
        self.read_if_match(path, offset, len, None).await
    }

    /// Like [`Backend::read`]; with `version` (an etag) the service refuses to
    /// serve another version, where it supports conditional reads.
    pub async fn read_if_match(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        version: Option<&str>,
    ) -> Result<Bytes, BackendError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        if let Some(root) = &self.fs_root {
            return root.read(path, offset, len).map(Bytes::from);
        }
        let mut req = self.op.read_with(path).range(offset..offset + len);
        if let (Some(v), true) = (version, self.if_match) {
            req = req.if_match(v);
        }
        match req.await {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) if is_short_read(&e) => {
                // Services refuse a range past the end; a filesystem read
                // there is short or empty, so clamp to the size and retry.
                let size = self.op.stat(path).await?.content_length();
                if offset >= size {
                    return Ok(Bytes::new());
                }
                let end = size.min(offset + len);
                Ok(self.op.read_with(path).range(offset..end).await?.to_bytes())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Streams a local file to `path`, replacing what was there.
    pub async fn upload(&self, path: &str, file: &Path) -> Result<u64, BackendError> {
        if let Some(root) = &self.fs_root {
            return root.replace(path, file).await;
        }
        let mut f = tokio::fs::File::open(file).await.map_err(|e| {
            BackendError::new(
                BackendErrorKind::Other,
                format!("staged file {}: {e}", file.display()),
            )
        })?;
        let mut w = self
            .op
            .writer_with(path)
            .chunk(UPLOAD_CHUNK)
            .concurrent(UPLOAD_CONCURRENCY);
        if let Some(user) = self.carried_meta(path).await? {
            w = w.user_metadata(user);
        }
        let mut w = w.await?;
        let mut total = 0u64;
        loop {
            let mut buf = Vec::with_capacity(UPLOAD_CHUNK);
            let n = (&mut f)
                .take(UPLOAD_CHUNK as u64)
                .read_to_end(&mut buf)
                .await
                .map_err(|e| BackendError::new(BackendErrorKind::Other, format!("reading staged file: {e}")));
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(e);
                }
            };
            if n == 0 {
                break;
            }
            total += n as u64;
            if let Err(e) = w.write(buf).await {
                let _ = w.abort().await;
                return Err(e.into());
            }
        }
        w.close().await?;
        if let Some(mem) = &self.mem {
            mem.touched(path);
        }
        Ok(total)
    }

    /// Writes an empty object (a new, empty file).
    pub async fn write_empty(&self, path: &str) -> Result<(), BackendError> {
        if let Some(root) = &self.fs_root {
            return root.create_empty(path).await;
        }
        self.op.write(path, Vec::<u8>::new()).await?;
        if let Some(mem) = &self.mem {
            mem.touched(path);
            mem.touched_parent(path);
        }
        Ok(())
    }

    /// Makes what was uploaded to `path` durable. Object stores are durable
    /// once a write returns; a local directory needs an fsync.
    pub async fn sync(&self, path: &str) -> Result<(), BackendError> {
        match &self.fs_root {
            Some(root) => root.sync(path).await,
            None => Ok(()),
        }
    }

    /// Creates a directory (a marker object where the service has no
    /// directories); a local directory gets `mode` (before the umask).
    pub async fn create_dir(&self, path: &str) -> Result<(), BackendError> {
        self.create_dir_mode(path, 0o755).await
    }

    /// [`Backend::create_dir`] with the mode a local directory gets.
    pub async fn create_dir_mode(&self, path: &str, mode: u32) -> Result<(), BackendError> {
        if let Some(root) = &self.fs_root {
            return root.mkdir(path, mode);
        }
        self.op.create_dir(&dir_key(path)).await?;
        if let Some(mem) = &self.mem {
            mem.touched(path);
            mem.touched_parent(path);
        }
        Ok(())
    }

    /// Deletes a file (or a symlink or special file, where there are such).
    pub async fn delete_file(&self, path: &str) -> Result<(), BackendError> {
        if let Some(root) = &self.fs_root {
            return root.remove(path, false);
        }
        self.op.delete(path).await?;
        if let Some(mem) = &self.mem {
            mem.remove(path);
        }
        Ok(())
    }

    /// Deletes an empty directory (the caller checks emptiness).
    pub async fn delete_dir(&self, path: &str) -> Result<(), BackendError> {
        if let Some(root) = &self.fs_root {
            return root.remove(path, true);
        }
        self.op.delete(&dir_key(path)).await?;
        if let Some(mem) = &self.mem {
            mem.remove(path);
        }
        Ok(())
    }

    /// Renames a file, replacing `to` if it exists.
    pub async fn rename_file(&self, from: &str, to: &str) -> Result<(), BackendError> {
        if let Some(root) = &self.fs_root {
            return root.rename(from, to).await;
        }
        if self.native_rename {
            self.op.rename(from, to).await?;
            return Ok(());
        }
        if self.native_copy {
            self.op.copy(from, to).await?;
        } else {
            let data = self.op.read(from).await?;
            self.op.write(to, data).await?;
        }
        self.op.delete(from).await?;
        if let Some(mem) = &self.mem {
            mem.rename(from, to);
        }
        Ok(())
    }

    /// Renames a directory and everything under it (`to` must not exist or be empty).
    pub async fn rename_dir(&self, from: &str, to: &str) -> Result<(), BackendError> {
        if let Some(root) = &self.fs_root {
            return root.rename(from, to).await;
        }
        let src = dir_key(from);
        let dst = dir_key(to);
        self.op.create_dir(&dst).await?;
        let entries = self.op.list_with(&src).recursive(true).await?;
        for e in &entries {
            let rel = &e.path()[src.len().min(e.path().len())..];
            if rel.is_empty() {
                continue;
            }
            let target = format!("{dst}{rel}");
            if e.path().ends_with('/') {
                self.op.create_dir(&target).await?;
            } else if self.native_copy {
                self.op.copy(e.path(), &target).await?;
            } else {
                let data = self.op.read(e.path()).await?;
                self.op.write(&target, data).await?;
            }
        }
        self.op.delete_with(&src).recursive(true).await?;
        if let Some(mem) = &self.mem {
            mem.rename(from, to);
        }
        Ok(())
    }
}

/// An error carrying the errno a local filesystem would give.
fn os_error(errno: i32, what: &str) -> BackendError {
    let mut e = BackendError::new(BackendErrorKind::Other, what);
    e.errno = Some(errno);
    e
}

/// Installs, once per process, rustls's crypto provider (ring) and opendal's
/// HTTP transport (reqwest), which HTTP services such as S3 need.
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        match reqwest::Client::builder().build() {
            Ok(client) => opendal::HttpTransporter::install_default(
                opendal_http_transport_reqwest::ReqwestTransport::new(client),
            ),
            Err(e) => tracing::error!(error = %e, "cannot build the HTTP client; HTTP backends will fail"),
        }
    });
}

fn dir_key(path: &str) -> String {
    if path.is_empty() {
        "/".to_string()
    } else {
        format!("{}/", path.trim_end_matches('/'))
    }
}

/// The user metadata of an object, keys lower case without the prefix.
fn user_meta(m: &opendal::Metadata) -> UserMeta {
    m.user_metadata()
        .map(|u| {
            u.into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// `meta` with the POSIX attributes kept in the object's user metadata
/// (S3, see `s3meta.rs`); other services carry none.
fn with_user_meta(mut meta: Meta, m: &opendal::Metadata) -> Meta {
    if m.user_metadata().is_some() {
        s3meta::apply(&mut meta, &user_meta(m));
    }
    meta
}

/// What a peek (see [`Backend::stat_peek`]) found.
enum Peek {
    /// The object, and its bytes when it was no longer than asked.
    Object(Meta, Option<Bytes>),
    /// No object has that name (it may still be a directory).
    NoObject,
    /// No answer to rely on: stat the usual way.
    Unknown,
}

fn to_meta(m: &opendal::Metadata) -> Meta {
    Meta {
        is_dir: m.mode() == EntryMode::DIR,
        size: if m.mode() == EntryMode::DIR {
            0
        } else {
            m.content_length()
        },
        mtime: m.last_modified().map(SystemTime::from),
        version: m.etag().or(m.version()).map(str::to_string),
        ..Meta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> Backend {
        Backend::open("memory", &BTreeMap::new(), Duration::from_secs(5)).unwrap()
    }

    #[tokio::test]
    async fn read_past_end_returns_the_short_tail() {
        let d = tempfile::tempdir().unwrap();
        let opts = BTreeMap::from([("root".to_string(), d.path().display().to_string())]);
        for b in [mem(), Backend::open("fs", &opts, Duration::from_secs(5)).unwrap()] {
            b.op.write("f", b"hello".to_vec()).await.unwrap();
            assert_eq!(
                &b.read("f", 0, 4096).await.unwrap()[..],
                b"hello",
                "{}",
                b.scheme()
            );
            assert_eq!(&b.read("f", 3, 4096).await.unwrap()[..], b"lo");
            assert!(b.read("f", 10, 4096).await.unwrap().is_empty());
        }
    }
}

#[cfg(test)]
mod stat_tests {
    use super::*;

    #[tokio::test]
    async fn directories_stat_and_rename_without_a_trailing_slash() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("q")).unwrap();
        let opts = BTreeMap::from([("root".to_string(), d.path().display().to_string())]);
        let fsb = Backend::open("fs", &opts, Duration::from_secs(5)).unwrap();
        assert!(fsb.stat("q").await.unwrap().is_dir);
        std::fs::write(d.path().join("q/f"), b"x").unwrap();
        fsb.rename_dir("q", "r").await.unwrap();
        assert!(fsb.stat("r").await.unwrap().is_dir);
        assert_eq!(fsb.read("r/f", 0, 10).await.unwrap().as_ref(), b"x");
        let mem = Backend::open("memory", &BTreeMap::new(), Duration::from_secs(5)).unwrap();
        mem.create_dir("q").await.unwrap();
        assert!(mem.stat("q").await.unwrap().is_dir);
    }

    #[tokio::test]
    async fn local_listing_gives_what_stat_gives_and_shows_symlinks_as_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/f"), vec![7u8; 5000]).unwrap();
        std::fs::write(d.path().join("empty"), b"").unwrap();
        std::os::unix::fs::symlink("sub/f", d.path().join("link")).unwrap();
        std::os::unix::fs::symlink("nowhere", d.path().join("dangling")).unwrap();
        let opts = BTreeMap::from([("root".to_string(), d.path().display().to_string())]);
        let fsb = Backend::open("fs", &opts, Duration::from_secs(5)).unwrap();
        for dir in ["", "sub"] {
            let listed = fsb.list(dir).await.unwrap();
            for (name, meta) in &listed {
                let path = join(dir, name);
                assert_eq!(meta, &fsb.stat(&path).await.unwrap(), "{path}");
            }
            let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
            let want: &[&str] = if dir.is_empty() {
                &["dangling", "empty", "link", "sub"]
            } else {
                &["f"]
            };
            assert_eq!(names, want);
        }
        assert_eq!(fsb.list("sub").await.unwrap()[0].1.size, 5000);
        let link = fsb.stat("link").await.unwrap();
        assert_eq!(link.mode.unwrap() & libc::S_IFMT, libc::S_IFLNK);
        assert_eq!(link.size, 5, "a symlink's size is its target's length");
        assert_eq!(fsb.readlink("link").await.unwrap(), b"sub/f");
        assert!(fsb.list("missing").await.unwrap().is_empty());
    }

    fn join(dir: &str, name: &str) -> String {
        if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        }
    }
}
