//! Writes of disk-tier block files with `O_DIRECT`, from a buffer each
//! thread reuses, so a cold read does not also copy every block into the
//! page cache.
//!
//! Why: a buffered write of a block copies it into freshly allocated page
//! cache pages, and on the machines we measured that copy was 18-40% of the
//! daemon's CPU during a cold read (the pages are new each time; a VM pays
//! again on first touch), CPU taken from the reader and, on a small
//! machine, from a local backend such as an IPFS node (docs/BENCHMARKS.md).
//! A direct write hands the bytes to the device instead; the only copy is
//! into this thread's buffer, whose pages stay mapped. The cache's own
//! memory tier holds the block while it is read (and the kernel's page
//! cache of the mounted file what was read), so the page cache of the
//! block file would only have held it again.
//!
//! A direct write must be aligned: the buffer, the file offset and the
//! length, so the file is written padded to [`ALIGN`] and then cut to its
//! real length (a file torn anywhere fails the header and checksum check of
//! every read, as before). Filesystems that refuse `O_DIRECT` (EINVAL: some
//! tmpfs, FUSE and network filesystems) get a buffered write, and the
//! caller is told to stop trying.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Alignment of direct writes (buffer address, offset and length): 4 KiB is
/// the page size and a multiple of every logical block size in use (512 or
/// 4096 bytes).
const ALIGN: usize = 4096;

/// A thread's write buffer: grown to the largest block written, never
/// shrunk (one block file, about 1 MiB with the default block size, per
/// thread that writes blocks).
struct AlignedBuf(Vec<u8>);

impl AlignedBuf {
    /// `len` bytes starting at an [`ALIGN`]-aligned address, or `None` when
    /// no aligned start could be found (never expected).
    fn aligned(&mut self, len: usize) -> Option<&mut [u8]> {
        let want = len.checked_add(ALIGN)?;
        if self.0.len() < want {
            self.0.resize(want, 0);
        }
        let offset = self.0.as_ptr().align_offset(ALIGN);
        self.0.get_mut(offset..offset.checked_add(len)?)
    }
}

thread_local! {
    static BUF: RefCell<AlignedBuf> = const { RefCell::new(AlignedBuf(Vec::new())) };
}

/// What became of a write.
#[derive(Debug)]
pub(crate) enum Written {
    /// Written with `O_DIRECT`.
    Direct,
    /// The filesystem refused `O_DIRECT`; written through the page cache.
    Buffered,
}

/// Writes `header` then `data` to a new file at `path` (truncating one that
/// exists), with `O_DIRECT` when `direct`, else (or when the filesystem
/// refuses it) through the page cache. No fsync (see `disk.rs`).
pub(crate) fn write_block_file(path: &Path, header: &[u8], data: &[u8], direct: bool) -> io::Result<Written> {
    if direct {
        match write_direct(path, header, data) {
            Ok(()) => return Ok(Written::Direct),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    let mut f = File::create(path)?;
    f.write_all(header)?;
    f.write_all(data)?;
    Ok(Written::Buffered)
}

fn write_direct(path: &Path, header: &[u8], data: &[u8]) -> io::Result<()> {
    let len = header.len() + data.len();
    let padded = len.div_ceil(ALIGN) * ALIGN;
    BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        let out = buf
            .aligned(padded)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        out[..header.len()].copy_from_slice(header);
        out[header.len()..len].copy_from_slice(data);
        out[len..].fill(0);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)?;
        f.write_all(out)?;
        f.set_len(len as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes around the alignment: empty, tiny, exactly one aligned unit with
    /// the header, one byte past it, and a block with an odd tail.
    fn sizes(header: usize) -> Vec<usize> {
        vec![0, 1, ALIGN - header, ALIGN - header + 1, ALIGN, (1 << 20) + 7]
    }

    /// A directory on the disk the project is built on (a real filesystem
    /// that takes `O_DIRECT`, unlike a tmpfs `/tmp` would be).
    fn disk_dir() -> tempfile::TempDir {
        tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/target")).unwrap()
    }

    #[test]
    fn files_written_either_way_hold_exactly_header_and_data() {
        let dir = disk_dir();
        let header = [7u8; 72];
        for direct in [true, false] {
            for (i, n) in sizes(header.len()).into_iter().enumerate() {
                let data: Vec<u8> = (0..n).map(|j| (j * 31 + i) as u8).collect();
                let path = dir.path().join(format!("f-{direct}-{n}"));
                let how = write_block_file(&path, &header, &data, direct).unwrap();
                // The direct path really runs (a fallback would hide it).
                assert_eq!(matches!(how, Written::Direct), direct, "{n}");
                let got = std::fs::read(&path).unwrap();
                assert_eq!(got.len(), header.len() + n, "{how:?} {n}");
                assert_eq!(&got[..header.len()], &header[..]);
                assert_eq!(&got[header.len()..], &data[..], "{how:?} {n}");
            }
        }
    }

    #[test]
    fn a_shorter_file_replaces_a_longer_one_whole() {
        let dir = disk_dir();
        let path = dir.path().join("f");
        write_block_file(&path, b"h", &[1u8; 3 * ALIGN], true).unwrap();
        write_block_file(&path, b"h", &[2u8; 5], true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"h\x02\x02\x02\x02\x02");
    }

    #[test]
    fn the_buffer_is_aligned_and_reused() {
        let mut buf = AlignedBuf(Vec::new());
        let first = buf.aligned(3 * ALIGN).unwrap().as_ptr() as usize;
        assert_eq!(first % ALIGN, 0);
        let again = buf.aligned(ALIGN).unwrap().as_ptr() as usize;
        assert_eq!(again, first, "a smaller write reuses the same memory");
    }
}
