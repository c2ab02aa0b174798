//! `scheme = "ipfs-mfs"`: a Kubo node's MFS (its mutable file system) as a
//! read-write [`Tree`], over the node's `files/*` RPC calls.
//!
//! Written files get their CIDs from the node (`files/write` builds the DAG),
//! and each entry's `Meta::version` is its MFS hash, so the block cache never
//! serves bytes of a replaced file. Uploads send the staged file whole
//! (`files/write` with `create`, `truncate`, `parents`); a rename is
//! `files/mv`. opendal's `ipmfs` service is not used: its multipart parts
//! carry no content type, which Kubo-RPC nodes other than kubo refuse.
//! Errors: the node's "does not exist" is ENOENT; anything else is EIO.

use crate::backend::{BackendError, BackendErrorKind};
use crate::vfs::{Meta, Tree, VfsError};
use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// A Kubo node's MFS under `root`.
pub struct MfsTree {
    api: String,
    read_only: bool,
    root: String,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Stat {
    #[serde(rename = "Hash")]
    hash: String,
    #[serde(rename = "Size", default)]
    size: u64,
    #[serde(rename = "Type")]
    kind: String,
}

#[derive(Deserialize)]
struct Listing {
    #[serde(rename = "Entries", default)]
    entries: Option<Vec<LsEntry>>,
}

#[derive(Deserialize)]
struct LsEntry {
    #[serde(rename = "Name")]
    name: String,
}

fn other(message: impl Into<String>) -> VfsError {
    VfsError::Backend(BackendError::new(BackendErrorKind::Other, message))
}

/// Percent-encodes a query value (MFS paths may hold any byte but NUL).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl MfsTree {
    /// A tree over the node at `api`, rooted at the MFS directory `root`
    /// (created if missing at the first write; default `/`).
    pub fn new(api: &str, root: Option<&str>, read_only: bool, timeout: Duration) -> Result<Self, String> {
        let url = reqwest::Url::parse(api).map_err(|e| format!("bad api URL {api:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("api URL {api:?} is not http(s)"));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let root = format!("/{}", root.unwrap_or("").trim_matches('/'));
        Ok(Self {
            api: api.trim_end_matches('/').to_string(),
            read_only,
            root,
            client,
        })
    }

    fn full(&self, path: &str) -> String {
        match (self.root.as_str(), path) {
            (r, "") => r.to_string(),
            ("/", p) => format!("/{p}"),
            (r, p) => format!("{r}/{p}"),
        }
    }

    /// POSTs `files/<call>?<query>` (with an optional multipart file) and
    /// returns the body of a 2xx answer.
    async fn call(&self, call: &str, query: &str, file: Option<Vec<u8>>) -> Result<Bytes, VfsError> {
        let url = format!("{}/api/v0/files/{call}?{query}", self.api);
        let mut req = self.client.post(&url);
        if let Some(data) = file {
            let boundary = format!("ipfs-kit-{}", uuid::Uuid::new_v4().simple());
            let mut body = Vec::with_capacity(data.len() + 200);
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"data\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(&data);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            req = req
                .header(
                    "Content-Type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body);
        }
        let resp = req.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                BackendErrorKind::TimedOut
            } else {
                BackendErrorKind::Other
            };
            VfsError::Backend(BackendError::new(kind, format!("files/{call}: {e}")))
        })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| other(format!("files/{call}: {e}")))?;
        if status.is_success() {
            return Ok(body);
        }
        let text = String::from_utf8_lossy(&body);
        if text.contains("does not exist") || text.contains("not found") {
            return Err(VfsError::NotFound);
        }
        Err(other(format!("files/{call}: HTTP {status}: {}", text.trim())))
    }

    fn writable(&self) -> Result<(), VfsError> {
        if self.read_only {
            Err(VfsError::ReadOnly)
        } else {
            Ok(())
        }
    }

    async fn stat_full(&self, full: &str) -> Result<Meta, VfsError> {
        let body = self.call("stat", &format!("arg={}", enc(full)), None).await?;
        let s: Stat = serde_json::from_slice(&body).map_err(|e| other(format!("files/stat reply: {e}")))?;
        let is_dir = s.kind == "directory";
        Ok(Meta {
            is_dir,
            size: if is_dir { 0 } else { s.size },
            version: Some(s.hash),
            ..Meta::default()
        })
    }

    async fn names(&self, path: &str) -> Result<Vec<String>, VfsError> {
        let body = self
            .call("ls", &format!("arg={}", enc(&self.full(path))), None)
            .await?;
        let l: Listing = serde_json::from_slice(&body).map_err(|e| other(format!("files/ls reply: {e}")))?;
        Ok(l.entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.name)
            .collect())
    }

    async fn write_bytes(&self, path: &str, data: Vec<u8>) -> Result<(), VfsError> {
        let q = format!(
            "arg={}&create=true&truncate=true&parents=true",
            enc(&self.full(path))
        );
        self.call("write", &q, Some(data)).await.map(|_| ())
    }
}

#[async_trait]
impl Tree for MfsTree {
    fn read_only(&self) -> bool {
        self.read_only
    }

    fn describe(&self) -> String {
        format!("ipfs-mfs ({} {})", self.api, self.root)
    }

    async fn stat(&self, path: &str) -> Result<Meta, VfsError> {
        match self.stat_full(&self.full(path)).await {
            // The root is there even before the first write creates it.
            Err(VfsError::NotFound) if path.is_empty() => Ok(Meta::dir()),
            r => r,
        }
    }

    async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, VfsError> {
        let names = match self.names(path).await {
            Err(VfsError::NotFound) if path.is_empty() => Vec::new(),
            r => r?,
        };
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let meta = self.stat(&crate::vfs::join_rel(path, &name)).await?;
            out.push((name, meta));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn read(&self, path: &str, offset: u64, len: u64) -> Result<Bytes, VfsError> {
        let q = format!("arg={}&offset={offset}&count={len}", enc(&self.full(path)));
        self.call("read", &q, None).await
    }

    async fn upload(&self, path: &str, staged: &Path) -> Result<u64, VfsError> {
        self.writable()?;
        let data = tokio::fs::read(staged)
            .await
            .map_err(|e| other(format!("reading {}: {e}", staged.display())))?;
        let n = data.len() as u64;
        self.write_bytes(path, data).await?;
        Ok(n)
    }

    async fn create_file(&self, path: &str) -> Result<(), VfsError> {
        self.writable()?;
        self.write_bytes(path, Vec::new()).await
    }

    async fn mkdir(&self, path: &str) -> Result<(), VfsError> {
        self.writable()?;
        if self.stat_full(&self.full(path)).await.is_ok() {
            return Err(VfsError::Exists);
        }
        self.call(
            "mkdir",
            &format!("arg={}&parents=true", enc(&self.full(path))),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn remove_file(&self, path: &str) -> Result<(), VfsError> {
        self.writable()?;
        if self.stat(path).await?.is_dir {
            return Err(VfsError::IsDir);
        }
        self.call("rm", &format!("arg={}", enc(&self.full(path))), None)
            .await
            .map(|_| ())
    }

    async fn remove_dir(&self, path: &str) -> Result<(), VfsError> {
        self.writable()?;
        if !self.stat(path).await?.is_dir {
            return Err(VfsError::NotDir);
        }
        if !self.names(path).await?.is_empty() {
            return Err(VfsError::NotEmpty);
        }
        self.call(
            "rm",
            &format!("arg={}&recursive=true", enc(&self.full(path))),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn rename(&self, from: &str, to: &str, _is_dir: bool) -> Result<(), VfsError> {
        self.writable()?;
        let q = format!("arg={}&arg={}", enc(&self.full(from)), enc(&self.full(to)));
        self.call("mv", &q, None).await.map(|_| ())
    }
}
