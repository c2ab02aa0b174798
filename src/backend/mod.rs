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

pub use error::{BackendError, BackendErrorKind};

use bytes::Bytes;
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{EntryMode, ErrorKind, Operator};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncReadExt;

/// What a backend knows about a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub is_dir: bool,
    pub size: u64,
    pub mtime: Option<SystemTime>,
    /// An opaque version (etag or version id) when the service has one.
    pub version: Option<String>,
}

impl Meta {
    /// A directory with no known times (directory markers, synthetic prefixes).
    pub fn dir() -> Meta {
        Meta {
            is_dir: true,
            size: 0,
            mtime: None,
            version: None,
        }
    }
}

/// One configured storage service.
#[derive(Clone, Debug)]
pub struct Backend {
    op: Operator,
    scheme: String,
    native_rename: bool,
    native_copy: bool,
}

/// Size of each piece streamed from a staged file to the service's writer:
/// large enough for S3 multipart parts (min 5 MiB), small enough to keep
/// memory flat.
const UPLOAD_CHUNK: usize = 8 << 20;
/// Parts uploaded at once where the service does multipart uploads.
const UPLOAD_CONCURRENCY: usize = 4;
/// Attempts for a failed idempotent request before giving up.
const RETRY_TIMES: usize = 3;

impl Backend {
    /// Builds the service `scheme` from `options` (as opendal names them).
    pub fn open(
        scheme: &str,
        options: &BTreeMap<String, String>,
        io_timeout: Duration,
    ) -> Result<Backend, BackendError> {
        if scheme == "fs" {
            if let Some(root) = options.get("root") {
                std::fs::create_dir_all(root).map_err(|e| {
                    BackendError::new(
                        BackendErrorKind::Config,
                        format!("cannot create root {root}: {e}"),
                    )
                })?;
            }
        }
        let iter = options.iter().map(|(k, v)| (k.clone(), v.clone()));
        let op = Operator::via_iter(scheme, iter).map_err(BackendError::from)?;
        let op = op
            .layer(
                TimeoutLayer::new()
                    .with_timeout(io_timeout)
                    .with_io_timeout(io_timeout),
            )
            .layer(RetryLayer::new().with_max_times(RETRY_TIMES));
        let cap = op.info().capability();
        Ok(Backend {
            scheme: scheme.to_string(),
            native_rename: cap.rename,
            native_copy: cap.copy,
            op,
        })
    }

    /// The opendal scheme name.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Metadata of a file or directory; `""` is the root.
    pub async fn stat(&self, path: &str) -> Result<Meta, BackendError> {
        if path.is_empty() {
            return Ok(Meta::dir());
        }
        match self.op.stat(path).await {
            Ok(m) => return Ok(to_meta(&m)),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let m = self.op.stat(&dir_key(path)).await?;
        Ok(Meta {
            is_dir: true,
            ..to_meta(&m)
        })
    }

    /// The entries directly inside a directory, sorted by name.
    pub async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, BackendError> {
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
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }

    /// Reads `len` bytes at `offset` (fewer at the end of the object).
    pub async fn read(&self, path: &str, offset: u64, len: u64) -> Result<Bytes, BackendError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        match self.op.read_with(path).range(offset..offset + len).await {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) if e.kind() == ErrorKind::RangeNotSatisfied => {
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
            .concurrent(UPLOAD_CONCURRENCY)
            .await?;
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
        Ok(total)
    }

    /// Writes an empty object (a new, empty file).
    pub async fn write_empty(&self, path: &str) -> Result<(), BackendError> {
        self.op.write(path, Vec::<u8>::new()).await?;
        Ok(())
    }

    /// Creates a directory (a marker object where the service has no directories).
    pub async fn create_dir(&self, path: &str) -> Result<(), BackendError> {
        self.op.create_dir(&dir_key(path)).await?;
        Ok(())
    }

    /// Deletes a file.
    pub async fn delete_file(&self, path: &str) -> Result<(), BackendError> {
        self.op.delete(path).await?;
        Ok(())
    }

    /// Deletes an empty directory (the caller checks emptiness).
    pub async fn delete_dir(&self, path: &str) -> Result<(), BackendError> {
        self.op.delete(&dir_key(path)).await?;
        Ok(())
    }

    /// Renames a file, replacing `to` if it exists.
    pub async fn rename_file(&self, from: &str, to: &str) -> Result<(), BackendError> {
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
        Ok(())
    }

    /// Renames a directory and everything under it (`to` must not exist or be empty).
    pub async fn rename_dir(&self, from: &str, to: &str) -> Result<(), BackendError> {
        if self.native_rename {
            // opendal's rename refuses paths ending in '/', but services with
            // a native rename (fs) move directories given their bare paths.
            self.op.rename(from, to).await?;
            return Ok(());
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
        Ok(())
    }
}

fn dir_key(path: &str) -> String {
    if path.is_empty() {
        "/".to_string()
    } else {
        format!("{}/", path.trim_end_matches('/'))
    }
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
