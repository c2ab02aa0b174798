//! The MCP server's link to the running mount daemon: each call opens a
//! connection to the control socket, sends one request and waits for its
//! reply on a blocking thread (the socket client is blocking). Progress
//! notifications of long methods (`flush`, sync, CAR preparation) are handed
//! to a callback.

use super::error::ToolError;
use crate::control::protocol::{MountInfo, MountsReply, Progress};
use crate::control::Client;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest wait for a quick request (`mounts.list`, `stats`, `mounts.add`):
/// the daemon answers these at once, or after one backend check bounded by
/// its own I/O timeout (60 s by default); past that it is hung.
const QUICK_CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// Where the daemon listens and what it mounts.
#[derive(Debug, Clone)]
pub struct Daemon {
    socket: PathBuf,
    mountpoint: PathBuf,
}

impl Daemon {
    /// A daemon at `socket` serving the kernel mount at `mountpoint`.
    pub fn new(socket: PathBuf, mountpoint: PathBuf) -> Daemon {
        Daemon { socket, mountpoint }
    }

    /// The kernel mount point the file tools work on.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Calls `method` with `params`; `feature` names what an unknown method
    /// means is missing. Progress notifications go to `on_progress`.
    pub async fn call(
        &self,
        method: &'static str,
        feature: &'static str,
        params: Value,
        on_progress: impl FnMut(&Progress) + Send + 'static,
    ) -> Result<Value, ToolError> {
        let socket = self.socket.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = Client::connect(&socket).map_err(|e| ToolError::daemon(method, feature, e))?;
            c.call_method(method, params, on_progress)
                .map_err(|e| ToolError::daemon(method, feature, e))
        })
        .await
        .map_err(|e| ToolError(format!("{method}: {e}")))?
    }

    /// Calls a quick `method` (no progress), giving up after
    /// [`QUICK_CALL_TIMEOUT`] so a hung daemon cannot hang the tool.
    pub async fn simple(&self, method: &'static str, params: Value) -> Result<Value, ToolError> {
        tokio::time::timeout(QUICK_CALL_TIMEOUT, self.call(method, method, params, |_| {}))
            .await
            .map_err(|_| {
                ToolError(format!(
                    "{method}: the daemon did not answer within {} s",
                    QUICK_CALL_TIMEOUT.as_secs()
                ))
            })?
    }

    /// The mount table as the daemon has it now.
    pub async fn mounts(&self) -> Result<Vec<MountInfo>, ToolError> {
        let v = self
            .simple("mounts.list", Value::Object(Default::default()))
            .await?;
        let r: MountsReply = serde_json::from_value(v)
            .map_err(|e| ToolError(format!("mounts.list: unreadable reply: {e}")))?;
        Ok(r.mounts)
    }
}
