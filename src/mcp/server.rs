//! The MCP server object: the daemon link, the client's roots, the tool
//! table, and the [`ServerHandler`] glue: server info, tool listing, and
//! turning arguments that do not fit a tool's schema into a tool error.

use super::daemon::Daemon;
use super::error::ToolError;
use super::place::{Access, Place, Scope};
use super::progress::Forwarder;
use super::vpath::VPath;
use crate::control::protocol::Progress;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode, Implementation,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use serde_json::Value;
use std::sync::{Arc, Mutex};

const INSTRUCTIONS: &str = "Files of an ipfs-kit-fuse mount: paths are inside the mount table \
(e.g. /local/notes.txt, /memory/x); vfs_list_mounts shows the mounts. Reads are capped; \
read large files in parts (encoding base64 with offset/length, or head/tail).";

/// The server: the daemon link, the client's roots, the tool table.
#[derive(Clone)]
pub struct VfsServer {
    pub(super) daemon: Daemon,
    /// The IPFS node's RPC API the sync tools hand to the daemon.
    pub(super) ipfs_api: String,
    /// The client's roots as virtual paths, once fetched; reset when the
    /// client says its roots changed.
    roots: Arc<Mutex<Option<Option<Vec<VPath>>>>>,
    pub(super) tool_router: ToolRouter<VfsServer>,
}

impl VfsServer {
    /// A server working on the mount served by `daemon`; the sync tools use
    /// the IPFS node at `ipfs_api`.
    pub fn new(daemon: Daemon, ipfs_api: String) -> VfsServer {
        VfsServer {
            daemon,
            ipfs_api,
            roots: Arc::new(Mutex::new(None)),
            tool_router: Self::tool_router(),
        }
    }

    /// The client's roots as virtual paths (`None`: no narrowing), fetched
    /// once per change. A `file://` root under the mount point names the
    /// virtual path below it; any other `file://` root is read as a virtual
    /// path (`file:///local/proj`). An empty list narrows nothing.
    // Roots are deprecated by the 2026-07-28 protocol (SEP-2577) but clients
    // of the earlier versions still offer them; the issue asks to honour them.
    #[allow(deprecated)]
    async fn roots(&self, peer: &Peer<RoleServer>) -> Result<Option<Vec<VPath>>, ToolError> {
        if let Some(r) = self
            .roots
            .lock()
            .map_err(|_| ToolError::bad("roots lock"))?
            .clone()
        {
            return Ok(r);
        }
        let offered = peer.peer_info().is_some_and(|i| i.capabilities.roots.is_some());
        let roots = if offered {
            let list = peer
                .list_roots()
                .await
                .map_err(|e| ToolError(format!("asking the client for its roots failed: {e}")))?;
            if list.roots.is_empty() {
                None
            } else {
                let mp = self.daemon.mountpoint();
                Some(
                    list.roots
                        .iter()
                        .filter_map(|r| r.uri.strip_prefix("file://"))
                        .filter_map(|p| {
                            let p = std::path::Path::new(p);
                            match p.strip_prefix(mp) {
                                Ok(rest) => VPath::parse(&format!("/{}", rest.display())).ok(),
                                Err(_) => VPath::parse(&p.display().to_string()).ok(),
                            }
                        })
                        .collect(),
                )
            }
        } else {
            None
        };
        *self.roots.lock().map_err(|_| ToolError::bad("roots lock"))? = Some(roots.clone());
        Ok(roots)
    }

    /// The scope a tool call works in: mount point, live mount table, roots.
    async fn scope(&self, peer: &Peer<RoleServer>) -> Result<Scope, ToolError> {
        Ok(Scope {
            mountpoint: self.daemon.mountpoint().to_path_buf(),
            mounts: self.daemon.mounts().await?,
            roots: self.roots(peer).await?,
        })
    }

    /// Resolves one path argument.
    pub(super) async fn place(
        &self,
        peer: &Peer<RoleServer>,
        path: &str,
        access: Access,
    ) -> Result<Place, ToolError> {
        let v = VPath::parse(path)?;
        self.scope(peer).await?.place(&v, access)
    }

    /// A daemon call whose progress notifications are forwarded to the client.
    pub(super) async fn daemon_call(
        &self,
        ctx: &RequestContext<RoleServer>,
        method: &'static str,
        feature: &'static str,
        p: Value,
    ) -> Result<Value, ToolError> {
        let fwd = Forwarder::new(ctx.peer.clone(), ctx.meta.get_progress_token());
        let rep = fwd.reporter.clone();
        // MCP progress must grow with every notification: bytes done where
        // the daemon counts bytes, else one more per notification (files,
        // a stage's steps, a push's upload after its packing).
        let mut last = 0f64;
        let r = self
            .daemon
            .call(method, feature, p, move |pr: &Progress| {
                let (value, message) = match (&pr.stage, pr.done, pr.total, pr.bytes) {
                    (Some(stage), Some(done), Some(total), _) => {
                        (0.0, format!("{method}: {stage} {done}/{total}"))
                    }
                    (_, _, _, Some(b)) => (b as f64, format!("{method}: {b} bytes")),
                    _ => (0.0, format!("{method}: {} files remaining", pr.files_remaining)),
                };
                last = value.max(last + 1.0);
                rep.report(last, None, message)
            })
            .await;
        fwd.finish().await;
        r
    }
}

impl ServerHandler for VfsServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("ipfs-kit-fuse", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.clone();
        let tcc = ToolCallContext::new(self, request, context);
        match self.tool_router.call(tcc).await {
            // Arguments that do not fit the schema: a tool error the agent can act on.
            Err(e) if e.code == ErrorCode::INVALID_PARAMS && self.tool_router.has_route(&name) => {
                let mut r = CallToolResult::error(vec![ContentBlock::text(format!("{name}: {}", e.message))]);
                r.is_error = Some(true);
                Ok(r.into())
            }
            other => other,
        }
    }

    async fn list_tools(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, ErrorData> {
        Ok(rmcp::model::ListToolsResult::with_all_items(
            self.tool_router.list_all(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.tool_router.get(name).cloned()
    }

    async fn on_roots_list_changed(&self, _context: NotificationContext<RoleServer>) {
        if let Ok(mut r) = self.roots.lock() {
            *r = None;
        }
    }
}
