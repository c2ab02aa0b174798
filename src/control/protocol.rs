//! The control protocol, version [`PROTOCOL_VERSION`]: every request, reply,
//! notification and error code, in one place. `docs/CONTROL.md` documents it
//! for other programs.
//!
//! Framing: one JSON object per line (UTF-8, `\n`-terminated, at most
//! [`MAX_LINE`] bytes), in JSON-RPC 2.0 shape. A request is
//! `{"jsonrpc":"2.0","id":ID,"method":M,"params":{..}}`; its reply is
//! `{"jsonrpc":"2.0","id":ID,"result":{..}}` or `{"jsonrpc":"2.0","id":ID,
//! "error":{"code":C,"message":S}}`. A long request sends notifications
//! `{"jsonrpc":"2.0","method":"progress","params":{"id":ID,..}}` before its
//! reply, on the same connection. Requests on one connection are answered in
//! order. A request without `id` is answered with `"id":null`.
//!
//! Compatibility: new methods and new reply fields may appear within a
//! version (clients ignore fields they do not know); removing or changing a
//! field bumps [`PROTOCOL_VERSION`].

use crate::metrics::{BackendSnapshot, OpSnapshot};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Protocol version, reported by `version` and `status`.
pub const PROTOCOL_VERSION: u32 = 1;
/// The JSON-RPC version string every frame carries.
pub const JSONRPC: &str = "2.0";
/// Longest request line accepted: 1 MiB is far above any real request (a
/// mount entry with options is under 4 KiB) and bounds a connection's memory.
pub const MAX_LINE: usize = 1 << 20;

/// JSON-RPC error codes used in replies.
pub mod code {
    /// The line is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON, but not a request object (no `method`, wrong `jsonrpc`).
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The method exists; its params do not fit.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The daemon failed while serving the request.
    pub const INTERNAL: i64 = -32603;
    /// The peer's uid is neither the mount's owner nor root.
    pub const PERMISSION_DENIED: i64 = -32000;
    /// The request line exceeds [`super::MAX_LINE`].
    pub const LINE_TOO_LONG: i64 = -32001;
    /// A mount-table change was refused (overlap, unknown path, bad backend).
    pub const TABLE: i64 = -32002;
    /// Some staged files could not be uploaded (flush).
    pub const UPLOAD_FAILED: i64 = -32003;
    /// The change was applied, but writing the config file failed.
    pub const SAVE_FAILED: i64 = -32004;
    /// `ipfs.push` / `ipfs.pull` failed (node, path or verification).
    pub const IPFS: i64 = -32010;
    /// A `bucket.*` call failed (unknown bucket, unreadable file, backend error).
    pub const BUCKET: i64 = -32005;
}

/// An error reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
}

/// Every request the daemon understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Protocol and daemon version.
    Version,
    /// Mount point, uptime, activity, bytes waiting to upload.
    Status,
    /// Cache, backend and operation figures.
    Stats,
    /// The mount table.
    MountsList,
    /// Places a backend at a path.
    MountsAdd(AddMount),
    /// Removes the backend at a path (after uploading what is pending under it).
    MountsRemove(RemoveMount),
    /// Empties the block cache.
    CacheDrop,
    /// Waits until every staged write is uploaded; sends progress notifications.
    Flush,
    /// Drains, unmounts and stops the daemon.
    Shutdown,
    /// A `bucket.*` method; long ones (`index`, `prepare_car`) send progress.
    Bucket(BucketMethod, BucketParams),
    /// Imports a path of the mount into a Kubo node; sends progress notifications.
    IpfsPush(IpfsPush),
    /// Fetches a CID from a Kubo node into a new path; sends progress notifications.
    IpfsPull(IpfsPull),
}

/// Params of `ipfs.push`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpfsPush {
    /// Path under the mount point, e.g. `/local/photos`.
    pub path: String,
    /// The node's RPC API, e.g. `http://127.0.0.1:5001`.
    pub api: String,
    /// DAG profile (default `unixfs-v1-2025`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Include names starting with `.`.
    #[serde(default)]
    pub hidden: bool,
}

/// Params of `ipfs.pull`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpfsPull {
    pub cid: String,
    /// A new path under the mount point, in a writable mount.
    pub path: String,
    pub api: String,
}

/// Reply of `ipfs.push`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpfsPushReply {
    pub root: String,
    pub car_bytes: u64,
    pub blocks: u64,
}

/// Reply of `ipfs.pull`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpfsPullReply {
    pub root: String,
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// The `bucket.*` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketMethod {
    List,
    Create,
    Remove,
    Index,
    Files,
    FindCid,
    Snapshot,
    Snapshots,
    PrepareCar,
}

impl BucketMethod {
    /// Every method, with its name on the wire.
    pub const ALL: [(BucketMethod, &'static str); 9] = [
        (BucketMethod::List, "bucket.list"),
        (BucketMethod::Create, "bucket.create"),
        (BucketMethod::Remove, "bucket.remove"),
        (BucketMethod::Index, "bucket.index"),
        (BucketMethod::Files, "bucket.files"),
        (BucketMethod::FindCid, "bucket.find_cid"),
        (BucketMethod::Snapshot, "bucket.snapshot"),
        (BucketMethod::Snapshots, "bucket.snapshots"),
        (BucketMethod::PrepareCar, "bucket.prepare_car"),
    ];

    /// The method name on the wire.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("bucket.list", |(_, n)| n)
    }
}

/// Params of the `bucket.*` methods (each uses the fields it needs; see
/// docs/CONTROL.md).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketParams {
    /// The bucket (create, remove, index, files, prepare_car; snapshot/snapshots: one bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Every bucket (snapshot, prepare_car).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// create: a scheme or URI, options, and the mount path (default `/buckets/NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// create: the CID profile (IPIP-0499 name; default `unixfs-v1-2025`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// files: only paths starting with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// find_cid: the CID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// index: re-hash every file, not only new or changed ones.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
    /// prepare_car: output directory (default `vfs/cars/<bucket>/`) and shard size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_size: Option<u64>,
}

/// Params of `mounts.add`: a `[[mount]]` entry plus `save`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMount {
    /// Path under the mount point, e.g. `/s3`.
    pub path: String,
    /// Backend scheme (`fs`, `memory`, `s3`, ...); optional with `uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// URI shorthand, e.g. `s3://bucket/prefix?region=x`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Backend options (values may be secrets: never echoed).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub read_only: bool,
    /// Also write the updated table to the config file.
    #[serde(default)]
    pub save: bool,
}

/// Params of `mounts.remove`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveMount {
    pub path: String,
    #[serde(default)]
    pub save: bool,
}

/// Params of methods that take none (`{}` or absent).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

impl Request {
    /// The method name on the wire.
    pub fn method(&self) -> &'static str {
        match self {
            Request::Version => "version",
            Request::Status => "status",
            Request::Stats => "stats",
            Request::MountsList => "mounts.list",
            Request::MountsAdd(_) => "mounts.add",
            Request::MountsRemove(_) => "mounts.remove",
            Request::CacheDrop => "cache.drop",
            Request::Flush => "flush",
            Request::Shutdown => "shutdown",
            Request::IpfsPush(_) => "ipfs.push",
            Request::IpfsPull(_) => "ipfs.pull",
            Request::Bucket(m, _) => m.name(),
        }
    }

    /// The params object on the wire.
    pub fn params(&self) -> Value {
        let v = match self {
            Request::MountsAdd(a) => serde_json::to_value(a),
            Request::MountsRemove(r) => serde_json::to_value(r),
            Request::IpfsPush(p) => serde_json::to_value(p),
            Request::IpfsPull(p) => serde_json::to_value(p),
            Request::Bucket(_, p) => serde_json::to_value(p),
            _ => Ok(Value::Object(Default::default())),
        };
        v.unwrap_or(Value::Null)
    }

    /// Builds a request from a method name and its params.
    pub fn parse(method: &str, params: Option<Value>) -> Result<Request, RpcError> {
        let params = match params {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(p) => p,
        };
        let bad = |e: serde_json::Error| RpcError::new(code::INVALID_PARAMS, format!("{method}: {e}"));
        let none = |p: Value| serde_json::from_value::<NoParams>(p).map_err(bad);
        Ok(match method {
            "version" => none(params).map(|_| Request::Version)?,
            "status" => none(params).map(|_| Request::Status)?,
            "stats" => none(params).map(|_| Request::Stats)?,
            "mounts.list" => none(params).map(|_| Request::MountsList)?,
            "mounts.add" => Request::MountsAdd(serde_json::from_value(params).map_err(bad)?),
            "mounts.remove" => Request::MountsRemove(serde_json::from_value(params).map_err(bad)?),
            "cache.drop" => none(params).map(|_| Request::CacheDrop)?,
            "flush" => none(params).map(|_| Request::Flush)?,
            "shutdown" => none(params).map(|_| Request::Shutdown)?,
            "ipfs.push" => Request::IpfsPush(serde_json::from_value(params).map_err(bad)?),
            "ipfs.pull" => Request::IpfsPull(serde_json::from_value(params).map_err(bad)?),
            m if m.starts_with("bucket.") && BucketMethod::ALL.iter().any(|(_, n)| *n == m) => {
                let b = BucketMethod::ALL.iter().find(|(_, n)| *n == m).map(|(b, _)| *b);
                Request::Bucket(
                    b.unwrap_or(BucketMethod::List),
                    serde_json::from_value(params).map_err(bad)?,
                )
            }
            other => {
                return Err(RpcError::new(
                    code::METHOD_NOT_FOUND,
                    format!("unknown method {other:?}"),
                ))
            }
        })
    }
}

/// Reply of `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionReply {
    pub protocol: u32,
    /// The daemon's crate version.
    pub version: String,
}

/// Reply of `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReply {
    pub protocol: u32,
    pub version: String,
    pub pid: u32,
    pub mountpoint: String,
    pub uptime_secs: u64,
    /// Backend mounts in the table.
    pub mounts: usize,
    /// FUSE operations running now.
    pub in_flight: u64,
    pub open_handles: usize,
    pub inodes: usize,
    /// Files with data not yet uploaded, and their staged bytes.
    pub staged_files: usize,
    pub staged_bytes: u64,
    /// True once a stop (signal, `shutdown`) began draining.
    pub stopping: bool,
    /// Buckets with an error (a corrupt index or journal moved aside, ...);
    /// absent when there is none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bucket_errors: Vec<BucketErrorInfo>,
}

/// A bucket's error as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketErrorInfo {
    pub bucket: String,
    pub error: String,
}

/// One mount-table row; option values of secret-looking keys are `"***"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountInfo {
    pub path: String,
    pub scheme: String,
    pub read_only: bool,
    pub options: BTreeMap<String, String>,
}

/// Reply of `mounts.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountsReply {
    pub mounts: Vec<MountInfo>,
}

/// Reply of `mounts.add` and `mounts.remove`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeReply {
    pub path: String,
    /// The config file written, when `save` was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_to: Option<String>,
}

/// Figures of one cache tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TierStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub used_bytes: u64,
    /// Disk tier only: blocks not written because the filesystem was at its
    /// `cache.min_free` margin (0 for the memory tier).
    #[serde(default)]
    pub writes_refused: u64,
}

/// Figures of the block cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CacheFigures {
    pub memory: TierStats,
    pub disk: TierStats,
    /// Blocks fetched from backends (missing from both tiers), and their bytes.
    pub backend_fetches: u64,
    pub backend_bytes: u64,
    /// Backend requests those blocks took (a prefetch run is one ranged
    /// request for several blocks).
    #[serde(default)]
    pub backend_requests: u64,
}

/// Reply of `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReply {
    /// Absent when the mount runs without a block cache.
    #[serde(default)]
    pub cache: Option<CacheFigures>,
    pub backends: Vec<BackendSnapshot>,
    pub ops: Vec<OpSnapshot>,
    /// Upper bounds (µs) of the latency buckets in `ops[].buckets`; the last
    /// bucket of each op has no bound.
    pub latency_buckets_us: Vec<u64>,
    pub in_flight: u64,
}

/// Reply of `cache.drop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheDropReply {
    /// False when the mount has no cache.
    pub dropped: bool,
}

/// Reply of `flush` (failures come as an error with code `UPLOAD_FAILED`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlushReply {
    /// Files that were waiting when the flush began.
    pub files: usize,
}

/// Reply of `shutdown`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShutdownReply {
    pub stopping: bool,
}

/// Params of a `progress` notification.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// The id of the request it belongs to.
    pub id: Value,
    /// The request's method.
    pub method: String,
    /// Files still waiting (to upload for `flush`; to hash or pack for `bucket.*`).
    pub files_remaining: usize,
    /// Bytes done so far (`ipfs.push`: read and packed; `ipfs.pull`: received).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// `bucket.*`: the stage (`hashing`, `packing`), files done and the total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// An incoming line, before its method is known.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub jsonrpc: Option<String>,
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub params: Option<Value>,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<RpcError>,
}

/// A reply frame.
#[derive(Debug, Serialize)]
pub struct ReplyFrame<'a> {
    pub jsonrpc: &'static str,
    pub id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a RpcError>,
}

/// A request frame (what clients send).
#[derive(Debug, Serialize)]
pub struct RequestFrame<'a> {
    pub jsonrpc: &'static str,
    pub id: u64,
    pub method: &'a str,
    pub params: Value,
}

/// A notification frame.
#[derive(Debug, Serialize)]
pub struct NotificationFrame<'a> {
    pub jsonrpc: &'static str,
    pub method: &'static str,
    pub params: &'a Progress,
}

/// The reply line (without `\n`) for `id` and an outcome.
pub fn reply_line(id: &Value, outcome: &Result<Value, RpcError>) -> String {
    let frame = ReplyFrame {
        jsonrpc: JSONRPC,
        id,
        result: outcome.as_ref().ok(),
        error: outcome.as_ref().err(),
    };
    serde_json::to_string(&frame).unwrap_or_else(|_| {
        format!(
            r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":{},"message":"unserialisable reply"}}}}"#,
            code::INTERNAL
        )
    })
}

/// The notification line (without `\n`) for a progress report.
pub fn progress_line(p: &Progress) -> String {
    let frame = NotificationFrame {
        jsonrpc: JSONRPC,
        method: "progress",
        params: p,
    };
    serde_json::to_string(&frame).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_roundtrips_every_method_through_params() {
        let all = [
            Request::Version,
            Request::Status,
            Request::Stats,
            Request::MountsList,
            Request::MountsAdd(AddMount {
                path: "/m".into(),
                scheme: Some("memory".into()),
                ..Default::default()
            }),
            Request::MountsRemove(RemoveMount {
                path: "/m".into(),
                save: true,
            }),
            Request::CacheDrop,
            Request::Flush,
            Request::Shutdown,
            Request::IpfsPush(IpfsPush {
                path: "/local/x".into(),
                api: "http://127.0.0.1:5001".into(),
                profile: Some("unixfs-v0-2015".into()),
                hidden: true,
            }),
            Request::IpfsPull(IpfsPull {
                cid: "bafkqaaa".into(),
                path: "/memory/x".into(),
                api: "http://127.0.0.1:5001".into(),
            }),
            Request::Bucket(
                BucketMethod::Files,
                BucketParams {
                    name: Some("media".into()),
                    prefix: Some("a/".into()),
                    ..Default::default()
                },
            ),
            Request::Bucket(BucketMethod::PrepareCar, BucketParams::default()),
        ];
        for r in all {
            assert_eq!(Request::parse(r.method(), Some(r.params())).unwrap(), r);
        }
    }

    #[test]
    fn parse_rejects_unknown_method_and_bad_params() {
        assert_eq!(
            Request::parse("nope", None).unwrap_err().code,
            code::METHOD_NOT_FOUND
        );
        let e = Request::parse("mounts.add", Some(serde_json::json!({"path": 3}))).unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMS);
        let e = Request::parse("status", Some(serde_json::json!({"x": 1}))).unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMS);
        assert_eq!(
            Request::parse("status", Some(Value::Null)).unwrap(),
            Request::Status
        );
    }

    #[test]
    fn reply_line_carries_either_result_or_error() {
        let ok = reply_line(&Value::from(7), &Ok(serde_json::json!({"a": 1})));
        assert_eq!(ok, r#"{"jsonrpc":"2.0","id":7,"result":{"a":1}}"#);
        let err = reply_line(&Value::Null, &Err(RpcError::new(code::PARSE_ERROR, "bad")));
        assert_eq!(
            err,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#
        );
    }
}
