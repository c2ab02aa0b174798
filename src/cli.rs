//! Command-line interface: argument parsing (clap) and dispatch to subcommands.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Top-level command line.
#[derive(Parser, Debug)]
#[command(
    name = "ipfs-kit-fuse",
    version,
    about = "Mount storage backends under one directory, with IPFS CIDs and CAR export"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CID of files and directories (like `ipfs add --only-hash -r`).
    Cid(crate::car::cli::CidArgs),
    /// Make, list, verify and unpack CAR files.
    Car(crate::car::cli::CarArgs),
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Cid(args) => crate::car::cli::run_cid(args),
        Command::Car(args) => crate::car::cli::run_car(args),
    }
}
