//! The `ipfs-kit-fuse` binary: parse the command line and hand over to the library.

fn main() -> std::process::ExitCode {
    ipfs_kit_fuse::cli::main()
}
