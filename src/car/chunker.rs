//! Fixed-size chunking of a byte stream fed in arbitrary pieces.
//!
//! Invariant: every chunk handed out is exactly `size` bytes except the last
//! one of the stream, which is 1..=size bytes, or 0 bytes for an empty stream
//! (an empty file is one empty chunk, as kubo and ipfs-car encode it).
//! Memory: one chunk buffer at a time; a full buffer is given away (moved),
//! and the caller may hand spent buffers back for reuse.

/// Splits a stream into fixed-size owned chunks.
#[derive(Debug)]
pub struct Chunker {
    size: usize,
    buf: Vec<u8>,
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
            spare: Vec::new(),
            emitted: false,
        }
    }

    /// Give back a spent chunk buffer so the next chunk reuses its memory.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        // Keep a couple: enough for steady state without hoarding.
        if self.spare.len() < 2 && buf.capacity() >= self.size {
            buf.clear();
            self.spare.push(buf);
        }
    }

    fn fresh(&mut self) -> Vec<u8> {
        self.spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.size))
    }

    /// Consume bytes from the front of `data` until a chunk is complete and
    /// return it; `None` when `data` ran out first (the bytes are kept).
    pub fn fill(&mut self, data: &mut &[u8]) -> Option<Vec<u8>> {
        if data.is_empty() {
            return None;
        }
        if self.buf.capacity() < self.size {
            self.buf = self.fresh();
        }
        let take = (self.size - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        *data = &data[take..];
        if self.buf.len() == self.size {
            self.emitted = true;
            Some(std::mem::take(&mut self.buf))
        } else {
            None
        }
    }

    /// End of stream: the final partial chunk, or an empty chunk if the stream
    /// was empty, or `None` if the stream ended on a chunk boundary.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if !self.buf.is_empty() || !self.emitted {
            self.emitted = true;
            Some(std::mem::take(&mut self.buf))
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

    #[test]
    fn yields_one_empty_chunk_when_stream_empty() {
        assert_eq!(split(4, &[]), vec![Vec::<u8>::new()]);
    }

    #[test]
    fn yields_exact_chunks_when_pieces_straddle_boundaries() {
        let got = split(4, &[b"ab", b"cdefg", b"h", b"ij"]);
        assert_eq!(
            got,
            vec![b"abcd".to_vec(), b"efgh".to_vec(), b"ij".to_vec()]
        );
        assert_eq!(split(2, &[b"abcd"]), vec![b"ab".to_vec(), b"cd".to_vec()]);
    }
}
