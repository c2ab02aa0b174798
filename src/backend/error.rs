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
    /// A name (or the backing path it makes on the host) is too long.
    NameTooLong,
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

/// The messages of opendal's timeout layer (one per operation, one per I/O
/// call): it reports a timeout as an unexpected, temporary error with no
/// source, so its message is the only mark a timeout leaves.
const TIMEOUT_MESSAGES: [&str; 2] = ["operation timeout reached", "io operation timeout reached"];

/// The errors of a chain, from `e`'s source on.
fn sources(e: &opendal::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(std::error::Error::source(e), |s| s.source())
}

/// The first host I/O error of `e`'s chain (a local service's own error).
fn host_io(e: &opendal::Error) -> Option<&std::io::Error> {
    sources(e).find_map(|s| s.downcast_ref::<std::io::Error>())
}

/// True when `e` is a timeout: from the timeout layer, or a host I/O timeout.
fn is_timeout(e: &opendal::Error) -> bool {
    (e.kind() == opendal::ErrorKind::Unexpected && TIMEOUT_MESSAGES.contains(&e.message()))
        || host_io(e).is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
}

/// A range read that reached past the end of the object: services answer
/// "range not satisfiable", or a body shorter than announced, which
/// opendal's completion layer reports with this message.
pub(super) fn is_short_read(e: &opendal::Error) -> bool {
    e.kind() == opendal::ErrorKind::RangeNotSatisfied
        || (e.kind() == opendal::ErrorKind::Unexpected && e.message() == "reader got too little data")
}

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
            _ if is_timeout(&e) => BackendErrorKind::TimedOut,
            // The host refused a backing path longer than PATH_MAX.
            _ if host_io(&e).and_then(|io| io.raw_os_error()) == Some(libc::ENAMETOOLONG) => {
                BackendErrorKind::NameTooLong
            }
            _ => BackendErrorKind::Other,
        };
        BackendError {
            kind,
            message: text,
            errno: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opendal::{Error, ErrorKind};

    #[test]
    fn errors_are_classified_by_kind_and_source_not_by_wording() {
        let io = std::io::Error::from_raw_os_error(libc::ENAMETOOLONG);
        let e = Error::new(ErrorKind::Unexpected, "anything").set_source(io);
        assert_eq!(BackendError::from(e).kind, BackendErrorKind::NameTooLong);
        let e = Error::new(ErrorKind::Unexpected, "operation timeout reached").set_temporary();
        assert_eq!(BackendError::from(e).kind, BackendErrorKind::TimedOut);
        let io = std::io::Error::from(std::io::ErrorKind::TimedOut);
        let e = Error::new(ErrorKind::Unexpected, "send").set_source(io);
        assert_eq!(BackendError::from(e).kind, BackendErrorKind::TimedOut);
        // A message that merely mentions a timeout (a key named so) is not one.
        let e = Error::new(ErrorKind::Unexpected, "object timeout.txt is corrupt");
        assert_eq!(BackendError::from(e).kind, BackendErrorKind::Other);
        let e = Error::new(ErrorKind::NotFound, "File name too long");
        assert_eq!(BackendError::from(e).kind, BackendErrorKind::NotFound);
    }
}
