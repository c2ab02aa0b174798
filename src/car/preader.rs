//! Reading a large file as whole chunks with several threads, so hashing,
//! not the disk, sets the pace of `cid` and `car pack`.
//!
//! [`read_chunks`] starts [`READERS`] threads; reader `k` of `n` reads chunks
//! `k`, `k + n`, `k + 2n`, ... with `pread` and hands each over a bounded
//! channel of its own, so the caller receives chunks in file order by taking
//! them round-robin, with several reads in flight against the disk. Spent
//! buffers come back through [`Chunks::recycle`] and are reused.
//!
//! Invariants: every chunk is exactly `size` bytes except the last, which is
//! shorter (1..size bytes) or absent when the file ends on a chunk boundary;
//! the stream ends at the first short chunk (a file growing meanwhile is read
//! up to there); at most `READERS * DEPTH` chunks are read ahead of the
//! caller; every thread ends when the [`Chunks`] is dropped.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Reader threads: two reads in flight keep a disk or the page cache busy
/// while the previous chunk is handed on; more buys nothing on 2 cores.
pub const READERS: usize = 2;
/// Chunks each reader may have read ahead of the caller: with [`READERS`]
/// this bounds read-ahead memory at 8 chunks (8 MiB with 1 MiB chunks).
const DEPTH: usize = 4;
/// Files below this many chunks are read inline: two threads cost more
/// than they save on a small file.
pub const MIN_CHUNKS: u64 = 8;

/// Chunks of one file in file order, read ahead by reader threads.
pub struct Chunks {
    size: usize,
    rx: Vec<Receiver<io::Result<Vec<u8>>>>,
    next: usize,
    done: bool,
    spare: Arc<Mutex<Vec<Vec<u8>>>>,
    threads: Vec<JoinHandle<()>>,
}

/// Start reading `file` in `size`-byte chunks.
pub fn read_chunks(file: File, size: usize) -> Chunks {
    let size = size.max(1);
    advise_sequential(&file);
    let file = Arc::new(file);
    let spare = Arc::new(Mutex::new(Vec::new()));
    let mut rx = Vec::with_capacity(READERS);
    let mut threads = Vec::with_capacity(READERS);
    for k in 0..READERS {
        let (tx, r) = sync_channel(DEPTH);
        rx.push(r);
        let (file, spare) = (file.clone(), spare.clone());
        threads.push(std::thread::spawn(move || reader(&file, size, k, &tx, &spare)));
    }
    Chunks {
        size,
        rx,
        next: 0,
        done: false,
        spare,
        threads,
    }
}

/// Reader `k`: chunks `k`, `k + READERS`, ... until a short one, EOF, an
/// error, or the caller hanging up.
fn reader(
    file: &File,
    size: usize,
    k: usize,
    tx: &SyncSender<io::Result<Vec<u8>>>,
    spare: &Mutex<Vec<Vec<u8>>>,
) {
    let mut index = k as u64;
    loop {
        let reused = spare.lock().ok().and_then(|mut s| s.pop());
        let mut buf = reused.unwrap_or_else(|| vec![0u8; size]);
        buf.resize(size, 0);
        let offset = index * size as u64;
        let mut filled = 0;
        let res = loop {
            if filled == size {
                break Ok(());
            }
            match file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break Ok(()),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if let Err(e) = res {
            let _ = tx.send(Err(e));
            return;
        }
        if filled == 0 {
            return;
        }
        buf.truncate(filled);
        if tx.send(Ok(buf)).is_err() || filled < size {
            return;
        }
        index += READERS as u64;
    }
}

impl Chunks {
    /// The next chunk in file order; `None` at the end of the file.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let got = self.rx[self.next].recv();
        self.next = (self.next + 1) % self.rx.len();
        match got {
            Ok(Ok(chunk)) => {
                if chunk.len() < self.size {
                    self.done = true;
                }
                Ok(Some(chunk))
            }
            Ok(Err(e)) => {
                self.done = true;
                Err(e)
            }
            // That reader found the end of the file.
            Err(_) => {
                self.done = true;
                Ok(None)
            }
        }
    }

    /// Give a spent chunk buffer back for reuse.
    pub fn recycle(&self, buf: Vec<u8>) {
        if buf.capacity() < self.size {
            return;
        }
        if let Ok(mut s) = self.spare.lock() {
            // Enough for every chunk in flight; past that let it go.
            if s.len() < READERS * DEPTH {
                s.push(buf);
            }
        }
    }
}

impl Drop for Chunks {
    fn drop(&mut self) {
        // Hanging up makes every reader's next send fail, so each ends.
        self.rx.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Tell the kernel the file is read sequentially (a larger readahead); a
/// refusal only costs speed.
fn advise_sequential(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: posix_fadvise only reads the descriptor, which `file` keeps open.
    let _ = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn chunks_of(len: usize, size: usize) -> Vec<Vec<u8>> {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        let mut c = read_chunks(f, size);
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            out.push(ch.clone());
            c.recycle(ch);
        }
        assert_eq!(out.concat(), data, "len {len} size {size}");
        out
    }

    #[test]
    fn chunks_come_in_file_order_with_a_short_last_when_size_is_not_a_multiple() {
        let out = chunks_of(10_000, 1000);
        assert_eq!(out.len(), 10);
        let out = chunks_of(10_001, 1000);
        assert_eq!(out.len(), 11);
        assert_eq!(out[10].len(), 1);
        assert!(out[..10].iter().all(|c| c.len() == 1000));
        assert!(chunks_of(0, 1000).is_empty());
        assert_eq!(chunks_of(999, 1000).len(), 1);
    }

    #[test]
    fn readers_stop_when_caller_drops_chunks_early() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![1u8; 1 << 20]).unwrap();
        let mut c = read_chunks(f, 1024);
        assert_eq!(c.next_chunk().unwrap().unwrap().len(), 1024);
        drop(c); // joins the readers; a hang here fails the test by timeout
    }
}
