//! Errors of the bucket layer: one enum, each variant naming the bucket or
//! file it is about, so a message on its own says what to fix.

use std::path::PathBuf;

/// What went wrong in a bucket operation.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("no bucket named {0:?}")]
    NoSuchBucket(String),
    #[error("bucket {0:?} exists already")]
    Exists(String),
    #[error("bad bucket name {0:?}: use letters, digits, '-', '_' and '.', not starting with '.'")]
    BadName(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{what} {path} is corrupt: {message}")]
    Corrupt {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{0} changed since it was read (another writer); nothing was overwritten")]
    Conflict(String),
    #[error("bucket {bucket:?}: {message}")]
    Failed { bucket: String, message: String },
    #[error(transparent)]
    Car(#[from] crate::car::CarError),
    #[error("reading {path} from the backend: {source}")]
    Backend {
        path: String,
        source: crate::vfs::VfsError,
    },
}

impl BucketError {
    /// An I/O error about `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BucketError {
        let path = path.into();
        move |source| BucketError::Io { path, source }
    }
}

/// Result of bucket operations.
pub type Result<T, E = BucketError> = std::result::Result<T, E>;
