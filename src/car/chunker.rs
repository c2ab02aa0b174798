//! Fixed-size chunking of a byte stream fed in arbitrary pieces.
//!
//! Invariant: every chunk handed out is exactly `size` bytes except the last
//! one of the stream, which is 1..=size bytes, or 0 bytes for an empty stream
//! (an empty file is one empty chunk, as kubo and ipfs-car encode it).
//! Memory: one chunk buffer at a time; a full buffer is given away (moved),
//! and the caller may hand spent buffers back for reuse.

use std::io::{self, Read};

/// Bytes of the first buffer of a stream, which then doubles up to the chunk
/// size as bytes come: a small file (most files of a bucket closed one by
/// one) zeroes this much rather than a whole chunk (1 MiB), which profiling
/// the index-on-close path showed as its largest user-space cost.
const FIRST: usize = 16 << 10;

/// Splits a stream into fixed-size owned chunks.
///
/// The current buffer is initialised memory (`filled` counts the valid
/// bytes), so reading straight into it needs no intermediate copy. The
/// stream's first buffer starts at [`FIRST`] bytes and doubles as it
/// fills; later ones (spares, or new after a chunk was handed out) are
/// allocated at the full chunk size.
#[derive(Debug)]
pub struct Chunker {
    size: usize,
    buf: Vec<u8>,
    filled: usize,
    spare: Vec<Vec<u8>>,
    emitted: bool,
}

impl Chunker {
    /// A chunker for `size`-byte chunks (`size` >= 1).
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        Chunker {
            size,
            buf: Vec::new(),
            filled: 0,
            spare: Vec::new(),
            emitted: false,
        }
    }

    /// True when no bytes of a partial chunk are held.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Record that a whole chunk was handed on by someone else (so the end
    /// of the stream adds no empty chunk).
    pub fn mark_emitted(&mut self) {
        self.emitted = true;
    }

    /// Give back a spent chunk buffer so the next chunk reuses its memory.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        // Keep a couple: enough for steady state without hoarding. Only
        // whole chunks: the short last chunk of a file is dropped, since
        // growing it back would write a whole chunk (1 MiB) of zeros per
        // small file (most of a bucket's close time for small files).
        if self.spare.len() < 2 && buf.len() == self.size {
            self.spare.push(buf);
        }
    }

    /// Make sure the current buffer has room for at least one more byte.
    fn ready(&mut self) {
        if self.filled < self.buf.len() {
            return;
        }
        if self.buf.is_empty() {
            self.buf = match self.spare.pop() {
                Some(b) => b,
                None if self.emitted => vec![0u8; self.size],
                None => vec![0u8; FIRST.min(self.size)],
            };
        } else {
            // The first buffer is full but short of a chunk: grow it.
            let grown = (self.buf.len() * 2).min(self.size);
            self.buf.resize(grown, 0);
        }
    }

    /// Hand out the current buffer if it is full.
    fn take_full(&mut self) -> Option<Vec<u8>> {
        if self.filled == self.size {
            self.filled = 0;
            self.emitted = true;
            Some(std::mem::take(&mut self.buf))
        } else {
            None
        }
    }

    /// Consume bytes from the front of `data` until a chunk is complete and
    /// return it; `None` when `data` ran out first (the bytes are kept).
    pub fn fill(&mut self, data: &mut &[u8]) -> Option<Vec<u8>> {
        while !data.is_empty() {
            self.ready();
            let take = (self.buf.len() - self.filled).min(data.len());
            self.buf[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            *data = &data[take..];
            if let Some(full) = self.take_full() {
                return Some(full);
            }
        }
        None
    }

    /// Read once from `r` straight into the current chunk. Returns the bytes
    /// read (0 at end of stream) and the chunk if it is now complete.
    pub fn read_from(&mut self, r: &mut dyn Read) -> io::Result<(usize, Option<Vec<u8>>)> {
        self.ready();
        let n = r.read(&mut self.buf[self.filled..])?;
        self.filled += n;
        Ok((n, self.take_full()))
    }

    /// End of stream: the final partial chunk, or an empty chunk if the stream
    /// was empty, or `None` if the stream ended on a chunk boundary.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.filled > 0 || !self.emitted {
            self.emitted = true;
            let mut last = std::mem::take(&mut self.buf);
            last.truncate(self.filled);
            self.filled = 0;
            Some(last)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(size: usize, pieces: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(size);
        let mut out = Vec::new();
        for p in pieces {
            let mut rest: &[u8] = p;
            while let Some(ch) = c.fill(&mut rest) {
                out.push(ch);
            }
        }
        out.extend(c.finish());
        out
    }

    /// The chunks of `size` bytes `read_from` cuts from all of `r`.
    fn read_all(size: usize, r: &mut impl Read) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(size);
        let mut out = Vec::new();
        loop {
            let (n, full) = c.read_from(r).unwrap();
            out.extend(full);
            if n == 0 {
                break;
            }
        }
        out.extend(c.finish());
        out
    }

    #[test]
    fn yields_one_empty_chunk_when_stream_empty() {
        assert_eq!(split(4, &[]), vec![Vec::<u8>::new()]);
    }

    #[test]
    fn yields_exact_chunks_when_pieces_straddle_boundaries() {
        let got = split(4, &[b"ab", b"cdefg", b"h", b"ij"]);
        assert_eq!(got, vec![b"abcd".to_vec(), b"efgh".to_vec(), b"ij".to_vec()]);
        assert_eq!(split(2, &[b"abcd"]), vec![b"ab".to_vec(), b"cd".to_vec()]);
    }

    #[test]
    fn reads_exact_chunks_when_reader_returns_short_reads() {
        struct Trickle(Vec<u8>);
        impl Read for Trickle {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = out.len().min(self.0.len()).min(3);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let out = read_all(4, &mut Trickle((0u8..10).collect()));
        assert_eq!(out, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
    }

    #[test]
    fn chunks_past_the_growing_first_buffer_are_exact_both_ways() {
        // A chunk several times the first buffer, and a stream that ends
        // inside the first buffer's growth.
        let size = FIRST * 5 + 3;
        let data: Vec<u8> = (0..size * 2 + FIRST + 11).map(|i| (i * 7 % 251) as u8).collect();
        let want: Vec<Vec<u8>> = data.chunks(size).map(<[u8]>::to_vec).collect();
        let pieces: Vec<&[u8]> = data.chunks(7_777).collect();
        assert_eq!(split(size, &pieces), want);
        assert_eq!(read_all(size, &mut &data[..]), want);
        let small = &data[..FIRST * 3 + 1];
        assert_eq!(split(size, &[small]), vec![small.to_vec()]);
    }
}
