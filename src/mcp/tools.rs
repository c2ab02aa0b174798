//! The MCP tools: one-line descriptions, annotations, and each tool's glue
//! from its arguments ([`super::args`]) to the daemon's socket or the file
//! work ([`super::files`], [`super::walk`]).
//!
//! Every failure is a tool result with `isError: true` (see
//! [`super::server`] for arguments that do not fit the schema), so an agent
//! reads why and can correct itself.

use super::args::*;
use super::error::ToolError;
use super::files::{self, MAX_READ};
use super::place::{Access, Place};
use super::progress::{Forwarder, Reporter};
use super::server::VfsServer;
use super::walk;
use base64::Engine;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, Peer, RoleServer};
use serde_json::{json, Value};

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

/// What `vfs_copy` and `vfs_move` run on their two places.
type TransferFn = fn(&Place, &Place, bool, &Reporter) -> Result<Value, ToolError>;

impl VfsServer {
    /// Resolves `source` (for `src_access`) and `destination` (for writing),
    /// then runs `op` on a blocking thread with its progress forwarded.
    async fn transfer(
        &self,
        a: CopyArgs,
        ctx: RequestContext<RoleServer>,
        src_access: Access,
        op: TransferFn,
    ) -> Out {
        let src = self
            .place(&ctx.peer, &a.source, src_access)
            .await
            .map_err(|e| e.0)?;
        let dst = self
            .place(&ctx.peer, &a.destination, Access::Write)
            .await
            .map_err(|e| e.0)?;
        let fwd = Forwarder::new(ctx.peer.clone(), ctx.meta.get_progress_token());
        let rep: Reporter = fwd.reporter.clone();
        let r = blocking(move || op(&src, &dst, a.overwrite, &rep)).await;
        fwd.finish().await;
        ok_json(r.map_err(|e| e.0)?)
    }
}

#[tool_router(vis = "pub(super)")]
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
        self.transfer(a, ctx, Access::Read, files::copy).await
    }

    /// Move or rename a file or directory; across mounts it copies, then removes the source.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn vfs_move(&self, Parameters(a): Parameters<CopyArgs>, ctx: RequestContext<RoleServer>) -> Out {
        self.transfer(a, ctx, Access::Write, files::rename).await
    }

    /// Type, size, times, mode and owning mount of a path, with its CID (known to the mount, or computed on request).
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn vfs_stat(&self, Parameters(a): Parameters<StatArgs>, ctx: RequestContext<RoleServer>) -> Out {
        let place = self
            .place(&ctx.peer, &a.path, Access::Read)
            .await
            .map_err(|e| e.0)?;
        let profile = match a.profile.as_deref() {
            None => crate::car::Profile::default(),
            Some(p) => p.parse().map_err(|e| format!("profile: {e}"))?,
        };
        let fwd = Forwarder::new(ctx.peer.clone(), ctx.meta.get_progress_token());
        let rep: Reporter = fwd.reporter.clone();
        let compute = a.compute_cid.then_some(profile);
        let r = blocking(move || files::stat(&place, compute, &rep)).await;
        fwd.finish().await;
        ok_json(r.map_err(|e| e.0)?)
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
