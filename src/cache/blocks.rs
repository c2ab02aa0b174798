//! Block arithmetic: which blocks, and which bytes inside them, cover a byte
//! range of an object. Pure functions, no I/O.
//!
//! Invariants: block `i` of an object of `size` bytes holds bytes
//! `[i * block_size, min((i + 1) * block_size, size))`; every range is clipped at
//! EOF; a `block_size` of 0 is treated as 1 so no function can divide by zero.

use std::ops::Range;

/// One block's share of a requested byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpan {
    /// Block index within the object.
    pub index: u64,
    /// Offset of the first wanted byte inside the block.
    pub start: u64,
    /// Number of wanted bytes in this block (never 0).
    pub len: u64,
}

impl BlockSpan {
    /// The wanted bytes as a range inside the block, for slicing the block's bytes.
    pub fn in_block(&self) -> Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

/// Number of blocks an object of `size` bytes has.
pub fn block_count(size: u64, block_size: u64) -> u64 {
    size.div_ceil(block_size.max(1))
}

/// Length of block `index` of an object of `size` bytes (0 past EOF).
pub fn block_len(index: u64, size: u64, block_size: u64) -> u64 {
    let bs = block_size.max(1);
    let start = index.saturating_mul(bs);
    size.saturating_sub(start).min(bs)
}

/// Byte range `[offset, offset + len)` clipped to an object of `size` bytes.
pub fn clip(offset: u64, len: u64, size: u64) -> Range<u64> {
    let start = offset.min(size);
    let end = offset.saturating_add(len).min(size);
    start..end
}

/// Block indexes that cover `[offset, offset + len)` clipped at EOF (empty when
/// nothing is left to read).
pub fn block_range(offset: u64, len: u64, size: u64, block_size: u64) -> Range<u64> {
    let bs = block_size.max(1);
    let bytes = clip(offset, len, size);
    if bytes.is_empty() {
        return 0..0;
    }
    bytes.start / bs..bytes.end.div_ceil(bs)
}

/// The pieces of each block that together make up `[offset, offset + len)`
/// clipped at EOF, in order.
pub fn spans(offset: u64, len: u64, size: u64, block_size: u64) -> impl Iterator<Item = BlockSpan> {
    let bs = block_size.max(1);
    let bytes = clip(offset, len, size);
    block_range(offset, len, size, bs).map(move |index| {
        let block_start = index * bs;
        let start = bytes.start.max(block_start);
        let end = bytes.end.min(block_start.saturating_add(bs));
        BlockSpan {
            index,
            start: start - block_start,
            len: end - start,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn object(size: u64) -> Vec<u8> {
        (0..size).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn spans_cover_middle_of_three_blocks_when_range_straddles() {
        let got: Vec<_> = spans(5, 20, 100, 10).collect();
        assert_eq!(
            got,
            vec![
                BlockSpan {
                    index: 0,
                    start: 5,
                    len: 5
                },
                BlockSpan {
                    index: 1,
                    start: 0,
                    len: 10
                },
                BlockSpan {
                    index: 2,
                    start: 0,
                    len: 5
                },
            ]
        );
    }

    #[test]
    fn spans_are_empty_when_offset_is_at_or_past_eof() {
        assert_eq!(spans(100, 10, 100, 10).count(), 0);
        assert_eq!(spans(150, 10, 100, 10).count(), 0);
        assert_eq!(block_range(0, 0, 100, 10), 0..0);
    }

    #[test]
    fn last_block_is_short_when_size_is_not_a_multiple() {
        assert_eq!(block_count(25, 10), 3);
        assert_eq!(block_len(2, 25, 10), 5);
        assert_eq!(block_len(3, 25, 10), 0);
        assert_eq!(block_count(0, 10), 0);
    }

    #[test]
    fn arithmetic_does_not_overflow_when_range_reaches_u64_max() {
        let got: Vec<_> = spans(u64::MAX - 3, u64::MAX, u64::MAX, 1 << 20).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len, 3);
        assert_eq!(block_len(u64::MAX, u64::MAX, 1 << 20), 0);
    }

    proptest! {
        #[test]
        fn reassembled_spans_equal_requested_range_when_inputs_are_random(
            size in 0u64..5_000,
            block_size in 1u64..700,
            offset in 0u64..6_000,
            len in 0u64..6_000,
        ) {
            let data = object(size);
            let mut out = Vec::new();
            let mut prev_index = None;
            for span in spans(offset, len, size, block_size) {
                prop_assert!(span.len > 0);
                prop_assert!(span.start + span.len <= block_len(span.index, size, block_size));
                if let Some(p) = prev_index {
                    prop_assert_eq!(span.index, p + 1);
                }
                prev_index = Some(span.index);
                let block_start = (span.index * block_size) as usize;
                let block_end = block_start + block_len(span.index, size, block_size) as usize;
                let block = &data[block_start..block_end];
                out.extend_from_slice(&block[span.in_block()]);
            }
            let want = clip(offset, len, size);
            prop_assert_eq!(&out[..], &data[want.start as usize..want.end as usize]);
            let range = block_range(offset, len, size, block_size);
            prop_assert_eq!(range.end - range.start, spans(offset, len, size, block_size).count() as u64);
        }

        #[test]
        fn block_lengths_sum_to_size_when_size_is_random(size in 0u64..100_000, block_size in 1u64..5_000) {
            let total: u64 = (0..block_count(size, block_size)).map(|i| block_len(i, size, block_size)).sum();
            prop_assert_eq!(total, size);
        }
    }
}
