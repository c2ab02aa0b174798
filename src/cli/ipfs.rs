//! `ipfs-kit-fuse ipfs push VPATH` and `ipfs pull CID VPATH`: move trees
//! between any mount of a running mount table and a Kubo RPC node. VPATH is
//! a path under the mount point (`/local/photos`), found through the control
//! socket like the other commands (`-m MOUNTPOINT` when several run).

use super::control::{resolve_socket, Target};
use crate::car::Profile;
use crate::control::protocol::StatusReply;
use crate::control::{Client, Request};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The node's API when `--api` and `IPFS_KIT_IPFS_API` are unset: kubo's default.
const DEFAULT_API: &str = "http://127.0.0.1:5001";
/// Seconds one import or export request may take: a large tree on a slow node.
const DEFAULT_TIMEOUT_SECS: u64 = 3600;

/// `ipfs` subcommands.
#[derive(Subcommand, Debug)]
pub enum IpfsCmd {
    /// Import a file or directory of the mount into a Kubo node (pinned); prints its CID.
    Push(PushArgs),
    /// Fetch a CID from a Kubo node, verified, into a new path of a writable mount.
    Pull(PullArgs),
}

/// Where the node is, and how long a request may take.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node's RPC API.
    #[arg(long, env = "IPFS_KIT_IPFS_API", default_value = DEFAULT_API)]
    pub api: String,
    /// Seconds the import or export request may take.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_SECS)]
    pub timeout: u64,
}

/// Arguments of `ipfs push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// A path under the mount point, e.g. /local/photos.
    pub vpath: String,
    /// DAG profile: unixfs-v1-2025, unixfs-v0-2015, ipfs-car (alias storacha).
    #[arg(long, default_value_t = Profile::default())]
    pub profile: Profile,
    /// Include files and directories whose names start with '.'.
    #[arg(long, short = 'H')]
    pub hidden: bool,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub target: Target,
}

/// Arguments of `ipfs pull`.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// The root CID to fetch.
    pub cid: String,
    /// A new path under the mount point, e.g. /memory/photos.
    pub vpath: String,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub target: Target,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ipfs-kit-fuse: {msg}");
    ExitCode::FAILURE
}

/// The local path of `vpath` under the running mount `t` names.
fn local_path(t: &Target, vpath: &str) -> Result<PathBuf, String> {
    let rel = Path::new(vpath.trim_start_matches('/'));
    if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(format!("{vpath:?} is not a path under the mount point"));
    }
    let socket = resolve_socket(t, None)?;
    let mut c = Client::connect(&socket).map_err(|e| e.to_string())?;
    let st: StatusReply = c.call(&Request::Status).map_err(|e| e.to_string())?;
    Ok(Path::new(&st.mountpoint).join(rel))
}

fn bar(template: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style);
    }
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

/// Runs an `ipfs` subcommand.
pub fn run(cmd: IpfsCmd) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    match cmd {
        IpfsCmd::Push(a) => {
            let path = match local_path(&a.target, &a.vpath) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            let pb = bar("{spinner} packing {bytes} {bytes_per_sec}");
            let pbc = pb.clone();
            let timeout = Duration::from_secs(a.node.timeout.max(1));
            let res = rt.block_on(crate::ipfs::push(
                &a.node.api,
                &path,
                a.profile,
                a.hidden,
                timeout,
                move |n| pbc.inc(n),
            ));
            pb.finish_and_clear();
            match res {
                Ok(p) if a.target.json => {
                    println!(
                        "{}",
                        serde_json::json!({"root": p.root.to_string(), "car_bytes": p.car_bytes, "blocks": p.blocks})
                    );
                    ExitCode::SUCCESS
                }
                Ok(p) => {
                    println!("{}", p.root);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("push {}: {e}", a.vpath)),
            }
        }
        IpfsCmd::Pull(a) => {
            let cid = match cid::Cid::try_from(a.cid.as_str()) {
                Ok(c) => c,
                Err(e) => return fail(format!("bad CID {:?}: {e}", a.cid)),
            };
            let path = match local_path(&a.target, &a.vpath) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            let pb = bar("{spinner} fetching {bytes} {bytes_per_sec}");
            let pbc = pb.clone();
            let timeout = Duration::from_secs(a.node.timeout.max(1));
            let res = rt.block_on(crate::ipfs::pull(&a.node.api, &cid, &path, timeout, move |n| {
                pbc.inc(n)
            }));
            pb.finish_and_clear();
            match res {
                Ok(p) if a.target.json => {
                    println!(
                        "{}",
                        serde_json::json!({"root": cid.to_string(), "files": p.files, "dirs": p.dirs, "bytes": p.bytes})
                    );
                    ExitCode::SUCCESS
                }
                Ok(p) => {
                    println!(
                        "{cid}: {} file(s), {} dir(s), {} bytes into {}",
                        p.files, p.dirs, p.bytes, a.vpath
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("pull {cid}: {e}")),
            }
        }
    }
}
