//! Fast paths for the `fs` scheme, where the backend is a local directory.
//!
//! opendal's fs writer fsyncs every file on close (milliseconds per small
//! file) and renames files only. Here a local backend behaves like a local
//! filesystem: close hands data to the kernel, `fsync` makes it durable, and
//! directories rename with one `rename(2)`. Paths are relative names that the
//! core has validated (no `..`, no empty components).
//!
//! `stat` runs its one `stat(2)` on the calling thread: the core's file
//! operations run on FUSE worker threads (see `fuse/`), and handing a
//! microsecond syscall to a blocking pool costs more than the call (it was
//! most of a lookup). The timeout layer does not cover it, as no timeout
//! covers a local filesystem's own calls.
//!
//! Listings carry the same metadata a stat of each name gives (symlinks
//! followed, like opendal's fs stat), read in one blocking task: opendal's
//! lister hands every entry to the blocking pool twice (type, then
//! metadata) and stats symlinks a third time.

use super::{BackendError, BackendErrorKind, Meta};
use std::path::{Path, PathBuf};

/// A local directory used as a backend.
#[derive(Debug, Clone)]
pub struct LocalRoot(pub PathBuf);

impl LocalRoot {
    /// Replaces `path` with a copy of `staged`, atomically (a temporary file
    /// in the same directory, then `rename(2)`), so readers never see a half
    /// written file.
    pub async fn replace(&self, path: &str, staged: &Path) -> Result<u64, BackendError> {
        let target = self.0.join(path);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = target.with_file_name(format!(".{name}.ikf-{}", uuid::Uuid::new_v4().simple()));
        let copied = match tokio::fs::copy(staged, &tmp).await {
            Ok(n) => n,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(io_error(path, e));
            }
        };
        if let Err(e) = tokio::fs::rename(&tmp, &target).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_error(path, e));
        }
        Ok(copied)
    }

    /// Metadata of `path` (following symlinks, as opendal's fs service does).
    pub fn stat(&self, path: &str) -> Result<Meta, BackendError> {
        let m = std::fs::metadata(self.0.join(path)).map_err(|e| io_error(path, e))?;
        Ok(meta_of(&m))
    }

    /// Creates (or truncates) an empty file.
    pub async fn create_empty(&self, path: &str) -> Result<(), BackendError> {
        tokio::fs::File::create(self.0.join(path))
            .await
            .map_err(|e| io_error(path, e))?;
        Ok(())
    }

    /// fsyncs a file.
    pub async fn sync(&self, path: &str) -> Result<(), BackendError> {
        let f = tokio::fs::File::open(self.0.join(path))
            .await
            .map_err(|e| io_error(path, e))?;
        f.sync_all().await.map_err(|e| io_error(path, e))
    }

    /// The entries of the directory `path` with their metadata, unsorted.
    /// A missing directory lists empty (as opendal's lister does); a name
    /// that vanishes while listed, or a dangling symlink, is left out (its
    /// stat would say it does not exist).
    pub async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, BackendError> {
        let dir = self.0.join(path);
        tokio::task::spawn_blocking(move || list_dir(&dir))
            .await
            .map_err(|e| BackendError::new(BackendErrorKind::Other, format!("listing {path}: {e}")))?
            .map_err(|e| io_error(path, e))
    }

    /// Renames a file or directory.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), BackendError> {
        tokio::fs::rename(self.0.join(from), self.0.join(to))
            .await
            .map_err(|e| io_error(&format!("{from} -> {to}"), e))
    }
}

fn list_dir(dir: &Path) -> std::io::Result<Vec<(String, Meta)>> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if gone(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        // fstatat relative to the open directory; only a symlink needs a
        // second, path-based stat to reach its target.
        let md = match entry.metadata() {
            Ok(md) if md.file_type().is_symlink() => std::fs::metadata(entry.path()),
            other => other,
        };
        match md {
            Ok(md) => out.push((entry.file_name().to_string_lossy().into_owned(), meta_of(&md))),
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// What `Backend::stat` reports for a local file: directories and special
/// files have size 0, nothing has a version.
fn meta_of(md: &std::fs::Metadata) -> Meta {
    Meta {
        is_dir: md.is_dir(),
        size: if md.is_file() { md.len() } else { 0 },
        mtime: md.modified().ok(),
        version: None,
    }
}

fn io_error(what: &str, e: std::io::Error) -> BackendError {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => BackendErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => BackendErrorKind::PermissionDenied,
        std::io::ErrorKind::AlreadyExists => BackendErrorKind::AlreadyExists,
        std::io::ErrorKind::IsADirectory => BackendErrorKind::IsDir,
        std::io::ErrorKind::NotADirectory => BackendErrorKind::NotDir,
        _ => BackendErrorKind::Other,
    };
    BackendError::new(kind, format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replace_swaps_content_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let root = LocalRoot(d.path().to_path_buf());
        std::fs::write(d.path().join("f"), b"old").unwrap();
        let staged = d.path().join("staged");
        std::fs::write(&staged, b"new content").unwrap();
        assert_eq!(root.replace("f", &staged).await.unwrap(), 11);
        assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"new content");
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        root.sync("f").await.unwrap();
    }

    #[tokio::test]
    async fn missing_parent_is_not_found() {
        let d = tempfile::tempdir().unwrap();
        let root = LocalRoot(d.path().to_path_buf());
        let e = root.create_empty("no/such").await.unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::NotFound);
    }
}
