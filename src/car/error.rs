//! The one error type of the `car` module.
//!
//! Every failure on bad input (a truncated CAR, a wrong hash, a malformed
//! dag-pb node, an absurd length) becomes a [`CarError`] naming where it was
//! found; nothing in `car/` panics on input.

use std::path::PathBuf;

/// Errors from building DAGs and reading or writing CAR files.
#[derive(Debug, thiserror::Error)]
pub enum CarError {
    /// An I/O error with no better context.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Path {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Bytes that do not decode as the format expected.
    #[error("malformed {what} at byte {offset}: {reason}")]
    Malformed {
        /// What was being decoded (e.g. "CAR header", "dag-pb node").
        what: &'static str,
        /// Byte offset of the problem (in the CAR file, or in the block).
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A block whose bytes do not hash to its CID.
    #[error("block {index} at byte {offset}: bytes do not match CID {cid}")]
    HashMismatch {
        /// 0-based position of the block in the CAR.
        index: u64,
        /// Byte offset of the block's section in the CAR.
        offset: u64,
        /// The CID the section claims.
        cid: String,
    },
    /// A block a DAG walk needs is not in the CAR.
    #[error("block {0} is not in the CAR")]
    MissingBlock(String),
    /// Input that is well-formed but outside what we support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A bad argument (profile name, entry name, size).
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl CarError {
    /// Shorthand for [`CarError::Malformed`].
    pub(crate) fn malformed(what: &'static str, offset: u64, reason: impl Into<String>) -> Self {
        CarError::Malformed {
            what,
            offset,
            reason: reason.into(),
        }
    }

    /// Attach a path to an I/O error.
    pub(crate) fn path(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| CarError::Path { path, source }
    }
}

/// Result alias for the `car` module.
pub type Result<T, E = CarError> = std::result::Result<T, E>;
