//! The one errno table: every error the core can return, mapped to the
//! errno the kernel gets, with the level it is logged at.
//!
//! Unknown backend errors map to EIO, never ENOENT: tools read ENOENT as
//! "gone" and would act on it.

use crate::backend::BackendErrorKind;
use crate::vfs::VfsError;

/// Errors of the filesystem core.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error(transparent)]
    Vfs(#[from] VfsError),
    #[error("unknown inode {0}")]
    StaleInode(u64),
    #[error("unknown file handle {0}")]
    BadHandle(u64),
    #[error("staging: {0}")]
    Staging(#[from] std::io::Error),
    #[error("cache: {0}")]
    Cache(#[from] crate::cache::CacheError),
    #[error("operation not supported")]
    NotSupported,
    #[error("permission denied")]
    Permission,
    /// The place cannot hold what was asked (a symlink, hard link or
    /// special file on a tree that stores none).
    #[error("operation not permitted here")]
    NotPermitted,
    #[error("upload of {path} failed, data kept in {staged}: {source}")]
    Upload {
        path: String,
        staged: String,
        source: VfsError,
    },
}

impl FsError {
    /// The errno the kernel receives.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::Vfs(v) => vfs_errno(v),
            FsError::StaleInode(_) => libc::ESTALE,
            FsError::BadHandle(_) => libc::EBADF,
            FsError::Staging(e) => match e.raw_os_error() {
                Some(libc::ENOSPC) => libc::ENOSPC,
                Some(libc::EDQUOT) => libc::EDQUOT,
                _ => libc::EIO,
            },
            FsError::Cache(_) => libc::EIO,
            FsError::NotSupported => libc::ENOTSUP,
            FsError::Permission => libc::EACCES,
            FsError::NotPermitted => libc::EPERM,
            FsError::Upload { .. } => libc::EIO,
        }
    }

    /// True for errors that are normal traffic (a lookup that misses), which
    /// are logged at debug level; everything else is a warning.
    pub fn is_routine(&self) -> bool {
        matches!(
            self,
            FsError::Vfs(
                VfsError::NotFound
                    | VfsError::Exists
                    | VfsError::NotEmpty
                    | VfsError::ReadOnly
                    | VfsError::CrossDevice
                    | VfsError::NotDir
                    | VfsError::IsDir
                    | VfsError::NameTooLong
            ) | FsError::Permission
                | FsError::NotPermitted
                | FsError::NotSupported
        ) || matches!(self, FsError::Vfs(VfsError::Backend(b)) if b.errno.is_some_and(user_errno))
    }
}

/// Host errnos of a local directory that answer what the user asked for
/// (permissions, names, limits), not a fault of the backend.
fn user_errno(n: i32) -> bool {
    [
        libc::EACCES,
        libc::EPERM,
        libc::ELOOP,
        libc::ENAMETOOLONG,
        libc::EMLINK,
        libc::ENOTEMPTY,
        libc::EEXIST,
        libc::EINVAL,
        libc::EXDEV,
        libc::ENOTDIR,
        libc::EISDIR,
        libc::ENOENT,
        libc::EOPNOTSUPP,
    ]
    .contains(&n)
}

fn vfs_errno(e: &VfsError) -> i32 {
    match e {
        VfsError::NotFound => libc::ENOENT,
        VfsError::ReadOnly => libc::EROFS,
        VfsError::NotEmpty => libc::ENOTEMPTY,
        VfsError::Exists => libc::EEXIST,
        VfsError::NotDir => libc::ENOTDIR,
        VfsError::IsDir => libc::EISDIR,
        VfsError::CrossDevice => libc::EXDEV,
        VfsError::Invalid(_) => libc::EINVAL,
        VfsError::NameTooLong => libc::ENAMETOOLONG,
        VfsError::Changed => libc::ESTALE,
        VfsError::Backend(b) if b.errno.is_some() => b.errno.unwrap_or(libc::EIO),
        VfsError::Backend(b) => match b.kind {
            BackendErrorKind::NotFound => libc::ENOENT,
            BackendErrorKind::AlreadyExists => libc::EEXIST,
            BackendErrorKind::PermissionDenied => libc::EACCES,
            BackendErrorKind::IsDir => libc::EISDIR,
            BackendErrorKind::NotDir => libc::ENOTDIR,
            BackendErrorKind::Changed => libc::ESTALE,
            BackendErrorKind::Unsupported => libc::ENOTSUP,
            BackendErrorKind::TimedOut => libc::ETIMEDOUT,
            BackendErrorKind::NameTooLong => libc::ENAMETOOLONG,
            BackendErrorKind::RateLimited => libc::EAGAIN,
            BackendErrorKind::Config => libc::EIO,
            BackendErrorKind::Other => libc::EIO,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendError;

    #[test]
    fn unknown_backend_error_maps_to_eio_not_enoent() {
        let e = FsError::Vfs(VfsError::Backend(BackendError::new(
            BackendErrorKind::Other,
            "boom",
        )));
        assert_eq!(e.errno(), libc::EIO);
        assert!(!e.is_routine());
    }

    #[test]
    fn timeouts_map_to_etimedout() {
        let e = FsError::Vfs(VfsError::Backend(BackendError::new(
            BackendErrorKind::TimedOut,
            "slow",
        )));
        assert_eq!(e.errno(), libc::ETIMEDOUT);
    }

    #[test]
    fn read_only_maps_to_erofs_and_is_routine() {
        let e = FsError::Vfs(VfsError::ReadOnly);
        assert_eq!(e.errno(), libc::EROFS);
        assert!(e.is_routine());
    }

    #[test]
    fn a_local_directory_errno_passes_through() {
        let mut b = BackendError::new(BackendErrorKind::Other, "loop");
        b.errno = Some(libc::ELOOP);
        let e = FsError::Vfs(VfsError::Backend(b));
        assert_eq!(e.errno(), libc::ELOOP);
        assert!(e.is_routine());
    }

    #[test]
    fn full_staging_disk_maps_to_enospc() {
        let e = FsError::Staging(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(e.errno(), libc::ENOSPC);
    }
}
