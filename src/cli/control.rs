//! Commands that talk to a running mount over its control socket: `status`,
//! `stats`, `backend add|remove|list`, `flush`. Human-readable tables by
//! default, `--json` for scripts (the reply object as the daemon sent it).
//!
//! Which mount: `--socket PATH`, else the mount point given, else the only
//! socket in the runtime directory (an error names them when there are several).

use crate::control::paths;
use crate::control::protocol::{
    AddMount, ChangeReply, FlushReply, MountsReply, RemoveMount, StatsReply, StatusReply,
};
use crate::control::{Client, Request};
use bytesize::ByteSize;
use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Which mount to talk to.
#[derive(Args, Debug, Clone, Default)]
pub struct Target {
    /// The mount point (default: the only running mount).
    #[arg(long = "mount", short = 'm', value_name = "MOUNTPOINT")]
    pub mountpoint: Option<PathBuf>,
    /// The control socket itself (overrides --mount).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the daemon's reply as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The mount point (default: the only running mount).
    #[arg(value_name = "MOUNTPOINT", id = "positional_mountpoint")]
    pub mountpoint: Option<PathBuf>,
    #[command(flatten)]
    pub target: Target,
}

/// `backend` subcommands.
#[derive(Subcommand, Debug)]
pub enum BackendCmd {
    /// Place a backend at VPATH under the mount point.
    Add(AddArgs),
    /// Remove the backend at VPATH (pending uploads under it go up first).
    Remove(RemoveArgs),
    /// List the mount table (secret option values hidden).
    List(Target),
}

/// Arguments of `backend add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// Path under the mount point, e.g. /s3.
    pub vpath: String,
    /// A scheme (fs, memory, s3, ...) or a URI (s3://bucket/prefix?region=x, fs:///srv/data, memory://).
    pub scheme: String,
    /// Read-only: every mutation answers EROFS.
    #[arg(long)]
    pub ro: bool,
    /// Backend option (repeatable), e.g. -O root=/srv/data.
    #[arg(short = 'O', value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Also write the updated table to the config file.
    #[arg(long)]
    pub save: bool,
    #[command(flatten)]
    pub target: Target,
}

/// Arguments of `backend remove`.
#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// Path under the mount point.
    pub vpath: String,
    /// Also write the updated table to the config file.
    #[arg(long)]
    pub save: bool,
    #[command(flatten)]
    pub target: Target,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ipfs-kit-fuse: {msg}");
    ExitCode::FAILURE
}

/// The control sockets of the mounts running now. Sockets left by a daemon
/// that was killed do not answer: they are skipped.
pub fn live_sockets() -> Vec<PathBuf> {
    paths::discover(&paths::socket_dir())
        .into_iter()
        .filter(|p| std::os::unix::net::UnixStream::connect(p).is_ok())
        .collect()
}

/// The socket to use for `t` (and an optional positional mount point).
pub fn resolve_socket(t: &Target, positional: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(s) = &t.socket {
        return Ok(s.clone());
    }
    if let Some(mp) = positional.or(t.mountpoint.as_deref()) {
        let canon = mp.canonicalize().map_err(|e| format!("{}: {e}", mp.display()))?;
        return Ok(paths::socket_path(&canon));
    }
    let dir = paths::socket_dir();
    let found = live_sockets();
    match found.len() {
        1 => Ok(found[0].clone()),
        0 => Err(format!(
            "no running mount found in {} (name its mount point with -m)",
            dir.display()
        )),
        _ => {
            let names: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
            Err(format!(
                "several mounts are running ({}); name one with -m MOUNTPOINT",
                names.join(", ")
            ))
        }
    }
}

fn call<R: DeserializeOwned>(socket: &Path, req: &Request) -> Result<R, String> {
    let mut c = Client::connect(socket).map_err(|e| e.to_string())?;
    c.call(req).map_err(|e| e.to_string())
}

fn print_json<T: Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("ipfs-kit-fuse: {e}"),
    }
}

fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// `ipfs-kit-fuse status`.
pub fn run_status(a: StatusArgs) -> ExitCode {
    let socket = match resolve_socket(&a.target, a.mountpoint.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let st: StatusReply = match call(&socket, &Request::Status) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if a.target.json {
        print_json(&st);
        return ExitCode::SUCCESS;
    }
    println!("mountpoint    {}", st.mountpoint);
    println!("pid           {}", st.pid);
    println!("uptime        {}", duration(st.uptime_secs));
    println!("mounts        {}", st.mounts);
    println!("in flight     {}", st.in_flight);
    println!("open handles  {}", st.open_handles);
    println!(
        "staged        {} file(s), {} waiting to upload",
        st.staged_files,
        ByteSize(st.staged_bytes)
    );
    if st.stopping {
        println!("state         stopping (draining uploads)");
    }
    for b in &st.bucket_errors {
        println!("bucket error  {}: {}", b.bucket, b.error);
    }
    ExitCode::SUCCESS
}

/// `ipfs-kit-fuse stats`.
pub fn run_stats(t: Target) -> ExitCode {
    let socket = match resolve_socket(&t, None) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let st: StatsReply = match call(&socket, &Request::Stats) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if t.json {
        print_json(&st);
        return ExitCode::SUCCESS;
    }
    match &st.cache {
        Some(c) => {
            println!("{:<8} {:>10} {:>10} {:>12}", "CACHE", "HITS", "MISSES", "USED");
            for (tier, s) in [("memory", c.memory), ("disk", c.disk)] {
                println!(
                    "{tier:<8} {:>10} {:>10} {:>12}",
                    s.hits,
                    s.misses,
                    ByteSize(s.used_bytes).to_string()
                );
            }
        }
        None => println!("cache: none"),
    }
    println!();
    println!(
        "{:<16} {:<8} {:>12} {:>12}",
        "BACKEND", "SCHEME", "READ", "WRITTEN"
    );
    for b in &st.backends {
        println!(
            "{:<16} {:<8} {:>12} {:>12}",
            b.mount,
            b.scheme,
            ByteSize(b.bytes_read).to_string(),
            ByteSize(b.bytes_written).to_string()
        );
    }
    println!();
    println!("{:<10} {:>10} {:>12}", "OP", "COUNT", "MEAN");
    for o in &st.ops {
        let mean = o.total_us.checked_div(o.count).unwrap_or(0);
        println!("{:<10} {:>10} {:>10}µs", o.op, o.count, mean);
    }
    println!("in flight: {}", st.in_flight);
    ExitCode::SUCCESS
}

pub(super) fn parse_options(list: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for kv in list {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("-O {kv:?}: expected KEY=VALUE"))?;
        if k.is_empty() {
            return Err(format!("-O {kv:?}: empty key"));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// `ipfs-kit-fuse backend ...`.
pub fn run_backend(cmd: BackendCmd) -> ExitCode {
    match cmd {
        BackendCmd::Add(a) => backend_add(a),
        BackendCmd::Remove(a) => backend_remove(a),
        BackendCmd::List(t) => backend_list(t),
    }
}

fn print_change(r: &ChangeReply, verb: &str, json: bool) {
    if json {
        print_json(r);
        return;
    }
    println!("{verb} {}", r.path);
    if let Some(f) = &r.saved_to {
        println!("saved to {f}");
    }
}

fn backend_add(a: AddArgs) -> ExitCode {
    let options = match parse_options(&a.options) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let (scheme, uri) = if a.scheme.contains("://") {
        (None, Some(a.scheme))
    } else {
        (Some(a.scheme), None)
    };
    let req = Request::MountsAdd(AddMount {
        path: a.vpath,
        scheme,
        uri,
        options,
        read_only: a.ro,
        save: a.save,
    });
    change(&a.target, &req, "added")
}

fn backend_remove(a: RemoveArgs) -> ExitCode {
    let req = Request::MountsRemove(RemoveMount {
        path: a.vpath,
        save: a.save,
    });
    change(&a.target, &req, "removed")
}

/// Sends a mount-table change and prints its reply.
fn change(target: &Target, req: &Request, verb: &str) -> ExitCode {
    let socket = match resolve_socket(target, None) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match call::<ChangeReply>(&socket, req) {
        Ok(r) => {
            print_change(&r, verb, target.json);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn backend_list(t: Target) -> ExitCode {
    let socket = match resolve_socket(&t, None) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let r: MountsReply = match call(&socket, &Request::MountsList) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if t.json {
        print_json(&r);
        return ExitCode::SUCCESS;
    }
    println!("{:<16} {:<8} {:<4} OPTIONS", "PATH", "SCHEME", "MODE");
    for m in &r.mounts {
        let opts: Vec<String> = m.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mode = if m.read_only { "ro" } else { "rw" };
        println!("{:<16} {:<8} {:<4} {}", m.path, m.scheme, mode, opts.join(","));
    }
    ExitCode::SUCCESS
}

/// Asks the daemon at `socket` to upload everything staged, printing progress
/// to stderr unless `quiet`. Returns the files that were waiting.
pub fn flush_socket(socket: &Path, quiet: bool) -> Result<usize, String> {
    let mut c = Client::connect(socket).map_err(|e| e.to_string())?;
    let r: FlushReply = c
        .call_with_progress(&Request::Flush, |p| {
            if !quiet && p.files_remaining > 0 {
                eprintln!("flush: {} file(s) remaining", p.files_remaining);
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(r.files)
}

/// `ipfs-kit-fuse flush`.
pub fn run_flush(t: Target) -> ExitCode {
    let socket = match resolve_socket(&t, None) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match flush_socket(&socket, t.json) {
        Ok(files) if t.json => {
            print_json(&FlushReply { files });
            ExitCode::SUCCESS
        }
        Ok(files) => {
            println!("flushed: {files} file(s) uploaded, nothing staged");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
