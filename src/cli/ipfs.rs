//! `ipfs-kit-fuse ipfs push VPATH` and `ipfs pull CID VPATH`: move trees
//! between any mount of a running mount table and a Kubo RPC node. VPATH is
//! a path under the mount point (`/local/photos`), found through the control
//! socket like the other commands (`-m MOUNTPOINT` when several run); the
//! daemon runs the transfer (`ipfs.push`/`ipfs.pull`) and reports progress.

use super::control::{resolve_socket, Target};
use crate::car::Profile;
use crate::control::protocol::{IpfsPull, IpfsPullReply, IpfsPush, IpfsPushReply};
use crate::control::{Client, Request};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::time::Duration;

/// The node's API when `--api` and `IPFS_KIT_IPFS_API` are unset: kubo's default.
pub(super) const DEFAULT_API: &str = "http://127.0.0.1:5001";

/// `ipfs` subcommands.
#[derive(Subcommand, Debug)]
pub enum IpfsCmd {
    /// Import a file or directory of the mount into a Kubo node (pinned); prints its CID.
    Push(PushArgs),
    /// Fetch a CID from a Kubo node, verified, into a new path of a writable mount.
    Pull(PullArgs),
}

/// Where the node is.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node's RPC API.
    #[arg(long, env = "IPFS_KIT_IPFS_API", default_value = DEFAULT_API)]
    pub api: String,
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

fn bar(template: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style);
    }
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Sends `req` to the running mount `t` names, showing its progress notifications.
fn call<R: serde::de::DeserializeOwned + serde::Serialize>(
    t: &Target,
    req: &Request,
    template: &str,
) -> Result<R, String> {
    let socket = resolve_socket(t, None)?;
    let mut c = Client::connect(&socket).map_err(|e| e.to_string())?;
    let pb = bar(template);
    let mut shown: Option<String> = None;
    let res = c.call_with_progress(req, |p| match (&p.stage, p.done, p.total) {
        // A stage with a known total (a bucket's files hashed or packed,
        // then the CAR's bytes sent): a bar of it.
        (Some(stage), Some(done), Some(total)) => {
            if shown.as_ref() != Some(stage) {
                let template = if stage == "uploading" {
                    "{spinner} uploading {bytes}/{total_bytes} {bytes_per_sec} {wide_bar}"
                } else {
                    "{spinner} {msg} {pos}/{len} files {wide_bar}"
                };
                if let Ok(style) = ProgressStyle::with_template(template) {
                    pb.set_style(style);
                }
                pb.set_message(stage.clone());
                pb.reset();
                shown = Some(stage.clone());
            }
            pb.set_length(total);
            pb.set_position(done);
        }
        _ => {
            if let Some(b) = p.bytes {
                pb.set_position(b);
            }
        }
    });
    pb.finish_and_clear();
    res.map_err(|e| e.to_string())
}

fn print<R: serde::Serialize>(json: bool, reply: &R, text: String) {
    if json {
        println!("{}", serde_json::to_string(reply).unwrap_or_default());
    } else {
        println!("{text}");
    }
}

/// Runs an `ipfs` subcommand through the control socket (the daemon does
/// the transfer on a path under its mount point).
pub fn run(cmd: IpfsCmd) -> ExitCode {
    match cmd {
        IpfsCmd::Push(a) => {
            let req = Request::IpfsPush(IpfsPush {
                path: a.vpath.clone(),
                api: a.node.api,
                profile: Some(a.profile.to_string()),
                hidden: a.hidden,
            });
            match call::<IpfsPushReply>(&a.target, &req, "{spinner} packing {bytes} {bytes_per_sec}") {
                Ok(r) => {
                    print(a.target.json, &r, r.root.clone());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        IpfsCmd::Pull(a) => {
            let req = Request::IpfsPull(IpfsPull {
                cid: a.cid,
                path: a.vpath.clone(),
                api: a.node.api,
            });
            match call::<IpfsPullReply>(&a.target, &req, "{spinner} fetching {bytes} {bytes_per_sec}") {
                Ok(r) => {
                    let text = format!(
                        "{}: {} file(s), {} dir(s), {} bytes into {}",
                        r.root, r.files, r.dirs, r.bytes, a.vpath
                    );
                    print(a.target.json, &r, text);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}
