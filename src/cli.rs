//! Command-line interface: argument parsing (clap) and dispatch to subcommands.

mod bucket;
mod control;
mod ipfs;
mod mcp;
mod mount;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  ipfs-kit-fuse mount /mnt/vfs                  mount the config (or the built-in default) and return when live
  ipfs-kit-fuse mount /mnt/vfs --foreground     stay attached (systemd, debugging)
  ipfs-kit-fuse mount /mnt/vfs -o ro,allow_other --config ./config.toml
  ipfs-kit-fuse unmount /mnt/vfs                upload what is pending, unmount, stop the daemon
  ipfs-kit-fuse status                          the running mount: uptime, activity, bytes waiting to upload
  ipfs-kit-fuse backend add /s3 s3://bucket/prefix?region=eu-west-1 --save
  ipfs-kit-fuse backend add /data fs -O root=/srv/data --ro
  ipfs-kit-fuse backend list                    the mount table (secrets hidden)
  ipfs-kit-fuse stats --json                    cache, backend and operation figures
  ipfs-kit-fuse flush                           wait until every staged write is uploaded
  ipfs-kit-fuse cid ./photos                    CIDs as `ipfs add --only-hash -r` prints them
  ipfs-kit-fuse car pack ./photos -o photos.car write a CAR for `ipfs dag import` or Storacha
  ipfs-kit-fuse ipfs push /local/photos         import into a Kubo node (pinned), print the CID
  ipfs-kit-fuse ipfs pull bafy... /memory/p     fetch a CID, verified, into a writable mount
  ipfs-kit-fuse mcp -m /mnt/vfs                 MCP tools for AI agents on stdio (--http 127.0.0.1:8765 for HTTP)
  ipfs-kit-fuse bucket create media fs -O root=/srv/media   a bucket at /buckets/media, indexed with CIDs
  ipfs-kit-fuse bucket snapshot --all           freeze every bucket index into a snapshot
  ipfs-kit-fuse bucket prepare-car media        write the bucket as a CAR for `ipfs dag import`

Data home: $IPFS_KIT_HOME (default ~/.ipfs_kit); config: $IPFS_KIT_HOME/config.toml";

/// Top-level command line.
#[derive(Parser, Debug)]
#[command(
    name = "ipfs-kit-fuse",
    version,
    about = "Mount storage backends under one directory, with IPFS CIDs and CAR export",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Mount the backend table at MOUNTPOINT.
    Mount(mount::MountArgs),
    /// Upload pending writes, unmount MOUNTPOINT and stop its daemon.
    Unmount(mount::UnmountArgs),
    /// Show a running mount: uptime, activity, bytes waiting to upload.
    Status(control::StatusArgs),
    /// Cache hits/misses, bytes per backend, operation counts and latencies.
    Stats(control::Target),
    /// Change or list the mount table of a running mount.
    #[command(subcommand)]
    Backend(control::BackendCmd),
    /// Wait until every staged write of a running mount is uploaded.
    Flush(control::Target),
    /// Print the CID of files and directories (like `ipfs add --only-hash -r`).
    Cid(crate::car::cli::CidArgs),
    /// Make, list, verify and unpack CAR files.
    Car(crate::car::cli::CarArgs),
    /// Push a path of the mount to a Kubo node, or pull a CID into the mount.
    #[command(subcommand)]
    Ipfs(ipfs::IpfsCmd),
    /// Serve the running mount's files and controls as MCP tools (stdio, or --http on loopback).
    Mcp(mcp::McpArgs),
    /// Buckets: indexed mounts with CIDs, snapshots and CAR preparation.
    #[command(subcommand)]
    Bucket(bucket::BucketCmd),
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Mount(a) => mount::run_mount(a),
        Command::Unmount(a) => mount::run_unmount(a),
        Command::Status(a) => control::run_status(a),
        Command::Stats(t) => control::run_stats(t),
        Command::Backend(c) => control::run_backend(c),
        Command::Flush(t) => control::run_flush(t),
        Command::Cid(args) => crate::car::cli::run_cid(args),
        Command::Car(args) => crate::car::cli::run_car(args),
        Command::Ipfs(c) => ipfs::run(c),
        Command::Mcp(a) => mcp::run_mcp(a),
        Command::Bucket(c) => bucket::run_bucket(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
