//! The control socket server: `run(listener, state, shutdown)` accepts
//! connections until `shutdown` completes; each connection is served on its
//! own task, one request line at a time.
//!
//! Invariants: the peer's uid (SO_PEERCRED) is checked before any request is
//! read; a bad line (not JSON, not a request, unknown method, bad params,
//! longer than [`MAX_LINE`]) gets an error reply and the connection keeps
//! serving; nothing a client sends can panic the server or grow its memory
//! past one line; a client that stops reading is dropped after
//! [`WRITE_TIMEOUT`], and never holds up another connection.

use super::protocol::{code, progress_line, reply_line, Envelope, Request, RpcError, JSONRPC, MAX_LINE};
use super::state::ControlState;
use serde_json::Value;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// Serves `listener` until `shutdown` completes.
pub async fn run(listener: UnixListener, state: Arc<ControlState>, shutdown: impl Future<Output = ()>) {
    let listener = &listener;
    let accept = move || async move { listener.accept().await.map(|(stream, _)| stream) };
    super::accept::serve_until(
        "control socket",
        accept,
        |stream| serve(stream, state.clone()),
        shutdown,
    )
    .await;
}

/// Mode of the socket file: the owner only (root passes anyway).
const SOCKET_MODE: u32 = 0o600;
/// Mode of a socket directory we create.
const DIR_MODE: u32 = 0o700;

/// Binds the socket at `path` (mode 0600), creating its directory (0700) and
/// replacing a stale socket left by a crashed daemon; refuses when another
/// daemon answers there. Call inside the tokio runtime.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is served by another daemon", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))?;
    Ok(listener)
}

/// How long one reply line may wait for a client to read it: a client that
/// stops reading loses its connection instead of keeping a task forever.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn write_line<W: AsyncWrite + Unpin>(w: &mut W, line: &str) -> std::io::Result<()> {
    let write = async {
        w.write_all(line.as_bytes()).await?;
        w.write_all(b"\n").await?;
        w.flush().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client stopped reading"))?
}

/// Serves one connection.
async fn serve(stream: UnixStream, state: Arc<ControlState>) -> std::io::Result<()> {
    let uid = stream.peer_cred()?.uid();
    let (rd, mut wr) = stream.into_split();
    if !state.allowed(uid) {
        tracing::warn!(uid, "control connection refused: not the mount's owner or root");
        let err = RpcError::new(
            code::PERMISSION_DENIED,
            format!(
                "permission denied: uid {uid} is neither the mount's owner (uid {}) nor root",
                state.owner_uid
            ),
        );
        return write_line(&mut wr, &reply_line(&Value::Null, &Err(err))).await;
    }
    let mut rd = BufReader::new(rd);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut rd)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await?;
        if n == 0 {
            return Ok(());
        }
        if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE {
            let err = RpcError::new(
                code::LINE_TOO_LONG,
                format!("request line longer than {MAX_LINE} bytes; discarded"),
            );
            write_line(&mut wr, &reply_line(&Value::Null, &Err(err))).await?;
            if !skip_line(&mut rd).await? {
                return Ok(());
            }
            continue;
        }
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        serve_line(line, &state, &mut wr).await?;
    }
}

/// Discards input up to and including the next newline; false at end of input.
async fn skip_line<R: AsyncBufRead + Unpin>(rd: &mut R) -> std::io::Result<bool> {
    loop {
        let chunk = rd.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(false);
        }
        if let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            rd.consume(pos + 1);
            return Ok(true);
        }
        let len = chunk.len();
        rd.consume(len);
    }
}

/// Parses one line into a request, or the error reply it deserves.
fn parse(line: &[u8]) -> (Value, Result<Request, RpcError>) {
    let env: Envelope = match serde_json::from_slice(line) {
        Ok(e) => e,
        Err(e) => {
            let code = if serde_json::from_slice::<Value>(line).is_ok() {
                code::INVALID_REQUEST
            } else {
                code::PARSE_ERROR
            };
            return (
                Value::Null,
                Err(RpcError::new(code, format!("not a request: {e}"))),
            );
        }
    };
    let id = env.id.unwrap_or(Value::Null);
    if env.jsonrpc.as_deref().is_some_and(|v| v != JSONRPC) {
        let e = RpcError::new(code::INVALID_REQUEST, format!("jsonrpc must be {JSONRPC:?}"));
        return (id, Err(e));
    }
    let Some(method) = env.method else {
        return (
            id,
            Err(RpcError::new(code::INVALID_REQUEST, "missing \"method\"")),
        );
    };
    let req = Request::parse(&method, env.params);
    (id, req)
}

async fn serve_line<W: AsyncWrite + Unpin>(
    line: &[u8],
    state: &ControlState,
    wr: &mut W,
) -> std::io::Result<()> {
    let (id, req) = parse(line);
    let req = match req {
        Ok(r) => r,
        Err(e) => return write_line(wr, &reply_line(&id, &Err(e))).await,
    };
    tracing::debug!(method = req.method(), "control request");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let work = state.handle(&id, req, tx);
    tokio::pin!(work);
    let outcome = loop {
        tokio::select! {
            out = &mut work => break out,
            Some(p) = rx.recv() => write_line(wr, &progress_line(&p)).await?,
        }
    };
    while let Ok(p) = rx.try_recv() {
        write_line(wr, &progress_line(&p)).await?;
    }
    write_line(wr, &reply_line(&id, &outcome)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_classifies_bad_lines() {
        assert_eq!(parse(b"{nope").1.unwrap_err().code, code::PARSE_ERROR);
        assert_eq!(parse(b"[1,2]").1.unwrap_err().code, code::INVALID_REQUEST);
        let (id, r) = parse(br#"{"jsonrpc":"2.0","id":4}"#);
        assert_eq!((id, r.unwrap_err().code), (Value::from(4), code::INVALID_REQUEST));
        let (id, r) = parse(br#"{"jsonrpc":"2.0","id":"x","method":"frob"}"#);
        assert_eq!(
            (id, r.unwrap_err().code),
            (Value::from("x"), code::METHOD_NOT_FOUND)
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"1.0","id":1,"method":"status"}"#)
                .1
                .unwrap_err()
                .code,
            code::INVALID_REQUEST
        );
        assert_eq!(
            parse(br#"{"id":1,"method":"status"}"#).1.unwrap(),
            Request::Status
        );
    }

    #[tokio::test]
    async fn skip_line_stops_after_newline() {
        let mut r = BufReader::new(&b"aaaa\nrest"[..]);
        assert!(skip_line(&mut r).await.unwrap());
        let mut s = String::new();
        r.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "rest");
    }
}
