//! Errors of the IPFS trees, and how they reach the filesystem core.
//!
//! A name missing from a directory is ENOENT; everything about blocks (no
//! source answered, a block that does not hash to its CID, a block that does
//! not decode) is EIO, so tools never read "gone" into a transport failure.

use crate::backend::{BackendError, BackendErrorKind};
use crate::vfs::VfsError;

/// What reading IPFS content can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IpfsError {
    /// The mount's options are wrong (no source, a bad CID, an unreadable CAR).
    #[error("{0}")]
    Config(String),
    /// A source served bytes that do not hash to the CID asked for.
    #[error("block {cid} from {origin}: bytes do not match the CID")]
    HashMismatch { cid: String, origin: String },
    /// No source could deliver the block.
    #[error("block {cid}: {message}")]
    Unavailable { cid: String, message: String },
    /// Every source that was asked ran out of time.
    #[error("block {cid}: timed out ({message})")]
    TimedOut { cid: String, message: String },
    /// A verified block that is not the UnixFS the path needs.
    #[error("block {cid}: {message}")]
    Malformed { cid: String, message: String },
    /// No entry of that name.
    #[error("no such entry")]
    NotFound,
    /// A path goes through something that is not a directory.
    #[error("not a directory")]
    NotDir,
    /// A directory was read as a file.
    #[error("is a directory")]
    IsDir,
}

impl From<IpfsError> for VfsError {
    fn from(e: IpfsError) -> Self {
        match e {
            IpfsError::NotFound => VfsError::NotFound,
            IpfsError::NotDir => VfsError::NotDir,
            IpfsError::IsDir => VfsError::IsDir,
            IpfsError::TimedOut { .. } => {
                VfsError::Backend(BackendError::new(BackendErrorKind::TimedOut, e.to_string()))
            }
            IpfsError::Config(_)
            | IpfsError::HashMismatch { .. }
            | IpfsError::Unavailable { .. }
            | IpfsError::Malformed { .. } => {
                VfsError::Backend(BackendError::new(BackendErrorKind::Other, e.to_string()))
            }
        }
    }
}
