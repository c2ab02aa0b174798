//! `bucket list|create|remove|index|files|find-cid|snapshot|snapshots|prepare-car`:
//! through the control socket when a mount is running (so its live table
//! and index change), in-process otherwise (the config file and the data
//! home directly). Tables for people, `--json` for scripts; `prepare-car`
//! always prints its JSON summary.

use super::control::{live_sockets, parse_options, resolve_socket, Target};
use crate::bucket::{self, Mounts, ProgressFn, Service};
use crate::config::{data_home, save_mounts, Config, MountEntry};
use crate::control::protocol::{BucketMethod, BucketParams, Request};
use crate::control::Client;
use async_trait::async_trait;
use bytesize::ByteSize;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Where the command runs.
#[derive(Args, Debug, Clone, Default)]
pub struct Where {
    #[command(flatten)]
    pub target: Target,
    /// Run in-process on this config file (without it: through the running mount's socket if there
    /// is one; with several running, name one with -m; with none, in-process on
    /// $IPFS_KIT_HOME/config.toml or the built-in default).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `bucket` subcommands.
#[derive(Subcommand, Debug)]
pub enum BucketCmd {
    /// Every bucket with its files, size, root CID and last snapshot.
    List(Where),
    /// Make a bucket: a mount at VPATH (default /buckets/NAME) whose files are indexed; saved to the config.
    Create(CreateArgs),
    /// Remove a bucket's mount (its index and snapshots stay on disk).
    Remove(NameArgs),
    /// Re-index a bucket from its backend (new or changed files are hashed).
    Index(IndexArgs),
    /// The indexed files of a bucket.
    Files(FilesArgs),
    /// Which buckets hold a CID, and where.
    FindCid(FindArgs),
    /// Snapshot one bucket or all of them.
    Snapshot(SnapshotArgs),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// Write the bucket's DAG as CAR file(s) under vfs/cars/<bucket>/ and print a JSON summary.
    PrepareCar(CarArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub name: String,
    /// A scheme (fs, memory, s3, ...) or a URI (fs:///srv/data, s3://bucket/prefix?region=x).
    pub scheme: String,
    /// Backend option (repeatable), e.g. -O root=/srv/data.
    #[arg(short = 'O', value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Mount path under the mount point.
    #[arg(long = "path", value_name = "VPATH")]
    pub vpath: Option<String>,
    /// CID profile (unixfs-v1-2025, unixfs-v0-2015, ipfs-car); default unixfs-v1-2025.
    #[arg(long)]
    pub profile: Option<String>,
    #[command(flatten)]
    pub at: Where,
}

#[derive(Args, Debug)]
pub struct NameArgs {
    pub name: String,
    #[command(flatten)]
    pub at: Where,
}

#[derive(Args, Debug)]
pub struct IndexArgs {
    pub name: String,
    /// Re-hash every file, not only new or changed ones.
    #[arg(long)]
    pub full: bool,
    #[command(flatten)]
    pub at: Where,
}

#[derive(Args, Debug)]
pub struct FilesArgs {
    pub name: String,
    /// Only paths starting with this.
    #[arg(long)]
    pub prefix: Option<String>,
    #[command(flatten)]
    pub at: Where,
}

#[derive(Args, Debug)]
pub struct FindArgs {
    pub cid: String,
    #[command(flatten)]
    pub at: Where,
}

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// The bucket (or --all).
    #[arg(required_unless_present = "all")]
    pub name: Option<String>,
    #[arg(long, conflicts_with = "name")]
    pub all: bool,
    #[command(flatten)]
    pub at: Where,
}

#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    /// Only snapshots holding this bucket.
    #[arg(long = "bucket")]
    pub bucket: Option<String>,
    #[command(flatten)]
    pub at: Where,
}

#[derive(Args, Debug)]
pub struct CarArgs {
    /// The bucket (or --all).
    #[arg(required_unless_present = "all")]
    pub name: Option<String>,
    #[arg(long, conflicts_with = "name")]
    pub all: bool,
    /// Output directory (default $IPFS_KIT_HOME/vfs/cars/<bucket>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write Storacha shards of at most N bytes plus their index CAR.
    #[arg(long, value_name = "N")]
    pub shard_size: Option<u64>,
    #[command(flatten)]
    pub at: Where,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ipfs-kit-fuse: {msg}");
    ExitCode::FAILURE
}

/// The mount table of the config file, for in-process create/remove.
struct FileMounts {
    file: PathBuf,
    config: std::sync::Mutex<Config>,
}

#[async_trait]
impl Mounts for FileMounts {
    async fn add(&self, entry: MountEntry) -> Result<Option<String>, String> {
        let mut cfg = self.config.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = cfg.clone();
        next.mounts.push(entry);
        next.validate().map_err(|e| e.to_string())?;
        save_mounts(&self.file, &next.mounts).map_err(|e| e.to_string())?;
        *cfg = next;
        Ok(Some(self.file.display().to_string()))
    }

    async fn remove(&self, path: &str) -> Result<Option<String>, String> {
        let mut cfg = self.config.lock().unwrap_or_else(|e| e.into_inner());
        let before = cfg.mounts.len();
        cfg.mounts.retain(|m| m.normalized_path() != path);
        if cfg.mounts.len() == before {
            return Err(format!("no mount at {path} in {}", self.file.display()));
        }
        save_mounts(&self.file, &cfg.mounts).map_err(|e| e.to_string())?;
        Ok(Some(self.file.display().to_string()))
    }
}

fn bar() -> ProgressBar {
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} files ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// Runs a call in-process: the data home, the config file, backends opened here.
fn in_process(at: &Where, method: BucketMethod, params: BucketParams) -> Result<Value, String> {
    let home = data_home().map_err(|e| e.to_string())?;
    let file = at.config.clone().unwrap_or_else(|| home.join("config.toml"));
    let config = Config::load(at.config.as_deref(), &home).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let pb = bar();
    let shown = pb.clone();
    let progress: ProgressFn = Arc::new(move |stage: &str, done: u64, total: u64| {
        shown.set_message(stage.to_string());
        shown.set_length(total);
        shown.set_position(done);
    });
    let out = rt.block_on(async {
        let router = crate::daemon::build_router(&config).map_err(|e| format!("{e:#}"))?;
        let catalog = bucket::open(&home, &config);
        let service = Service {
            catalog: catalog.clone(),
            router,
            mounts: Arc::new(FileMounts {
                file,
                config: std::sync::Mutex::new(config.clone()),
            }),
        };
        let v = service
            .call(method, params, progress)
            .await
            .map_err(|e| e.to_string());
        // Whatever the call journaled goes into the index before we exit.
        let _ = tokio::task::spawn_blocking(move || catalog.compact_all()).await;
        v
    });
    pb.finish_and_clear();
    out
}

/// Runs a call through the running mount's socket, or in-process when none runs.
fn run(at: &Where, method: BucketMethod, params: BucketParams) -> Result<Value, String> {
    let explicit = at.target.socket.is_some() || at.target.mountpoint.is_some();
    if at.config.is_some() && !explicit {
        // A config file names the buckets to work on: in-process.
        return in_process(at, method, params);
    }
    if !explicit && live_sockets().is_empty() {
        // No mount runs: work on the config file and data home directly.
        return in_process(at, method, params);
    }
    // One mount, or the one named; several unnamed is an error, never a
    // silent in-process change that no running mount would see.
    let socket = resolve_socket(&at.target, None)?;
    let mut c = Client::connect(&socket).map_err(|e| e.to_string())?;
    let pb = bar();
    let v = c
        .call_with_progress::<Value>(&Request::Bucket(method, params), |p| {
            if let (Some(stage), Some(done), Some(total)) = (&p.stage, p.done, p.total) {
                pb.set_message(stage.clone());
                pb.set_length(total);
                pb.set_position(done);
            }
        })
        .map_err(|e| e.to_string());
    pb.finish_and_clear();
    v
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn s(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(x) => x.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn size(v: &Value, k: &str) -> String {
    ByteSize(v[k].as_u64().unwrap_or(0)).to_string()
}

/// Entry point of `bucket`.
pub fn run_bucket(cmd: BucketCmd) -> ExitCode {
    let (at, method, params) = match cmd {
        BucketCmd::List(at) => (at, BucketMethod::List, BucketParams::default()),
        BucketCmd::Create(a) => {
            let options = match parse_options(&a.options) {
                Ok(o) => o,
                Err(e) => return fail(e),
            };
            let p = BucketParams {
                name: Some(a.name),
                scheme: Some(a.scheme),
                options,
                path: a.vpath,
                profile: a.profile,
                ..Default::default()
            };
            (a.at, BucketMethod::Create, p)
        }
        BucketCmd::Remove(a) => (a.at, BucketMethod::Remove, named(a.name)),
        BucketCmd::Index(a) => {
            let p = BucketParams {
                full: a.full,
                ..named(a.name)
            };
            (a.at, BucketMethod::Index, p)
        }
        BucketCmd::Files(a) => {
            let p = BucketParams {
                prefix: a.prefix,
                ..named(a.name)
            };
            (a.at, BucketMethod::Files, p)
        }
        BucketCmd::FindCid(a) => {
            let p = BucketParams {
                cid: Some(a.cid),
                ..Default::default()
            };
            (a.at, BucketMethod::FindCid, p)
        }
        BucketCmd::Snapshot(a) => {
            let p = BucketParams {
                name: a.name,
                all: a.all,
                ..Default::default()
            };
            (a.at, BucketMethod::Snapshot, p)
        }
        BucketCmd::Snapshots(a) => {
            let p = BucketParams {
                name: a.bucket,
                ..Default::default()
            };
            (a.at, BucketMethod::Snapshots, p)
        }
        BucketCmd::PrepareCar(a) => {
            let p = BucketParams {
                name: a.name,
                all: a.all,
                out: a.out.map(|o| o.display().to_string()),
                shard_size: a.shard_size,
                ..Default::default()
            };
            (a.at, BucketMethod::PrepareCar, p)
        }
    };
    let v = match run(&at, method, params) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    if at.target.json || method == BucketMethod::PrepareCar {
        print_json(&v);
        return ExitCode::SUCCESS;
    }
    print_human(method, &v);
    ExitCode::SUCCESS
}

fn named(name: String) -> BucketParams {
    BucketParams {
        name: Some(name),
        ..Default::default()
    }
}

fn print_human(method: BucketMethod, v: &Value) {
    let empty = Vec::new();
    match method {
        BucketMethod::List => {
            println!(
                "{:<16} {:>8} {:>10}  {:<62} {:<40} ERROR",
                "BUCKET", "FILES", "SIZE", "ROOT CID", "LAST SNAPSHOT"
            );
            for b in v["buckets"].as_array().unwrap_or(&empty) {
                println!(
                    "{:<16} {:>8} {:>10}  {:<62} {:<40} {}",
                    s(b, "name"),
                    s(b, "files"),
                    size(b, "size"),
                    s(b, "root_cid"),
                    s(b, "last_snapshot"),
                    b["error"].as_str().unwrap_or("")
                );
            }
        }
        BucketMethod::Files => {
            for f in v["files"].as_array().unwrap_or(&empty) {
                println!("{}\t{}\t{}", s(f, "cid"), s(f, "size"), s(f, "path"));
            }
        }
        BucketMethod::FindCid => {
            for f in v["found"].as_array().unwrap_or(&empty) {
                println!("{}\t{}", s(f, "bucket"), s(f, "path"));
            }
        }
        BucketMethod::Snapshots => {
            for l in v["snapshots"].as_array().unwrap_or(&empty) {
                match l.get("snapshot") {
                    Some(snap) => println!(
                        "{}\t{}\t{} bucket(s)",
                        s(l, "snapshot_id"),
                        s(snap, "global_hash"),
                        snap["buckets"].as_object().map_or(0, |m| m.len())
                    ),
                    None => println!("{}\tERROR {}", s(l, "snapshot_id"), s(l, "error")),
                }
            }
        }
        BucketMethod::Snapshot => println!("{}\t{}", s(v, "snapshot_id"), s(v, "global_hash")),
        BucketMethod::Index => println!(
            "{}: {} files, {} hashed ({}), {} unchanged, {} removed; root {}{}",
            s(v, "bucket"),
            s(v, "files"),
            s(v, "hashed"),
            size(v, "bytes_hashed"),
            s(v, "unchanged"),
            s(v, "removed"),
            s(v, "root_cid"),
            match v["errors"].as_array() {
                Some(e) if !e.is_empty() => format!("; {} error(s): {}", e.len(), e[0]),
                _ => String::new(),
            }
        ),
        BucketMethod::Create => println!(
            "bucket {} mounted at {} (saved to {})",
            s(v, "name"),
            s(v, "path"),
            s(v, "saved_to")
        ),
        BucketMethod::Remove => println!(
            "bucket {} removed from {} (saved to {})",
            s(v, "name"),
            s(v, "path"),
            s(v, "saved_to")
        ),
        BucketMethod::PrepareCar => print_json(v),
    }
}
