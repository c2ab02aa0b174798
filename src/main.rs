//! The `ipfs-kit-fuse` binary: parse the command line and hand over to the library.

/// Allocations from this size up get their own mapping, returned to the OS
/// when freed. glibc otherwise raises its threshold to the largest block it
/// has freed (up to 32 MiB), after which our 1 MiB cache blocks come from the
/// heap arenas of many threads and freed ones stay resident: a cold 1 GiB S3
/// read peaked ~150 MiB above the live data that way.
const MMAP_THRESHOLD: libc::c_int = 256 << 10;

fn main() -> std::process::ExitCode {
    // SAFETY: mallopt only changes allocator tuning; it runs before any
    // thread exists, and a refusal (returns 0) leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
    ipfs_kit_fuse::cli::main()
}
