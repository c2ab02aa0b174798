//! The MCP server (`ipfs-kit-fuse mcp`): the running mount's files, mount
//! table, stats, buckets and IPFS sync as tools for AI agents, over stdio or
//! streamable HTTP on loopback (the `rmcp` crate).
//!
//! It has no VFS of its own: mount-table tools, stats, buckets and sync call
//! the daemon's control socket ([`daemon`]); file tools work on the daemon's
//! kernel mount, so every backend, the cache and staging behave as for any
//! other program, confined by [`place`] to the mount table. Without a
//! running daemon the command says so in one line and exits 1.

pub mod args;
pub mod daemon;
pub mod edit;
pub mod error;
pub mod files;
pub mod http;
pub mod place;
pub mod progress;
pub mod server;
pub mod tools;
pub mod vpath;
pub mod walk;

pub use daemon::Daemon;
pub use server::VfsServer;

use rmcp::ServiceExt;

/// Serves MCP on stdin/stdout until the client closes it.
pub async fn serve_stdio(daemon: Daemon, ipfs_api: String) -> anyhow::Result<()> {
    let service = VfsServer::new(daemon, ipfs_api)
        .serve(rmcp::transport::stdio())
        .await?;
    service.waiting().await?;
    Ok(())
}
