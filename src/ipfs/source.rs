//! Where blocks come from: the [`BlockSource`] trait and its HTTP sources, a
//! Kubo RPC node (`POST /api/v0/block/get?arg=CID`) and a trustless gateway
//! (`GET /ipfs/CID?format=raw`, `Accept: application/vnd.ipld.raw`). A
//! gateway is also asked for byte ranges of a file as one CAR
//! (`GET /ipfs/CID?format=car&dag-scope=entity&entity-bytes=FROM:TO`,
//! `Accept: application/vnd.ipld.car`): the blocks a long read needs in one
//! round trip. A gateway that refuses that (a 4xx other than 404, or an
//! answer that is not a CAR) is not asked for ranges again. An RPC node is
//! asked for long spans of a file's bytes with `cat` (`offset`, `length`),
//! read as a stream (see `stream.rs`).
//!
//! A source hands back bytes as it got them: checking them against the CID
//! is the store's job (`store.rs`), so no source is trusted. Bodies larger
//! than [`MAX_BLOCK`] (a CAR range: its length plus [`CAR_RANGE_SLACK`]) are
//! refused before they are read whole, so a hostile server cannot exhaust
//! memory.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use cid::Cid;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Largest block accepted from a source: the CAR reader's section limit
/// (8 MiB, 4x the 2 MiB block limit IPFS peers enforce).
pub const MAX_BLOCK: u64 = crate::car::MAX_SECTION;
/// Bytes a CAR range may hold beyond the range itself: the two leaves at its
/// edges (each up to [`MAX_BLOCK`], only partly inside the range) and the
/// DAG nodes above the leaves (a few KiB each; two more blocks' worth).
pub const CAR_RANGE_SLACK: u64 = 4 * MAX_BLOCK;
/// The media type of a CAR answer.
const CAR_MEDIA_TYPE: &str = "application/vnd.ipld.car";

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

    /// The blocks of the file `cid` that hold its bytes `from..=to` (and
    /// the nodes above them) as one CAR stream, unverified. `Ok(None)`: this
    /// source does not serve CAR ranges (only trustless gateways do).
    async fn get_car_range(&self, _cid: &Cid, _from: u64, _to: u64) -> Result<Option<Bytes>, SourceError> {
        Ok(None)
    }

    /// The bytes `offset..offset + length` of the file `cid` as one stream
    /// (a Kubo node's `cat`), unverified: the caller checks them leaf by
    /// leaf. `Ok(None)`: this source does not serve file bytes (only an RPC
    /// API does).
    async fn cat_span(
        &self,
        _cid: &Cid,
        _offset: u64,
        _length: u64,
    ) -> Result<Option<SpanBody>, SourceError> {
        Ok(None)
    }
}

/// The body of a `cat_span` answer, read a chunk at a time.
pub struct SpanBody(reqwest::Response);

impl SpanBody {
    /// The next chunk; `None` at the end of the body.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, SourceError> {
        self.0.chunk().await.map_err(classify)
    }

    /// A body of `bytes` (for tests of the span reader).
    #[cfg(test)]
    pub fn of(bytes: Vec<u8>) -> Self {
        Self(reqwest::Response::from(http::Response::new(bytes)))
    }
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
    /// For `cat` spans: gives up when the node sends nothing for the I/O
    /// timeout, not after it in all (a span is read as fast as its reader).
    streams: reqwest::Client,
    /// False once the gateway refused a CAR range: it is not asked again.
    car_ranges: AtomicBool,
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
        let streams = reqwest::Client::builder()
            .read_timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            kind,
            base: base.trim_end_matches('/').to_string(),
            client,
            streams,
            car_ranges: AtomicBool::new(kind == HttpKind::Gateway),
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
        tracing::trace!(%cid, source = %self.base, "block request");
        let resp = self.request(cid).send().await.map_err(classify)?;
        let status = resp.status();
        if !status.is_success() {
            let text = failure(resp, "").await;
            // Kubo answers 500 with "not found" for a block it lacks offline;
            // gateways answer 404.
            return Err(if status.as_u16() == 404 || text.contains("not found") {
                SourceError::Missing(text)
            } else {
                SourceError::Failed(text)
            });
        }
        read_body(resp, MAX_BLOCK, "block").await
    }

    async fn get_car_range(&self, cid: &Cid, from: u64, to: u64) -> Result<Option<Bytes>, SourceError> {
        if !self.car_ranges.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let resp = self
            .client
            .get(format!(
                "{}/ipfs/{cid}?format=car&dag-scope=entity&entity-bytes={from}:{to}",
                self.base
            ))
            .header("Accept", CAR_MEDIA_TYPE)
            .send()
            .await
            .map_err(classify)?;
        let status = resp.status();
        let is_car = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with(CAR_MEDIA_TYPE));
        let refused = if status.is_success() {
            !is_car
        } else {
            // 404: the gateway lacks the content (it may still serve ranges);
            // other 4xx and 501: it does not take the request as asked.
            (status.is_client_error() && status.as_u16() != 404) || status.as_u16() == 501
        };
        if refused {
            self.car_ranges.store(false, Ordering::Relaxed);
            tracing::info!(gateway = %self.base, %status, "gateway does not serve CAR ranges (entity-bytes); reading block by block");
            return Ok(None);
        }
        if !status.is_success() {
            let text = failure(resp, "CAR range: ").await;
            return Err(if status.as_u16() == 404 {
                SourceError::Missing(text)
            } else {
                SourceError::Failed(text)
            });
        }
        let limit = (to - from).saturating_add(1).saturating_add(CAR_RANGE_SLACK);
        read_body(resp, limit, "CAR range").await.map(Some)
    }

    async fn cat_span(&self, cid: &Cid, offset: u64, length: u64) -> Result<Option<SpanBody>, SourceError> {
        if self.kind != HttpKind::Rpc {
            return Ok(None);
        }
        tracing::trace!(%cid, offset, length, source = %self.base, "cat span request");
        let resp = self
            .streams
            .post(format!(
                "{}/api/v0/cat?arg={cid}&offset={offset}&length={length}",
                self.base
            ))
            .send()
            .await
            .map_err(classify)?;
        if !resp.status().is_success() {
            return Err(SourceError::Failed(failure(resp, "cat: ").await));
        }
        Ok(Some(SpanBody(resp)))
    }
}

/// `message` for a failed answer of `what`: the status and the start of the body.
async fn failure(resp: reqwest::Response, what: &str) -> String {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    format!(
        "{what}HTTP {status}: {}",
        body.trim().chars().take(200).collect::<String>()
    )
}

/// The body of `resp`, refused (before it is read whole) past `limit` bytes.
async fn read_body(mut resp: reqwest::Response, limit: u64, what: &str) -> Result<Bytes, SourceError> {
    let too_large = || SourceError::Failed(format!("{what} larger than {limit} bytes"));
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    // Sized from the announced length (a Kubo node announces every block's),
    // so a 1 MiB block is copied once, not regrown through every doubling.
    let mut buf = BytesMut::with_capacity(resp.content_length().unwrap_or(0).min(limit) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(classify)? {
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
