//! `ipfs-kit-fuse mcp`: finds the running mount (like `status`), checks that
//! its daemon answers, then serves the MCP tools on stdio, or on streamable
//! HTTP at a loopback address with `--http`. Logs go to stderr (stdout
//! carries the protocol). No running daemon: one line on stderr, exit 1.

use super::control::{resolve_socket, Target};
use crate::control::protocol::StatusReply;
use crate::control::{Client, Request};
use crate::mcp::{self, Daemon};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `mcp`.
#[derive(Args, Debug)]
pub struct McpArgs {
    /// The mount point of the running mount (default: the only running mount).
    #[arg(long = "mount", short = 'm', value_name = "MOUNTPOINT")]
    pub mountpoint: Option<PathBuf>,
    /// The control socket itself (overrides --mount).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Serve streamable HTTP at http://ADDR/mcp instead of stdio (loopback only, e.g. 127.0.0.1:8765).
    #[arg(long, value_name = "127.0.0.1:PORT")]
    pub http: Option<SocketAddr>,
    /// The IPFS node's RPC API for vfs_sync_to_ipfs / vfs_sync_from_ipfs (as for `ipfs push`).
    #[arg(long, env = "IPFS_KIT_IPFS_API", default_value = super::ipfs::DEFAULT_API, value_name = "URL")]
    pub ipfs_api: String,
    /// Log filter for stderr (default: warn; RUST_LOG works too).
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ipfs-kit-fuse: mcp: {msg}");
    ExitCode::FAILURE
}

/// Runs the MCP server until the client (stdio) or the process (HTTP) ends.
pub fn run_mcp(a: McpArgs) -> ExitCode {
    let filter = a
        .log_level
        .as_deref()
        .map(tracing_subscriber::EnvFilter::new)
        .or_else(|| tracing_subscriber::EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    if let Some(addr) = a.http.filter(|x| !x.ip().is_loopback()) {
        return fail(format!(
            "--http {addr}: only a loopback address (127.0.0.1, ::1) is served; the tools reach your files"
        ));
    }
    let target = Target {
        mountpoint: a.mountpoint.clone(),
        socket: a.socket.clone(),
        json: false,
    };
    let socket = match resolve_socket(&target, None) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let status: StatusReply = match Client::connect(&socket).and_then(|mut c| c.call(&Request::Status)) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let daemon = Daemon::new(socket, PathBuf::from(&status.mountpoint));
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(format!("tokio runtime: {e}")),
    };
    let r = rt.block_on(async move {
        match a.http {
            Some(addr) => {
                let listener = mcp::http::bind(addr).await?;
                let bound = listener.local_addr()?;
                // One line on stderr so a caller (or a test) learns the port of :0.
                eprintln!(
                    "ipfs-kit-fuse: mcp: serving http://{bound}{}",
                    mcp::http::ENDPOINT
                );
                mcp::http::serve(listener, daemon, a.ipfs_api).await
            }
            None => mcp::serve_stdio(daemon, a.ipfs_api).await,
        }
    });
    // The stdio transport leaves a blocking stdin reader behind: do not wait for it.
    rt.shutdown_background();
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("{e:#}")),
    }
}
