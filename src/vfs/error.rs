//! Errors of the virtual tree layer.

use crate::backend::BackendError;

/// What a tree operation can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VfsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("read-only")]
    ReadOnly,
    #[error("directory not empty")]
    NotEmpty,
    #[error("already exists")]
    Exists,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("crosses mounts")]
    CrossDevice,
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    #[error("name too long")]
    NameTooLong,
    #[error("the object changed while it was being read")]
    Changed,
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
}
