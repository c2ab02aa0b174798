//! Command-line interface: argument parsing (clap) and dispatch to subcommands.

mod mount;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  ipfs-kit-fuse mount /mnt/vfs                  mount the config (or the built-in default) and return when live
  ipfs-kit-fuse mount /mnt/vfs --foreground     stay attached (systemd, debugging)
  ipfs-kit-fuse mount /mnt/vfs -o ro,allow_other --config ./config.toml
  ipfs-kit-fuse unmount /mnt/vfs                upload what is pending, unmount, stop the daemon

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
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Mount(a) => mount::run_mount(a),
        Command::Unmount(a) => mount::run_unmount(a),
    }
}
