//! Adaptive readahead: per open file, decides which blocks to prefetch after
//! each kernel read, and a global byte budget for prefetches in flight.
//!
//! Pure logic: no I/O, no clock. The policy (the same shape as mountpoint-s3's
//! prefetcher, written afresh): the first read opens a window of
//! `initial` bytes past the read; each time a sequential reader has consumed a
//! whole window, the window doubles, up to `max`; a read that is not near the
//! stream (a seek) resets the window to `initial`. "Near" is from
//! [`REORDER_SLACK`] behind the furthest read so far to as far past it as
//! the readahead has asked for, plus the slack: the kernel's readahead
//! sends several reads of one stream at once, from several threads, and
//! they arrive in any order.
//!
//! While earlier prefetches still lie ahead of the reader, the window is
//! topped up a batch at a time (half the window, at most [`MAX_RUN_BYTES`])
//! rather than by the block or two each kernel read moves it: a stream's
//! prefetches then go out as full-size requests (8 MiB GETs, `cat` spans
//! of 8 MiB), not one 1 MiB request per 1 MiB read.
//!
//! A reader whose window has grown to [`STREAM_WINDOW`] is a stream: the
//! blocks it has gone past by more than [`REORDER_SLACK`] are handed out
//! once each by [`Readahead::passed`], for the cache to drop from memory.
//!
//! Invariants: [`Readahead::on_read`] never returns a block at or past EOF,
//! never returns a block the current read itself covers, and never returns a
//! block it already returned since the last seek — so the caller can spawn one
//! fetch per returned index and have several range requests in flight without
//! duplicates.

use std::ops::Range;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::blocks;

/// First window: about one block, cheap enough for a reader that turns out to
/// be random (mountpoint-s3 and the kernel's own readahead start near here).
pub const DEFAULT_INITIAL_WINDOW: u64 = 1 << 20;
/// Largest window: 64 MiB keeps one fast sequential stream busy on high-latency
/// backends (S3, IPFS gateways) without one file eating the memory tier.
pub const DEFAULT_MAX_WINDOW: u64 = 64 << 20;
/// Most bytes one prefetch request covers: consecutive missing blocks of a
/// window go out as one ranged GET of up to 8 MiB (the part size S3 clients
/// use by default), so per-request overhead is paid once per 8 blocks of
/// 1 MiB, and a full 64 MiB window is 8 requests in flight together.
pub const MAX_RUN_BYTES: u64 = 8 << 20;
/// How far from the furthest read so far (either way) a read may start and
/// still count as the same sequential stream: the kernel keeps up to
/// `max_background` (12 by default) reads of up to 1 MiB of a stream in
/// flight at once, and they reach our threads in any order; reads 11 MiB
/// behind the furthest were seen in a plain `cat` with 4 MiB of kernel
/// readahead (`fuse/readahead.rs`), and 8 MiB of slack took them for
/// seeks and reset the window three times per 256 MiB.
pub const REORDER_SLACK: u64 = 16 << 20;
/// Window at which a reader counts as a stream: it has read several MiB in
/// order (windows of 2 and 4 MiB consumed). A block is passed once the
/// stream is [`REORDER_SLACK`] past its end, so files shorter than the
/// slack and a block stay in memory whole.
pub const STREAM_WINDOW: u64 = 8 << 20;
/// Default global prefetch budget: four files at the full window.
pub const DEFAULT_PREFETCH_BUDGET: u64 = 4 * DEFAULT_MAX_WINDOW;

/// Readahead state of one open file.
#[derive(Debug, Clone)]
pub struct Readahead {
    block_size: u64,
    initial: u64,
    max: u64,
    /// Current window in bytes.
    window: u64,
    /// End offset of the furthest read since the last seek; `None` before
    /// the first read.
    last_end: Option<u64>,
    /// Offset at which the window next doubles.
    grow_at: u64,
    /// Blocks below this index were already returned since the last seek.
    requested_until: u64,
    /// Blocks below this index were handed out by [`Readahead::passed`], or
    /// lie before the last seek.
    passed_until: u64,
    /// End of the furthest read since the last seek that has been served.
    done_end: u64,
}

impl Readahead {
    /// Default policy: start at 1 MiB, double up to 64 MiB.
    pub fn new(block_size: u64) -> Self {
        Self::with_limits(block_size, DEFAULT_INITIAL_WINDOW, DEFAULT_MAX_WINDOW)
    }

    /// Custom window limits (`initial` is raised to one block, `max` to `initial`).
    pub fn with_limits(block_size: u64, initial: u64, max: u64) -> Self {
        let block_size = block_size.max(1);
        let initial = initial.max(block_size);
        let max = max.max(initial);
        Self {
            block_size,
            initial,
            max,
            window: initial,
            last_end: None,
            grow_at: 0,
            requested_until: 0,
            passed_until: 0,
            done_end: 0,
        }
    }

    /// Current window in bytes.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// Whether a read at `offset` starts a new stream: it is the first read,
    /// or it lies more than [`REORDER_SLACK`] (at least one block) behind
    /// the furthest read so far, or as far past both that read and what the
    /// readahead has asked for.
    fn is_seek(&self, offset: u64) -> bool {
        let slack = REORDER_SLACK.max(self.block_size);
        self.last_end.is_none_or(|prev| {
            let asked = self.requested_until.saturating_mul(self.block_size);
            offset.saturating_add(slack) < prev || offset > prev.max(asked).saturating_add(slack)
        })
    }

    /// Record a kernel read of `[offset, offset + len)` on a file of `file_size`
    /// bytes; returns the block indexes to prefetch now (possibly empty).
    pub fn on_read(&mut self, offset: u64, len: u64, file_size: u64) -> Range<u64> {
        let bytes = blocks::clip(offset, len, file_size);
        if bytes.is_empty() {
            return 0..0;
        }
        let end = bytes.end;
        let sequential = !self.is_seek(offset);
        if sequential {
            if end >= self.grow_at {
                self.window = self.window.saturating_mul(2).min(self.max);
                self.grow_at = end.saturating_add(self.window);
            }
        } else {
            self.window = self.initial;
            self.grow_at = end.saturating_add(self.window);
            self.requested_until = 0;
            self.passed_until = offset / self.block_size;
            self.done_end = 0;
        }
        self.last_end = Some(match self.last_end {
            Some(prev) if sequential => prev.max(end),
            _ => end,
        });

        let first_after_read = blocks::block_range(offset, len, file_size, self.block_size).end;
        let target_end = end.saturating_add(self.window).min(file_size);
        let last = target_end.div_ceil(self.block_size);
        let first = first_after_read.max(self.requested_until);
        if first >= last {
            return 0..0;
        }
        // While earlier prefetches still lie ahead of the reader, top the
        // window up a batch at a time rather than a block per read: one
        // request per batch, not per kernel read.
        let batch = self.batch_blocks();
        let ahead = self.requested_until > first_after_read;
        if ahead && last - first < batch && last < blocks::block_count(file_size, self.block_size) {
            return 0..0;
        }
        self.requested_until = last;
        first..last
    }

    /// Blocks the window is topped up by at a time: half the window, at
    /// most [`MAX_RUN_BYTES`] (one prefetch request), at least a block.
    fn batch_blocks(&self) -> u64 {
        ((self.window / 2).min(MAX_RUN_BYTES) / self.block_size).max(1)
    }

    /// A read of this stream ending at `end` has been served; returns the
    /// blocks the stream has gone past since the last call: all of each lies
    /// more than [`REORDER_SLACK`] before the furthest read served, so no
    /// read of this stream still wants it (and, reads being served about in
    /// the order they came, each has been loaded). Empty unless the window
    /// has reached [`STREAM_WINDOW`].
    pub fn passed(&mut self, end: u64) -> Range<u64> {
        if self.last_end.is_none() || self.window < STREAM_WINDOW {
            return 0..0;
        }
        self.done_end = self.done_end.max(end);
        let slack = REORDER_SLACK.max(self.block_size);
        let behind = self.done_end.saturating_sub(slack) / self.block_size;
        if behind <= self.passed_until {
            return 0..0;
        }
        let passed = self.passed_until..behind;
        self.passed_until = behind;
        passed
    }
}

/// Global bound on bytes of prefetches in flight, shared by every open file.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct PrefetchBudget {
    sem: Arc<Semaphore>,
    total: u64,
}

/// Bytes of budget held by one prefetch; released on drop.
#[derive(Debug)]
pub struct PrefetchPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl PrefetchBudget {
    /// A budget of `bytes` (clamped to what a semaphore can count).
    pub fn new(bytes: u64) -> Self {
        let total = bytes.min(Semaphore::MAX_PERMITS as u64);
        Self {
            sem: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Total budget in bytes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes not held by any permit now.
    pub fn available(&self) -> u64 {
        self.sem.available_permits() as u64
    }

    /// Hold `bytes` if that much is free now; `None` means skip this prefetch
    /// (the later read fetches the block itself).
    pub fn try_reserve(&self, bytes: u64) -> Option<PrefetchPermit> {
        let n = self.permits_for(bytes);
        self.sem
            .clone()
            .try_acquire_many_owned(n)
            .ok()
            .map(|p| PrefetchPermit { _permit: Some(p) })
    }

    /// Hold `bytes`, waiting until that much is free.
    pub async fn reserve(&self, bytes: u64) -> PrefetchPermit {
        let n = self.permits_for(bytes);
        // The semaphore is never closed, so the error arm is unreachable; an
        // empty permit keeps this function total.
        PrefetchPermit {
            _permit: self.sem.clone().acquire_many_owned(n).await.ok(),
        }
    }

    /// A request larger than the whole budget would wait forever: cap it.
    fn permits_for(&self, bytes: u64) -> u32 {
        bytes.min(self.total).min(u32::MAX as u64) as u32
    }
}

impl Default for PrefetchBudget {
    fn default() -> Self {
        Self::new(DEFAULT_PREFETCH_BUDGET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIB: u64 = 1 << 20;
    const BS: u64 = MIB;

    /// Read a file sequentially in `chunk`-byte reads; returns every prefetch range.
    fn stream(ra: &mut Readahead, size: u64, chunk: u64) -> Vec<Range<u64>> {
        let mut out = Vec::new();
        let mut off = 0;
        while off < size {
            out.push(ra.on_read(off, chunk, size));
            off += chunk;
        }
        out
    }

    #[test]
    fn first_read_prefetches_about_one_mib_when_file_opens() {
        let mut ra = Readahead::new(BS);
        assert_eq!(ra.on_read(0, 128 << 10, 100 * MIB), 1..2);
        assert_eq!(ra.window(), MIB);
    }

    #[test]
    fn window_doubles_up_to_max_when_reads_are_sequential() {
        let mut ra = Readahead::new(BS);
        stream(&mut ra, 1024 * MIB, 128 << 10);
        assert_eq!(ra.window(), DEFAULT_MAX_WINDOW);
        let mut ra = Readahead::new(BS);
        ra.on_read(0, 128 << 10, 1024 * MIB);
        ra.on_read(128 << 10, 128 << 10, 1024 * MIB);
        assert!(ra.window() <= 2 * MIB, "grows one step at a time");
    }

    #[test]
    fn window_resets_when_reader_seeks() {
        let mut ra = Readahead::new(BS);
        stream(&mut ra, 300 * MIB, MIB);
        assert!(ra.window() > DEFAULT_INITIAL_WINDOW);
        let got = ra.on_read(10 * MIB, 4096, 300 * MIB);
        assert_eq!(ra.window(), DEFAULT_INITIAL_WINDOW);
        assert_eq!(got, 11..12);
        // Past what the readahead asked for (up to block 12) by more than
        // the slack, or behind the furthest read by more than it.
        assert!(!ra.is_seek(12 * MIB + REORDER_SLACK));
        assert!(ra.is_seek(12 * MIB + REORDER_SLACK + 1));
        ra.on_read(40 * MIB, 4096, 300 * MIB);
        assert!(ra.is_seek(40 * MIB - REORDER_SLACK - 1));
        assert!(!ra.is_seek(40 * MIB + 4096 - REORDER_SLACK));
    }

    #[test]
    fn reordered_reads_of_kernel_readahead_keep_the_stream() {
        // The kernel's readahead sends 1 MiB reads of a 4 MiB window at
        // once; they arrive in any order.
        let mut ra = Readahead::new(BS);
        let size = 1024 * MIB;
        let mut off = 0;
        while off < 256 * MIB {
            for i in [1, 3, 0, 2] {
                ra.on_read(off + i * MIB, MIB, size);
            }
            off += 4 * MIB;
        }
        assert_eq!(ra.window(), DEFAULT_MAX_WINDOW, "never reset by a late read");
        assert!(!ra.is_seek(off - 3 * MIB));
        // The order seen in one `cat` with 4 MiB of kernel readahead: the
        // reads of 34-37 MiB came after those of 38-45 MiB.
        let mut ra = Readahead::new(BS);
        let order = (0..34).chain(38..46).chain(34..38).chain(46..128);
        for block in order {
            ra.on_read(block * MIB, MIB, size);
            assert!(
                block < 46 || ra.window() >= 32 * MIB,
                "window reset at block {block}"
            );
        }
        assert_eq!(ra.window(), DEFAULT_MAX_WINDOW);
    }

    #[test]
    fn nothing_is_prefetched_when_read_is_at_eof() {
        let mut ra = Readahead::new(BS);
        assert_eq!(ra.on_read(10 * MIB, 4096, 10 * MIB), 0..0);
        assert_eq!(ra.on_read(0, 4096, 0), 0..0);
        assert_eq!(ra.on_read(MIB - 10, 10, MIB), 0..0);
    }

    #[test]
    fn a_stream_is_topped_up_in_full_runs_and_never_runs_dry() {
        let size = 256 * MIB + 3 * MIB;
        let mut ra = Readahead::new(BS);
        let mut off = 0;
        let mut requested = 0;
        let mut sizes = Vec::new();
        while off < size {
            let got = ra.on_read(off, MIB, size);
            if !got.is_empty() {
                assert_eq!(got.start, requested.max(off / BS + 1), "contiguous, none twice");
                requested = got.end;
                sizes.push(got.end - got.start);
            }
            off += MIB;
            // What the reader comes to next has been asked for (the window
            // tops up before it runs out).
            assert!(off >= size || requested * BS > off, "dry at {off}");
            if ra.window() == DEFAULT_MAX_WINDOW && off + DEFAULT_MAX_WINDOW < size {
                assert!(
                    requested * BS + MAX_RUN_BYTES >= off + DEFAULT_MAX_WINDOW,
                    "{off}"
                );
            }
        }
        assert_eq!(requested, size.div_ceil(BS), "up to the end");
        let full = MAX_RUN_BYTES / BS;
        // All but the last top-up (the rest of the file, any length).
        let steady = &sizes[..sizes.len() - 1];
        let windowed: Vec<u64> = steady.iter().copied().skip_while(|n| *n < full).collect();
        assert!(windowed.len() >= 20, "{sizes:?}");
        assert!(
            windowed.iter().all(|n| *n >= full),
            "one full run per top-up: {sizes:?}"
        );
        // Before: a 1 MiB read moved the window by one block each time.
        assert!(sizes.len() < 50, "{} requests", sizes.len());
    }

    #[test]
    fn several_blocks_are_in_flight_when_window_is_large() {
        let mut ra = Readahead::new(BS);
        let ranges = stream(&mut ra, 200 * MIB, MIB);
        assert!(ranges.iter().any(|r| r.end - r.start >= 4));
    }

    #[tokio::test]
    async fn budget_refuses_when_exhausted_and_frees_when_permit_drops() {
        let budget = PrefetchBudget::new(2 * MIB);
        let a = budget.try_reserve(MIB).unwrap();
        let b = budget.try_reserve(MIB).unwrap();
        assert!(budget.try_reserve(MIB).is_none());
        drop(a);
        assert_eq!(budget.available(), MIB);
        drop(b);
        // A request above the total is capped instead of waiting forever.
        let all = budget.reserve(10 * MIB).await;
        assert_eq!(budget.available(), 0);
        drop(all);
        assert_eq!(budget.available(), 2 * MIB);
    }

    #[test]
    fn a_stream_passes_every_block_once_and_none_it_may_still_read() {
        let size = 256 * MIB;
        let mut ra = Readahead::new(BS);
        let mut passed = Vec::new();
        let mut off = 0;
        while off < size {
            ra.on_read(off, MIB, size);
            let got = ra.passed(off + MIB);
            // Nothing within the reorder slack of the furthest read.
            assert!(
                got.is_empty() || got.end * BS + REORDER_SLACK <= off + MIB,
                "{got:?} at {off}"
            );
            passed.extend(got);
            off += MIB;
        }
        let want: Vec<u64> = (0..(size - REORDER_SLACK) / BS).collect();
        assert_eq!(passed, want, "each block once, in order, up to the slack");
    }

    #[test]
    fn short_files_random_readers_and_skipped_blocks_are_never_passed() {
        // A file shorter than the slack and a block: nothing passed.
        let mut ra = Readahead::new(BS);
        let size = REORDER_SLACK + BS - 1;
        for off in (0..size).step_by(MIB as usize) {
            ra.on_read(off, MIB, size);
            assert_eq!(ra.passed((off + MIB).min(size)), 0..0, "at {off}");
        }
        // Reads far apart never make a stream.
        let mut ra = Readahead::new(BS);
        for i in 0..64 {
            let off = (i * 37 % 64) * 16 * MIB;
            ra.on_read(off, MIB, 1024 * MIB);
            assert_eq!(ra.passed(off + MIB), 0..0);
        }
        // A stream that seeks ahead passes nothing it skipped.
        let mut ra = Readahead::new(BS);
        let mut passed = Vec::new();
        for off in (0..64 * MIB)
            .step_by(MIB as usize)
            .chain((512 * MIB..600 * MIB).step_by(MIB as usize))
        {
            ra.on_read(off, MIB, 1024 * MIB);
            passed.extend(ra.passed(off + MIB));
        }
        assert!(passed.iter().all(|b| !(64..512).contains(b)), "{passed:?}");
        assert!(
            passed.contains(&0) && passed.contains(&512),
            "both streams passed blocks"
        );
    }

    proptest! {
        #[test]
        fn prefetches_stay_in_file_and_never_repeat_when_reads_are_random(
            size in 0u64..(64 * MIB),
            block_size in prop::sample::select(vec![4096u64, 65536, MIB]),
            reads in prop::collection::vec((0u64..(70 * MIB), 1u64..(2 * MIB), any::<bool>()), 1..60),
        ) {
            let mut ra = Readahead::new(block_size);
            let mut seen = std::collections::HashSet::new();
            let mut last_end = 0u64;
            for (off, len, seq) in reads {
                let offset = if seq { last_end } else { off };
                let seek = ra.last_end.is_none_or(|p| offset.abs_diff(p) > REORDER_SLACK.max(block_size));
                let empty = blocks::clip(offset, len, size).is_empty();
                let got = ra.on_read(offset, len, size);
                let own = blocks::block_range(offset, len, size, block_size);
                if seek && !empty {
                    seen.clear();
                }
                for i in got.clone() {
                    prop_assert!(i < blocks::block_count(size, block_size));
                    prop_assert!(!own.contains(&i));
                    prop_assert!(seen.insert(i), "block {} returned twice", i);
                }
                prop_assert!(ra.window() <= DEFAULT_MAX_WINDOW.max(block_size));
                last_end = offset.saturating_add(len).min(size);
            }
        }
    }
}
