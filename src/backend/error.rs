//! Backend errors: opendal's non-exhaustive `ErrorKind` folded into our own
//! closed set, so the core can map every case to an errno. Anything unknown
//! becomes `Other` (EIO), never NotFound.

use std::fmt;

/// What went wrong, as far as a filesystem cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendErrorKind {
    NotFound,
    AlreadyExists,
    PermissionDenied,
    IsDir,
    NotDir,
    /// The object is no longer at the version a read asked for.
    Changed,
    Unsupported,
    TimedOut,
    RateLimited,
    Config,
    Other,
}

/// An error from a storage service, with the service's message.
#[derive(Debug, Clone)]
pub struct BackendError {
    pub kind: BackendErrorKind,
    pub message: String,
    /// The host's errno, for a local directory's own error: passed on to
    /// the kernel as it is (ELOOP, EPERM, EMLINK, ... have no kind here).
    pub errno: Option<i32>,
}

impl BackendError {
    pub fn new(kind: BackendErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            errno: None,
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for BackendError {}

impl From<opendal::Error> for BackendError {
    fn from(e: opendal::Error) -> Self {
        use opendal::ErrorKind as K;
        let text = e.to_string();
        let kind = match e.kind() {
            K::NotFound => BackendErrorKind::NotFound,
            K::AlreadyExists => BackendErrorKind::AlreadyExists,
            K::ConditionNotMatch => BackendErrorKind::Changed,
            K::PermissionDenied => BackendErrorKind::PermissionDenied,
            K::IsADirectory => BackendErrorKind::IsDir,
            K::NotADirectory => BackendErrorKind::NotDir,
            K::Unsupported => BackendErrorKind::Unsupported,
            K::RateLimited => BackendErrorKind::RateLimited,
            K::ConfigInvalid => BackendErrorKind::Config,
            // The timeout layer reports an unexpected, temporary error whose
            // message names the timeout; keep that distinct for ETIMEDOUT.
            _ if text.contains("timeout") || text.contains("timed out") => BackendErrorKind::TimedOut,
            _ => BackendErrorKind::Other,
        };
        BackendError {
            kind,
            message: text,
            errno: None,
        }
    }
}
