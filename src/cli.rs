//! Command-line interface: argument parsing (clap) and dispatch to subcommands.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Top-level command line.
#[derive(Parser, Debug)]
#[command(name = "ipfs-kit-fuse", version, about = "Mount storage backends under one directory, with IPFS CIDs and CAR export")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {}
}
