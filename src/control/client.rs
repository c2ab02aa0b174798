//! A blocking client of the control socket, for the CLI and tests: connect,
//! send typed requests, read typed replies; progress notifications are
//! handed to a callback while the reply is awaited.

use super::protocol::{Envelope, Progress, Request, RequestFrame, RpcError, JSONRPC};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the daemon at {path}: {source} (is the mount running?)")]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("control socket I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon closed the connection without replying")]
    Closed,
    #[error("unreadable reply from the daemon: {0}")]
    Garbled(String),
    /// The daemon answered with an error.
    #[error("{}", .0.message)]
    Remote(RpcError),
}

/// A connection to one mount's daemon.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        let writer = stream.try_clone()?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
        })
    }

    /// Sends `req` and waits for its reply.
    pub fn call<R: DeserializeOwned>(&mut self, req: &Request) -> Result<R, ClientError> {
        self.call_with_progress(req, |_| {})
    }

    /// Sends `req`, calling `on_progress` for each notification, and waits for its reply.
    pub fn call_with_progress<R: DeserializeOwned>(
        &mut self,
        req: &Request,
        on_progress: impl FnMut(&Progress),
    ) -> Result<R, ClientError> {
        let result = self.call_method(req.method(), req.params(), on_progress)?;
        serde_json::from_value(result).map_err(|e| ClientError::Garbled(e.to_string()))
    }

    /// Sends any method with raw params (for methods this client has no
    /// typed [`Request`] for, e.g. ones a newer daemon adds) and returns the
    /// raw result; an unknown method comes back as `Remote` with code
    /// `METHOD_NOT_FOUND`.
    pub fn call_method(
        &mut self,
        method: &str,
        params: Value,
        mut on_progress: impl FnMut(&Progress),
    ) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let frame = RequestFrame {
            jsonrpc: JSONRPC,
            id,
            method,
            params,
        };
        let mut line = serde_json::to_string(&frame).map_err(|e| ClientError::Garbled(e.to_string()))?;
        line.push('\n');
        if let Err(e) = self.writer.write_all(line.as_bytes()) {
            // The daemon may have refused us and closed already: its error
            // reply is still readable, and says more than EPIPE.
            return match self.read_frame() {
                Ok(Envelope { error: Some(err), .. }) => Err(ClientError::Remote(err)),
                _ => Err(e.into()),
            };
        }
        loop {
            let env = self.read_frame()?;
            if let Some(err) = env.error {
                return Err(ClientError::Remote(err));
            }
            if env.method.as_deref() == Some("progress") {
                if let Some(p) = env
                    .params
                    .and_then(|p| serde_json::from_value::<Progress>(p).ok())
                {
                    on_progress(&p);
                }
                continue;
            }
            if env.id.as_ref().and_then(|v| v.as_u64()) != Some(id) {
                continue;
            }
            return Ok(env.result.unwrap_or_default());
        }
    }

    fn read_frame(&mut self) -> Result<Envelope, ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(ClientError::Closed);
        }
        serde_json::from_str(&line).map_err(|e| ClientError::Garbled(e.to_string()))
    }
}
