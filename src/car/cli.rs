//! The `cid` and `car` subcommands: argument structs (clap) and `run_*`
//! functions that print results and map errors to an exit code. All work is
//! done by the rest of `car/`; this file only parses, reports and draws the
//! progress bar (stderr, inputs over [`PROGRESS_MIN`] bytes, terminals only).

use super::error::{CarError, Result};
use super::pack::{pack_file, Order};
use super::profile::Profile;
use super::reader::CarReader;
use super::shard::{ShardWriter, STORACHA_SHARD_SIZE};
use super::unpack::{walk, CarStore, Kind};
use super::walk::{add_path, add_path_listed, WalkOptions};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Inputs smaller than this (4 MiB) finish too fast to need a progress bar.
const PROGRESS_MIN: u64 = 4 << 20;

/// `ipfs-kit-fuse cid`: print the CID of each path without storing anything.
#[derive(Args, Debug)]
pub struct CidArgs {
    /// DAG profile: unixfs-v1-2025, unixfs-v0-2015, ipfs-car (alias storacha).
    #[arg(long, default_value_t = Profile::default())]
    pub profile: Profile,
    /// Include files and directories whose names start with '.'.
    #[arg(long, short = 'H')]
    pub hidden: bool,
    /// Print JSON lines `{"cid", "path", "size"}` instead of `<cid>  <path>`.
    #[arg(long)]
    pub json: bool,
    /// Print only the CID of each PATH, not of everything inside it (as `ipfs add -Q`).
    #[arg(long, short = 'Q')]
    pub quiet: bool,
    /// Files or directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// `ipfs-kit-fuse car`: make, list, verify and unpack CAR files.
#[derive(Args, Debug)]
pub struct CarArgs {
    #[command(subcommand)]
    pub command: CarCommand,
}

/// CAR subcommands.
#[derive(Subcommand, Debug)]
pub enum CarCommand {
    /// Pack a file or directory into a CAR (or Storacha shards + index).
    Pack(PackArgs),
    /// List the paths under the CAR's root (or its blocks if it has no root).
    Ls(CarFileArgs),
    /// Check every block's hash and the CAR framing.
    Verify(CarFileArgs),
    /// Extract the CAR's root into a directory or file.
    Unpack(UnpackArgs),
}

/// Arguments of `car pack`.
#[derive(Args, Debug)]
pub struct PackArgs {
    /// File or directory to pack.
    pub path: PathBuf,
    /// Output CAR file (with --shard-size: output directory).
    #[arg(short, long)]
    pub output: PathBuf,
    /// DAG profile: unixfs-v1-2025, unixfs-v0-2015, ipfs-car (alias storacha).
    #[arg(long, default_value_t = Profile::default())]
    pub profile: Profile,
    /// Block order.
    #[arg(long, value_enum, default_value_t = Order::RootLast)]
    pub order: Order,
    /// Write each distinct block once.
    #[arg(long)]
    pub dedup: bool,
    /// Storacha shards of at most N bytes (default 133169152) plus the
    /// index CAR, written into the --output directory; implies --dedup.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "133169152")]
    pub shard_size: Option<u64>,
    /// Include names starting with '.'.
    #[arg(long, short = 'H')]
    pub hidden: bool,
    /// Wrap a single file in a directory (ipfs-car's default).
    #[arg(long)]
    pub wrap: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A CAR file argument.
#[derive(Args, Debug)]
pub struct CarFileArgs {
    /// The CAR file (CARv1 or CARv2).
    pub car: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `car unpack`.
#[derive(Args, Debug)]
pub struct UnpackArgs {
    /// The CAR file (CARv1 or CARv2).
    pub car: PathBuf,
    /// Where to write the root (default: its CID, in the current directory).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn fail(e: CarError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

/// Total bytes of regular files under `path` (for the progress bar; best effort).
fn input_size(path: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if md.is_dir() {
        std::fs::read_dir(path)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| input_size(&e.path())).sum())
            .unwrap_or(0)
    } else if md.is_file() {
        md.len()
    } else {
        0
    }
}

fn progress_for(path: &Path) -> ProgressBar {
    let total = input_size(path);
    if total < PROGRESS_MIN {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        pb.set_style(style);
    }
    pb
}

/// Run `cid`.
pub fn run_cid(args: CidArgs) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for path in &args.paths {
        let pb = progress_for(path);
        let opts = WalkOptions {
            hidden: args.hidden,
            wrap: false,
        };
        let print = |p: &Path, b: &super::Built| {
            pb.suspend(|| {
                if args.json {
                    println!(
                        "{}",
                        json!({"cid": b.cid.to_string(), "path": p, "size": b.dag_size})
                    );
                } else {
                    println!("{}  {}", b.cid, p.display());
                }
            })
        };
        let mut listed = |p: &Path, b: &super::Built| {
            if !args.quiet {
                print(p, b);
            }
        };
        match add_path_listed(
            args.profile,
            path,
            &opts,
            &mut super::Discard,
            &|n| pb.inc(n),
            &mut listed,
        ) {
            Ok(b) => {
                pb.finish_and_clear();
                if args.quiet {
                    print(path, &b);
                }
            }
            Err(e) => {
                pb.finish_and_clear();
                eprintln!("error: {e}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}

/// Run `car ...`.
pub fn run_car(args: CarArgs) -> ExitCode {
    let r = match args.command {
        CarCommand::Pack(a) => pack(&a),
        CarCommand::Ls(a) => ls(&a),
        CarCommand::Verify(a) => verify(&a),
        CarCommand::Unpack(a) => unpack(&a),
    };
    r.map_or_else(fail, |()| ExitCode::SUCCESS)
}

fn pack(a: &PackArgs) -> Result<()> {
    let opts = WalkOptions {
        hidden: a.hidden,
        wrap: a.wrap,
    };
    let pb = progress_for(&a.path);
    let progress = |n| pb.inc(n);
    if let Some(size) = a.shard_size {
        let size = if size == 0 { STORACHA_SHARD_SIZE } else { size };
        let mut sw = ShardWriter::create(&a.output, size)?;
        let built = add_path(a.profile, &a.path, &opts, &mut sw, &progress)?;
        let out = sw.finish(&built.cid)?;
        pb.finish_and_clear();
        if a.json {
            let shards: Vec<_> = out
                .shards
                .iter()
                .map(|s| {
                    json!({"shard": s.cid.to_string(), "size": s.size, "blocks": s.blocks,
                    "roots": s.roots.iter().map(|r| r.to_string()).collect::<Vec<_>>(), "path": s.path})
                })
                .collect();
            println!(
                "{}",
                json!({"root": out.root.to_string(), "shards": shards, "index": out.index.to_string(), "indexPath": out.index_path})
            );
        } else {
            println!("{}", out.root);
            for s in &out.shards {
                println!("shard {} {}", s.cid, s.size);
            }
            println!("index {}", out.index);
        }
        return Ok(());
    }
    let p = pack_file(a.profile, &a.path, &opts, &a.output, a.order, a.dedup, &progress)?;
    let (root, written, blocks) = (p.root, p.bytes, p.blocks);
    pb.finish_and_clear();
    if a.json {
        println!(
            "{}",
            json!({"root": root.to_string(), "car": a.output, "bytes": written, "blocks": blocks})
        );
    } else {
        println!("{root}");
    }
    Ok(())
}

fn ls(a: &CarFileArgs) -> Result<()> {
    let mut store = CarStore::open(&a.car)?;
    let roots = store.roots().to_vec();
    if roots.is_empty() {
        let f = File::open(&a.car).map_err(CarError::path(&a.car))?;
        let mut r = CarReader::new(BufReader::new(f))?;
        while let Some(b) = r.next_block()? {
            if a.json {
                println!(
                    "{}",
                    json!({"cid": b.cid.to_string(), "size": b.data.len(), "offset": b.offset})
                );
            } else {
                println!("{}  {}", b.cid, b.data.len());
            }
        }
        return Ok(());
    }
    for root in roots {
        for item in walk(&mut store, &root, None)? {
            let path = if item.path.is_empty() {
                root.to_string()
            } else {
                format!("{root}/{}", item.path)
            };
            let (kind, size) = match &item.kind {
                Kind::Dir => ("dir", 0),
                Kind::File(n) => ("file", *n),
                Kind::Symlink(_) => ("symlink", 0),
            };
            if a.json {
                println!(
                    "{}",
                    json!({"cid": item.cid.to_string(), "path": path, "type": kind, "size": size})
                );
            } else {
                println!("{}  {}", item.cid, path);
            }
        }
    }
    Ok(())
}

fn verify(a: &CarFileArgs) -> Result<()> {
    let f = File::open(&a.car).map_err(CarError::path(&a.car))?;
    let mut r = CarReader::new(BufReader::with_capacity(1 << 20, f))?;
    let roots = r.roots().to_vec();
    let mut seen = std::collections::HashSet::new();
    let (mut blocks, mut bytes) = (0u64, 0u64);
    while let Some(b) = r.next_block()? {
        blocks += 1;
        bytes += b.data.len() as u64;
        seen.insert(b.cid);
    }
    let missing: Vec<String> = roots
        .iter()
        .filter(|c| !seen.contains(c))
        .map(|c| c.to_string())
        .collect();
    if a.json {
        println!(
            "{}",
            json!({"ok": true, "version": r.version(), "blocks": blocks, "bytes": bytes,
                "roots": roots.iter().map(|c| c.to_string()).collect::<Vec<_>>(), "missingRoots": missing})
        );
    } else {
        println!("ok: CARv{}, {blocks} blocks verified, {bytes} bytes", r.version());
        for m in &missing {
            println!("warning: root {m} is not in this CAR");
        }
    }
    Ok(())
}

fn unpack(a: &UnpackArgs) -> Result<()> {
    let mut store = CarStore::open(&a.car)?;
    let root = *store
        .roots()
        .first()
        .ok_or_else(|| CarError::Invalid("the CAR has no root to unpack".into()))?;
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(root.to_string()));
    let empty_dir = std::fs::read_dir(&out)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if out.exists() && !empty_dir {
        return Err(CarError::Invalid(format!("{} already exists", out.display())));
    }
    let listed = walk(&mut store, &root, Some(&out))?;
    if a.json {
        println!(
            "{}",
            json!({"root": root.to_string(), "output": out, "entries": listed.len()})
        );
    } else {
        println!("{root}  {}", out.display());
    }
    Ok(())
}
