//! The streamable HTTP transport: rmcp's tower service at `/mcp`, served by
//! hyper (HTTP/1.1) on a loopback address only. rmcp checks the `Host`
//! header against loopback names (DNS-rebinding protection); each client
//! session gets its own [`VfsServer`].

use super::{Daemon, VfsServer};
use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

/// The path the MCP endpoint answers on.
pub const ENDPOINT: &str = "/mcp";

/// Binds `addr`, which must be a loopback address.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    if !addr.ip().is_loopback() {
        bail!(
            "--http {addr}: only a loopback address (127.0.0.1, ::1) is served; the tools reach your files"
        );
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--http {addr}: cannot listen"))
}

/// Serves MCP on `listener` until the process is stopped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    daemon: Daemon,
    ipfs_api: String,
) -> anyhow::Result<()> {
    let service: StreamableHttpService<VfsServer, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(VfsServer::new(daemon.clone(), ipfs_api.clone())),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    loop {
        let (stream, _) = listener.accept().await.context("accept")?;
        let service = service.clone();
        let svc = hyper::service::service_fn(move |req| {
            let service = service.clone();
            async move { Ok::<_, Infallible>(route(&service, req).await) }
        });
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!("mcp http connection: {e}");
            }
        });
    }
}

/// Passes requests for [`ENDPOINT`] to rmcp and answers 404 to anything else.
async fn route(
    service: &StreamableHttpService<VfsServer, LocalSessionManager>,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<BoxBody<Bytes, Infallible>> {
    if req.uri().path() == ENDPOINT {
        return service.handle(req).await;
    }
    let body = Full::new(Bytes::from_static(b"not found: the MCP endpoint is /mcp\n"))
        .map_err(|never| match never {})
        .boxed();
    let mut r = hyper::Response::new(body);
    *r.status_mut() = hyper::StatusCode::NOT_FOUND;
    r
}
