//! The MCP tools: argument types (their JSON schemas come from these
//! structs), one-line descriptions, annotations, and each tool's glue from
//! arguments to the socket ([`Daemon`]) or the file work ([`super::files`]).
//!
//! Every failure is a tool result with `isError: true`, including arguments
//! that do not fit the schema (see `call_tool`), so an agent reads why and
//! can correct itself.

use super::daemon::Daemon;
use super::edit::Edit;
use super::error::ToolError;
use super::files::{self, MAX_READ};
use super::place::{Access, Place, Scope};
use super::progress::{Forwarder, Reporter};
use super::vpath::VPath;
use super::walk;
use crate::control::protocol::Progress;
use base64::Engine;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode, Implementation,
    ServerCapabilities, ServerConfig,
};
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{tool, tool_router, ErrorData, Peer, RoleServer, ServerHandler};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What every tool returns: a result, or the message of a tool error.
type Out = Result<CallToolResult, String>;

/// Default depth of `vfs_ls` with `recursive` (levels below the path).
const TREE_DEPTH: u32 = 3;
/// Deepest tree `vfs_ls` walks, whatever is asked (keeps replies bounded).
const TREE_DEPTH_MAX: u32 = 32;
/// Default and largest entry counts of trees and searches: a listing an
/// agent can still read; past it the reply says `truncated`.
const ENTRIES_DEFAULT: usize = 1000;
const ENTRIES_MAX: usize = 100_000;

const INSTRUCTIONS: &str = "Files of an ipfs-kit-fuse mount: paths are inside the mount table \
(e.g. /local/notes.txt, /memory/x); vfs_list_mounts shows the mounts. Reads are capped; \
read large files in parts (encoding base64 with offset/length, or head/tail).";

/// The server: the daemon link, the client's roots, the tool table.
#[derive(Clone)]
pub struct VfsServer {
    daemon: Daemon,
    /// The IPFS node's RPC API the sync tools hand to the daemon.
    ipfs_api: String,
    /// The client's roots as virtual paths, once fetched; reset when the
    /// client says its roots changed.
    roots: Arc<Mutex<Option<Option<Vec<VPath>>>>>,
    tool_router: ToolRouter<VfsServer>,
}

// ------------------------------------------------------------- arguments ----

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MountArgs {
    /// Where the backend appears, e.g. "/scratch".
    pub path: String,
    /// Backend scheme: "fs", "memory", "s3" (or give uri).
    pub scheme: Option<String>,
    /// URI shorthand: "memory://", "fs:///srv/data", "s3://bucket/prefix?region=us-east-1".
    pub uri: Option<String>,
    /// Backend options, e.g. {"root": "/srv/data"}.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Refuse every change under the path.
    #[serde(default)]
    pub read_only: bool,
    /// Also write the new table to the config file.
    #[serde(default)]
    pub save: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmountArgs {
    /// The mount path to remove from the table, e.g. "/scratch".
    pub path: String,
    /// Also write the new table to the config file.
    #[serde(default)]
    pub save: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Text,
    Base64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadArgs {
    /// File path inside the mount table, e.g. "/local/notes.txt".
    pub path: String,
    /// "text" (default; UTF-8) or "base64" (bytes, with offset/length).
    pub encoding: Option<Encoding>,
    /// Text: only the first N lines.
    pub head: Option<u64>,
    /// Text: only the last N lines.
    pub tail: Option<u64>,
    /// Bytes: where to start (default 0); implies base64.
    pub offset: Option<u64>,
    /// Bytes: how many (default: to the end; at most the read cap); implies base64.
    pub length: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadManyArgs {
    /// Text files to read; one failing does not stop the others.
    pub paths: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    Replace,
    Append,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    /// File path; missing parent directories are created.
    pub path: String,
    /// The content (text, or base64 with encoding "base64").
    pub content: String,
    /// "text" (default) or "base64".
    pub encoding: Option<Encoding>,
    /// "replace" (default) or "append".
    pub mode: Option<WriteMode>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditArgs {
    /// Text file to edit.
    pub path: String,
    /// Replacements applied in order; each old_text must occur exactly once.
    pub edits: Vec<Edit>,
    /// Only show the diff; change nothing.
    #[serde(default, alias = "dryRun")]
    pub dry_run: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyArgs {
    /// File or directory to copy (or move).
    pub source: String,
    /// New path; must not exist unless overwrite replaces a file.
    pub destination: String,
    /// Replace an existing destination file.
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathArgs {
    /// Path inside the mount table, e.g. "/local/dir".
    pub path: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LsArgs {
    /// Directory to list ("/" lists the mounts).
    pub path: String,
    /// Show file sizes and a total.
    #[serde(default)]
    pub sizes: bool,
    /// A JSON tree of the levels below, limited by depth and max_entries.
    #[serde(default)]
    pub recursive: bool,
    /// Levels of the recursive tree (default 3, at most 32).
    pub depth: Option<u32>,
    /// Most entries in the recursive tree (default 1000).
    pub max_entries: Option<usize>,
    /// Glob patterns of names or relative paths to leave out of the tree.
    #[serde(default, alias = "excludePatterns")]
    pub exclude: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MkdirArgs {
    /// Directory to create.
    pub path: String,
    /// Create missing parents too; an existing directory is fine (default true).
    pub parents: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RmdirArgs {
    /// Directory to remove.
    pub path: String,
    /// Remove everything in it too (default: it must be empty).
    #[serde(default)]
    pub recursive: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Directory to search below.
    pub path: String,
    /// Glob on the path relative to `path` ("**/*.md"); without "/" it also matches names ("*.md").
    pub pattern: String,
    /// Globs of names or relative paths to skip (with everything under them).
    #[serde(default, alias = "excludePatterns")]
    pub exclude: Vec<String>,
    /// Most matches returned (default 1000).
    pub max_results: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncToArgs {
    /// File or directory to add to IPFS.
    pub path: String,
    /// DAG profile: "unixfs-v1-2025" (default), "unixfs-v0-2015", "ipfs-car".
    pub profile: Option<String>,
    /// Include names starting with ".".
    #[serde(default)]
    pub hidden: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncFromArgs {
    /// The CID to fetch.
    pub cid: String,
    /// Where to write it inside the mount table.
    pub path: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketArgs {
    /// The bucket's name; absent: every bucket.
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrepareCarArgs {
    /// The bucket's name; absent: every bucket.
    pub name: Option<String>,
    /// Split the CAR into shards of at most this many bytes (as the Storacha client does).
    pub shard_size: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketFilesArgs {
    /// The bucket's name.
    pub name: String,
    /// Only paths starting with this prefix.
    pub prefix: Option<String>,
    /// Most files returned (the rest is counted in `omitted`).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindCidArgs {
    /// The CID to look up in every bucket's index.
    pub cid: String,
}

// ----------------------------------------------------------------- glue ----

fn ok_json(v: Value) -> Out {
    Ok(CallToolResult::structured(v))
}

fn ok_text(s: String) -> Out {
    Ok(CallToolResult::success(vec![ContentBlock::text(s)]))
}

/// `{"name": N}` for one bucket, `{"all": true}` for every bucket.
fn by_name(name: Option<String>) -> Value {
    match name {
        Some(n) => json!({"name": n}),
        None => json!({"all": true}),
    }
}

/// Runs file work on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ToolError(format!("internal error: {e}")))?
}

/// Object params for a socket call, without the `None` fields.
fn params(pairs: &[(&str, Option<Value>)]) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            m.insert((*k).to_string(), v.clone());
        }
    }
    Value::Object(m)
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
    async fn place(&self, peer: &Peer<RoleServer>, path: &str, access: Access) -> Result<Place, ToolError> {
        let v = VPath::parse(path)?;
        self.scope(peer).await?.place(&v, access)
    }

    /// A daemon call whose progress notifications are forwarded to the client.
    async fn daemon_call(
        &self,
        ctx: &RequestContext<RoleServer>,
        method: &'static str,
        feature: &'static str,
        p: Value,
    ) -> Result<Value, ToolError> {
        let fwd = Forwarder::new(ctx.peer.clone(), ctx.meta.get_progress_token());
        let rep = fwd.reporter.clone();
        let mut n = 0u64;
        let r = self
            .daemon
            .call(method, feature, p, move |pr: &Progress| match pr.bytes {
                Some(b) => rep.report(b as f64, None, format!("{method}: {b} bytes")),
                None => {
                    n += 1;
                    rep.report(
                        n as f64,
                        None,
                        format!("{method}: {} files remaining", pr.files_remaining),
                    )
                }
            })
            .await;
        fwd.finish().await;
        r
    }
}

// ------------------------------------------------------------------ tools ----

#[tool_router]
impl VfsServer {
    /// The mount table: each mount's path, scheme, read-only flag and options (secrets hidden).
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn vfs_list_mounts(&self, Parameters(_): Parameters<NoArgs>) -> Out {
        let v = self
            .daemon
            .simple("mounts.list", json!({}))
            .await
            .map_err(|e| e.0)?;
        ok_json(v)
    }

    /// Mount a backend (scheme or URI, options, read_only) at a path, at once.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn vfs_mount(&self, Parameters(a): Parameters<MountArgs>) -> Out {
        if a.scheme.is_none() && a.uri.is_none() {
            return Err("give scheme (fs, memory, s3) or uri (memory://, fs:///dir, s3://bucket)".into());
        }
        let p = params(&[
            ("path", Some(json!(a.path))),
            ("scheme", a.scheme.map(Value::String)),
            ("uri", a.uri.map(Value::String)),
            ("options", Some(json!(a.options))),
            ("read_only", Some(json!(a.read_only))),
            ("save", Some(json!(a.save))),
        ]);
        ok_json(self.daemon.simple("mounts.add", p).await.map_err(|e| e.0)?)
    }

    /// Remove a mount from the table (pending uploads under it finish first).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn vfs_unmount(&self, Parameters(a): Parameters<UnmountArgs>) -> Out {
        let p = json!({"path": a.path, "save": a.save});
        // Not `simple`: the daemon uploads what is staged under the path first.
        let r = self
            .daemon
            .call("mounts.remove", "mounts.remove", p, |_| {})
            .await;
        ok_json(r.map_err(|e| e.0)?)
    }

    /// Read a file: text (whole, or head/tail lines) or bytes as base64 (offset, length); capped at 8 MiB per call.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn vfs_read(&self, Parameters(a): Parameters<ReadArgs>, peer: Peer<RoleServer>) -> Out {
        let place = self.place(&peer, &a.path, Access::Read).await.map_err(|e| e.0)?;
        let bytes = matches!(a.encoding, Some(Encoding::Base64)) || a.offset.is_some() || a.length.is_some();
        if bytes {
            if a.head.is_some() || a.tail.is_some() {
                return Err("head/tail apply to text; with base64 use offset and length".into());
            }
            if matches!(a.encoding, Some(Encoding::Text)) {
                return Err(
                    "offset/length read bytes: use encoding \"base64\" (or head/tail for text)".into(),
                );
            }
            let v = blocking(move || files::read_bytes(&place, a.offset, a.length))
                .await
                .map_err(|e| e.0)?;
            return ok_json(v);
        }
        let text = blocking(move || files::read_text(&place, a.head, a.tail))
            .await
            .map_err(|e| e.0)?;
        ok_text(text)
    }

    /// Read several text files at once; each comes back with its content or its own error.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn vfs_read_many(
        &self,
        Parameters(a): Parameters<ReadManyArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Out {
        if a.paths.is_empty() {
            return Err("paths is empty".into());
        }
        let fwd = Forwarder::new(ctx.peer.clone(), ctx.meta.get_progress_token());
        let total = a.paths.len();
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for (i, path) in a.paths.into_iter().enumerate() {
            let r = match self.place(&ctx.peer, &path, Access::Read).await {
                Ok(place) => blocking(move || files::read_text(&place, None, None)).await,
                Err(e) => Err(e),
            };
            let item = match r {
                Ok(_) if bytes > MAX_READ => {
                    json!({"path": path, "error": format!("skipped: the files before it used up the {} MiB cap of one call", MAX_READ >> 20)})
                }
                Ok(text) => {
                    bytes += text.len() as u64;
                    if bytes > MAX_READ {
                        json!({"path": path, "error": format!("skipped: over the {} MiB cap of one call; read it alone", MAX_READ >> 20)})
                    } else {
                        json!({"path": path, "content": text})
                    }
                }
                Err(e) => json!({"path": path, "error": e.0}),
            };
            out.push(item);
            fwd.reporter.report((i + 1) as f64, Some(total as f64), path);
        }
        fwd.finish().await;
        ok_json(json!({"files": out}))
    }

    /// Write a file (replace or append), creating missing parent directories.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn vfs_write(&self, Parameters(a): Parameters<WriteArgs>, peer: Peer<RoleServer>) -> Out {
        let data = match a.encoding {
            Some(Encoding::Base64) => base64::engine::general_purpose::STANDARD
                .decode(a.content.trim())
                .map_err(|e| format!("content is not valid base64: {e}"))?,
            _ => a.content.into_bytes(),
        };
        let append = matches!(a.mode, Some(WriteMode::Append));
        let place = self.place(&peer, &a.path, Access::Write).await.map_err(|e| e.0)?;
        ok_json(
            blocking(move || files::write(&place, &data, append))
                .await
                .map_err(|e| e.0)?,
        )
    }

    /// Replace exact text in a file (each old_text once); returns a unified diff; dry_run changes nothing.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn vfs_edit(&self, Parameters(a): Parameters<EditArgs>, peer: Peer<RoleServer>) -> Out {
        let access = if a.dry_run { Access::Read } else { Access::Write };
        let place = self.place(&peer, &a.path, access).await.map_err(|e| e.0)?;
        let diff = blocking(move || files::edit(&place, &a.edits, a.dry_run))
            .await
            .map_err(|e| e.0)?;
        ok_text(diff)
    }

    /// Copy a file or directory tree, within a mount or across mounts (e.g. /local to /memory).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn vfs_copy(&self, Parameters(a): Parameters<CopyArgs>, ctx: RequestContext<RoleServer>) -> Out {
        let src = self
            .place(&ctx.peer, &a.source, Access::Read)
            .await
            .map_err(|e| e.0)?;
        let dst = self
            .place(&ctx.peer, &a.destination, Access::Write)
            .await
            .map_err(|e| e.0)?;
        let fwd = Forwarder::new(ctx.peer.clone(), ctx.meta.get_progress_token());
        let rep: Reporter = fwd.reporter.clone();
        let r = blocking(move || files::copy(&src, &dst, a.overwrite, &rep)).await;
        fwd.finish().await;
        ok_json(r.map_err(|e| e.0)?)
    }

    /// Move or rename a file or directory; across mounts it copies, then removes the source.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn vfs_move(&self, Parameters(a): Parameters<CopyArgs>, ctx: RequestContext<RoleServer>) -> Out {
        let src = self
            .place(&ctx.peer, &a.source, Access::Write)
            .await
            .map_err(|e| e.0)?;
        let dst = self
            .place(&ctx.peer, &a.destination, Access::Write)
            .await
            .map_err(|e| e.0)?;
        let fwd = Forwarder::new(ctx.peer.clone(), ctx.meta.get_progress_token());
        let rep: Reporter = fwd.reporter.clone();
        let r = blocking(move || files::rename(&src, &dst, a.overwrite, &rep)).await;
        fwd.finish().await;
        ok_json(r.map_err(|e| e.0)?)
    }

    /// Type, size, times, mode and owning mount of a path, with its CID when the mount knows it.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn vfs_stat(&self, Parameters(a): Parameters<PathArgs>, peer: Peer<RoleServer>) -> Out {
        let place = self.place(&peer, &a.path, Access::Read).await.map_err(|e| e.0)?;
        ok_json(blocking(move || files::stat(&place)).await.map_err(|e| e.0)?)
    }

    /// List a directory: names, with sizes, or a recursive JSON tree limited by depth and entries.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn vfs_ls(&self, Parameters(a): Parameters<LsArgs>, peer: Peer<RoleServer>) -> Out {
        let place = self.place(&peer, &a.path, Access::Read).await.map_err(|e| e.0)?;
        if a.recursive {
            let depth = a.depth.unwrap_or(TREE_DEPTH).clamp(1, TREE_DEPTH_MAX);
            let max = a.max_entries.unwrap_or(ENTRIES_DEFAULT).clamp(1, ENTRIES_MAX);
            let ex = walk::patterns(&a.exclude).map_err(|e| e.0)?;
            return ok_json(
                blocking(move || walk::tree(&place, depth, max, &ex))
                    .await
                    .map_err(|e| e.0)?,
            );
        }
        if a.depth.is_some() || a.max_entries.is_some() || !a.exclude.is_empty() {
            return Err("depth, max_entries and exclude apply with recursive: true".into());
        }
        ok_text(
            blocking(move || files::ls(&place, a.sizes))
                .await
                .map_err(|e| e.0)?,
        )
    }

    /// Create a directory, with missing parents unless parents is false.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn vfs_mkdir(&self, Parameters(a): Parameters<MkdirArgs>, peer: Peer<RoleServer>) -> Out {
        let place = self.place(&peer, &a.path, Access::Write).await.map_err(|e| e.0)?;
        let parents = a.parents.unwrap_or(true);
        ok_json(
            blocking(move || files::mkdir(&place, parents))
                .await
                .map_err(|e| e.0)?,
        )
    }

    /// Remove a directory: an empty one, or with everything in it when recursive is true.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn vfs_rmdir(&self, Parameters(a): Parameters<RmdirArgs>, peer: Peer<RoleServer>) -> Out {
        let place = self.place(&peer, &a.path, Access::Write).await.map_err(|e| e.0)?;
        ok_json(
            blocking(move || files::rmdir(&place, a.recursive))
                .await
                .map_err(|e| e.0)?,
        )
    }

    /// Find paths below a directory matching a glob, skipping excluded names.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn vfs_search(
        &self,
        Parameters(a): Parameters<SearchArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Out {
        let place = self
            .place(&ctx.peer, &a.path, Access::Read)
            .await
            .map_err(|e| e.0)?;
        let pat = walk::patterns(std::slice::from_ref(&a.pattern))
            .map_err(|e| e.0)?
            .remove(0);
        let ex = walk::patterns(&a.exclude).map_err(|e| e.0)?;
        let max = a.max_results.unwrap_or(ENTRIES_DEFAULT).clamp(1, ENTRIES_MAX);
        let fwd = Forwarder::new(ctx.peer.clone(), ctx.meta.get_progress_token());
        let rep: Reporter = fwd.reporter.clone();
        let r = blocking(move || walk::search(&place, &pat, &ex, max, &rep)).await;
        fwd.finish().await;
        ok_json(r.map_err(|e| e.0)?)
    }

    /// Cache hits and misses, bytes per backend, operation counts and latencies of the mount.
    #[tool(annotations(read_only_hint = true, idempotent_hint = false, open_world_hint = false))]
    async fn vfs_stats(&self, Parameters(_): Parameters<NoArgs>) -> Out {
        let stats = self.daemon.simple("stats", json!({})).await.map_err(|e| e.0)?;
        let status = self.daemon.simple("status", json!({})).await.map_err(|e| e.0)?;
        ok_json(json!({"status": status, "stats": stats}))
    }

    /// Add a file or directory to the IPFS node, pinned; returns the root CID (daemon method ipfs.push).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn vfs_sync_to_ipfs(
        &self,
        Parameters(a): Parameters<SyncToArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Out {
        let place = self
            .place(&ctx.peer, &a.path, Access::Read)
            .await
            .map_err(|e| e.0)?;
        let p = params(&[
            ("path", Some(json!(place.vpath.to_string()))),
            ("api", Some(json!(self.ipfs_api))),
            ("profile", a.profile.map(Value::String)),
            ("hidden", Some(json!(a.hidden))),
        ]);
        ok_json(
            self.daemon_call(&ctx, "ipfs.push", "IPFS sync", p)
                .await
                .map_err(|e| e.0)?,
        )
    }

    /// Fetch a CID from the IPFS node, every block verified, into a new path (daemon method ipfs.pull).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn vfs_sync_from_ipfs(
        &self,
        Parameters(a): Parameters<SyncFromArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Out {
        let place = self
            .place(&ctx.peer, &a.path, Access::Write)
            .await
            .map_err(|e| e.0)?;
        let p = json!({"cid": a.cid, "path": place.vpath.to_string(), "api": self.ipfs_api});
        ok_json(
            self.daemon_call(&ctx, "ipfs.pull", "IPFS sync", p)
                .await
                .map_err(|e| e.0)?,
        )
    }

    /// The buckets: name, file count, root CID (daemon method bucket.list).
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn bucket_list(&self, Parameters(_): Parameters<NoArgs>, ctx: RequestContext<RoleServer>) -> Out {
        ok_json(
            self.daemon_call(&ctx, "bucket.list", "buckets", json!({}))
                .await
                .map_err(|e| e.0)?,
        )
    }

    /// The files of a bucket's index with their CIDs (daemon method bucket.files).
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn bucket_files(
        &self,
        Parameters(a): Parameters<BucketFilesArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Out {
        let p = params(&[
            ("name", Some(json!(a.name))),
            ("prefix", a.prefix.map(Value::String)),
        ]);
        let mut v = self
            .daemon_call(&ctx, "bucket.files", "buckets", p)
            .await
            .map_err(|e| e.0)?;
        if let (Some(limit), Some(files)) = (a.limit, v.get_mut("files").and_then(Value::as_array_mut)) {
            let omitted = files.len().saturating_sub(limit);
            files.truncate(limit);
            v["omitted"] = json!(omitted);
        }
        ok_json(v)
    }

    /// Which bucket files have a CID (daemon method bucket.find_cid).
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn bucket_find_cid(
        &self,
        Parameters(a): Parameters<FindCidArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Out {
        let p = json!({"cid": a.cid});
        ok_json(
            self.daemon_call(&ctx, "bucket.find_cid", "buckets", p)
                .await
                .map_err(|e| e.0)?,
        )
    }

    /// Freeze a bucket's index (or every bucket's) into a content-addressed snapshot (daemon method bucket.snapshot).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn bucket_snapshot(
        &self,
        Parameters(a): Parameters<BucketArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Out {
        ok_json(
            self.daemon_call(&ctx, "bucket.snapshot", "snapshots", by_name(a.name))
                .await
                .map_err(|e| e.0)?,
        )
    }

    /// The snapshots taken so far, or those holding one bucket (daemon method bucket.snapshots).
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn bucket_snapshots(
        &self,
        Parameters(a): Parameters<BucketArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Out {
        let p = params(&[("name", a.name.map(Value::String))]);
        ok_json(
            self.daemon_call(&ctx, "bucket.snapshots", "snapshots", p)
                .await
                .map_err(|e| e.0)?,
        )
    }

    /// Write a bucket (or every bucket) as CAR files ready for `ipfs dag import` (daemon method bucket.prepare_car).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn bucket_prepare_car(
        &self,
        Parameters(a): Parameters<PrepareCarArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Out {
        let mut p = by_name(a.name);
        if let Some(n) = a.shard_size {
            p["shard_size"] = json!(n);
        }
        ok_json(
            self.daemon_call(&ctx, "bucket.prepare_car", "CAR preparation", p)
                .await
                .map_err(|e| e.0)?,
        )
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
