//! Where blocks come from: the [`BlockSource`] trait and its HTTP sources, a
//! Kubo RPC node (`POST /api/v0/block/get?arg=CID`) and a trustless gateway
//! (`GET /ipfs/CID?format=raw`, `Accept: application/vnd.ipld.raw`).
//!
//! A source hands back bytes as it got them: checking them against the CID
//! is the store's job (`store.rs`), so no source is trusted. Bodies larger
//! than [`MAX_BLOCK`] are refused before they are read whole, so a hostile
//! server cannot exhaust memory.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use cid::Cid;
use std::time::Duration;

/// Largest block accepted from a source: the CAR reader's section limit
/// (8 MiB, 4x the 2 MiB block limit IPFS peers enforce).
pub const MAX_BLOCK: u64 = crate::car::MAX_SECTION;

/// Why a source did not deliver a block.
#[derive(Debug, Clone)]
pub enum SourceError {
    /// The source answered, but does not have it.
    Missing(String),
    /// The request did not finish within the I/O timeout.
    TimedOut(String),
    /// Anything else (connection refused, HTTP 5xx, a body over the limit).
    Failed(String),
}

impl SourceError {
    /// The message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            SourceError::Missing(m) | SourceError::TimedOut(m) | SourceError::Failed(m) => m,
        }
    }
}

/// Something that returns the bytes stored under a CID (unverified).
#[async_trait]
pub trait BlockSource: Send + Sync + 'static {
    /// A name for logs: the URL or the CAR files.
    fn name(&self) -> String;
    /// The block's bytes as the source has them.
    async fn get(&self, cid: &Cid) -> Result<Bytes, SourceError>;
}

/// Which HTTP API a source speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpKind {
    /// A Kubo RPC API (`api = URL`).
    Rpc,
    /// A trustless gateway (`gateway = URL`).
    Gateway,
}

/// A block source over HTTP.
pub struct HttpSource {
    kind: HttpKind,
    base: String,
    client: reqwest::Client,
}

impl HttpSource {
    /// A source at `base` (e.g. `http://127.0.0.1:5001`); every request gives
    /// up after `timeout`.
    pub fn new(kind: HttpKind, base: &str, timeout: Duration) -> Result<Self, String> {
        let url = reqwest::Url::parse(base).map_err(|e| format!("bad URL {base:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("URL {base:?} is not http(s)"));
        }
        // reqwest is built without a TLS provider of its own: use ring, as the
        // S3 backend does (installing twice is harmless).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            kind,
            base: base.trim_end_matches('/').to_string(),
            client,
        })
    }

    fn request(&self, cid: &Cid) -> reqwest::RequestBuilder {
        match self.kind {
            HttpKind::Rpc => self
                .client
                .post(format!("{}/api/v0/block/get?arg={cid}", self.base)),
            HttpKind::Gateway => self
                .client
                .get(format!("{}/ipfs/{cid}?format=raw", self.base))
                .header("Accept", "application/vnd.ipld.raw"),
        }
    }
}

fn classify(e: reqwest::Error) -> SourceError {
    if e.is_timeout() {
        SourceError::TimedOut(e.to_string())
    } else {
        SourceError::Failed(e.to_string())
    }
}

#[async_trait]
impl BlockSource for HttpSource {
    fn name(&self) -> String {
        match self.kind {
            HttpKind::Rpc => format!("api {}", self.base),
            HttpKind::Gateway => format!("gateway {}", self.base),
        }
    }

    async fn get(&self, cid: &Cid) -> Result<Bytes, SourceError> {
        let mut resp = self.request(cid).send().await.map_err(classify)?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let text = format!(
                "HTTP {status}: {}",
                body.trim().chars().take(200).collect::<String>()
            );
            // Kubo answers 500 with "not found" for a block it lacks offline;
            // gateways answer 404.
            return Err(if status.as_u16() == 404 || body.contains("not found") {
                SourceError::Missing(text)
            } else {
                SourceError::Failed(text)
            });
        }
        if resp.content_length().is_some_and(|n| n > MAX_BLOCK) {
            return Err(SourceError::Failed(format!(
                "block larger than {MAX_BLOCK} bytes"
            )));
        }
        let mut buf = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if buf.len() as u64 + chunk.len() as u64 > MAX_BLOCK {
                return Err(SourceError::Failed(format!(
                    "block larger than {MAX_BLOCK} bytes"
                )));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}
