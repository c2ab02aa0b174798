//! The one error type of the MCP tools. Every failure a tool meets (a bad
//! argument, a path outside the allowed tree, an I/O error from the mount, a
//! refusal by the daemon, a feature the daemon lacks) becomes a tool result
//! with `isError: true` and this message, never a protocol error.

use crate::control::protocol::code;
use crate::control::ClientError;
use std::fmt;

/// A tool failure, with the message the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

impl ToolError {
    /// A bad argument or a refused path.
    pub fn bad(msg: impl Into<String>) -> ToolError {
        ToolError(msg.into())
    }

    /// An I/O error on a virtual path.
    pub fn io(path: impl fmt::Display, e: std::io::Error) -> ToolError {
        let what = match e.raw_os_error() {
            Some(libc::EROFS) => "read-only (the mount or this place refuses changes)".to_string(),
            Some(libc::ENOENT) => "no such file or directory".to_string(),
            Some(libc::EEXIST) => "already exists".to_string(),
            Some(libc::ENOTEMPTY) => "directory not empty (use recursive: true)".to_string(),
            Some(libc::EISDIR) => "is a directory".to_string(),
            Some(libc::ENOTDIR) => "not a directory".to_string(),
            _ => e.to_string(),
        };
        ToolError(format!("{path}: {what}"))
    }

    /// An error from the daemon answering `method`; an unknown method means
    /// the running daemon lacks the feature `feature`.
    pub fn daemon(method: &str, feature: &str, e: ClientError) -> ToolError {
        match e {
            ClientError::Remote(r) if r.code == code::METHOD_NOT_FOUND => ToolError(format!(
                "not available: the running daemon has no {feature} (control method {method:?} is unknown to it)"
            )),
            ClientError::Remote(r) => ToolError(format!("{method}: {}", r.message)),
            other => ToolError(format!("{method}: {other}")),
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ToolError {}
