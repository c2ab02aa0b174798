//! The optional Prometheus endpoint (`mount --metrics ADDR`): a tiny HTTP/1.0
//! responder on tokio that answers `GET /metrics` with the `stats` figures.
//!
//! Invariants: one request per connection, head read up to [`MAX_HEAD`]
//! bytes within [`READ_TIMEOUT`]; anything but `GET /metrics` gets 404 or
//! 405; a slow or hostile client costs one task, never the mount.

use super::state::ControlState;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head read: scrapers send a few hundred bytes.
const MAX_HEAD: usize = 8 << 10;
/// A client that has not sent its head by then is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `listener` until `shutdown` completes.
pub async fn run(listener: TcpListener, state: Arc<ControlState>, shutdown: impl Future<Output = ()>) {
    let listener = &listener;
    let accept = move || async move { listener.accept().await.map(|(stream, _)| stream) };
    super::accept::serve_until("metrics", accept, |stream| serve(stream, state.clone()), shutdown).await;
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

async fn serve(mut stream: TcpStream, state: Arc<ControlState>) -> std::io::Result<()> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head timed out"))??;
    let first = String::from_utf8_lossy(head.split(|&b| b == b'\n').next().unwrap_or_default()).into_owned();
    let mut parts = first.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, body) = match (method, target) {
        ("GET", "/metrics") | ("GET", "/") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            super::prometheus::render(&state.stats()),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_string()),
    };
    let resp = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}
