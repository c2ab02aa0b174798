//! Verified spans of a file streamed by `cat`: a sequential reader of a
//! large file asks an RPC node for the bytes of many leaves per request
//! (`/api/v0/cat?offset=&length=`) instead of one `block/get` per leaf.
//!
//! Why: a Kubo-RPC node spends much of its time per request, not per byte
//! (js-ipfs: 256 `block/get`s of 1 MiB cost it 1.2-1.9x the CPU of one
//! `cat` of the same 256 MiB, and a `cat` split in 4 or 8 costs it 1.3-1.7x;
//! docs/BENCHMARKS.md), and on a small machine the node's CPU is the
//! reader's limit.
//!
//! A span is planned from the file's DAG first: the raw leaves it covers, in
//! order, with their CIDs and sizes (`unixfs.rs`). It is asked for in
//! segments, each one `cat` request, from [`SEGMENT_BYTES`] doubling up to
//! [`SEGMENT_MAX`], the next one asked for as soon as the current one
//! starts being read, so the node prepares one while the other is checked
//! (js-ipfs holds back most of an answer before its first byte: its time to
//! first byte grows with the length asked, about 0.05 s for 32 MiB and
//! 0.2-0.37 s for 256 MiB, during which a single request would leave the
//! reader idle). Each answer is cut at the leaf sizes and every leaf is
//! hashed against its CID before any byte is used, so nothing is trusted
//! that a `block/get` would not be trusted with: a leaf that does not match
//! is refused with an error log line naming its CID and the source, and
//! asked for again by `block/get` (checked again: EIO if that answer is
//! wrong too). Only files whose leaves are all raw are streamed (a dag-pb
//! leaf's block is more than the bytes `cat` returns, so it could not be
//! checked); others are read block by block.
//!
//! Invariants: one span per file CID at a time, read by one caller at a time
//! (the readahead's runs of one stream take turns); a leaf read past by a run
//! that wants later bytes is parked for the run that wants it (bounded by
//! [`PARKED_MAX`]); a span that fails (an answer ends early, a read times
//! out, a leaf does not match) is never read again: the bytes it did not
//! give, and the rest of that file while its reader goes on, are fetched
//! block by block. Spans idle for [`SPAN_IDLE`] are closed, and at most
//! [`MAX_SPANS`] are open (each holds a connection to the node, two while
//! the next segment is asked for).

use super::source::{BlockSource, SourceError, SpanBody};
use crate::car::{verify_block, CarError};
use bytes::{Bytes, BytesMut};
use cid::Cid;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tokio::task::JoinHandle;

/// Reads at least this long may open a span (any read of a block or more
/// is served by an open one): the readahead's runs of a sequential reader
/// start at 2 MiB (its window doubles from one 1 MiB block), while a random
/// reader's 1 MiB block reads stay block by block and open no request they
/// would not finish.
pub const SPAN_MIN_READ: u64 = 2 << 20;
/// Most bytes one span asks for: 256 MiB is about one second of a local
/// node's `cat`, so its request cost is spread over many runs, and a reader
/// that stops early costs the node only what the socket buffers held (the
/// connection is closed, not drained).
pub const SPAN_BYTES: u64 = 256 << 20;
/// Bytes asked for in a span's first `cat` request (cut at a leaf boundary,
/// at least one leaf): small, so the reader waits little for its first
/// byte (js-ipfs: about 0.03 s for 8 MiB). Each later request asks for
/// twice the one before, up to [`SEGMENT_MAX`].
pub const SEGMENT_BYTES: u64 = 8 << 20;
/// Most bytes one `cat` request of a span asks for: the more requests a
/// read is split into, the more CPU js-ipfs spends (16 MiB requests cost it
/// about 40% more than one `cat` of the whole 256 MiB file, 64 MiB ones
/// 10-40% more); one is read in about 0.2 s, time enough for the node to
/// ready the next.
const SEGMENT_MAX: u64 = 64 << 20;
/// Most leaves one span is planned with (the plan is kept in memory): 256
/// MiB of 64 KiB leaves; files of smaller leaves get shorter spans.
pub const SPAN_LEAVES: usize = 4096;
/// How far past a span's position a read may start and still be served by
/// it: two of the readahead's largest windows (64 MiB each), so every run in
/// flight for one reader finds the span.
const SPAN_AHEAD: u64 = 128 << 20;
/// Bytes of leaves parked for runs that have not come for them yet: one full
/// readahead window; past it the oldest are dropped (their reads fetch them
/// by CID).
const PARKED_MAX: u64 = 64 << 20;
/// A span nobody read for this long is closed: its reader has gone.
const SPAN_IDLE: Duration = Duration::from_secs(30);
/// Spans open at once, each one connection to the node: a few sequential
/// readers of different files at a time.
const MAX_SPANS: usize = 16;

/// One leaf of a planned span.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cid: Cid,
    /// Where its bytes start in the file.
    pub offset: u64,
    pub size: u64,
}

/// The answer to a `cat` of a span's next segment, asked for ahead: the
/// file offsets it covers and the request in flight.
type Ahead = (u64, u64, JoinHandle<Result<Option<SpanBody>, SourceError>>);

/// An open `cat` of one file's leaves, read in order.
pub struct Span {
    file: Cid,
    source: Arc<dyn BlockSource>,
    origin: String,
    /// The answer being read, and the file offset where it ends.
    body: SpanBody,
    body_end: u64,
    /// The next segment's answer, asked for already.
    ahead: Option<Ahead>,
    /// Bytes the next segment asked for covers (doubling up to [`SEGMENT_MAX`]).
    segment: u64,
    /// Leaves not yet read from the body, in file order.
    leaves: VecDeque<Leaf>,
    /// Where the span's first leaf starts.
    start: u64,
    /// File offset of the next leaf to come from the body.
    next: u64,
    /// Bytes received past the last whole leaf.
    pending: BytesMut,
    /// Verified leaves read past by a later run, by file offset.
    parked: BTreeMap<u64, (Cid, Bytes)>,
    parked_bytes: u64,
    /// False once the body failed: the span serves parked leaves only.
    live: bool,
}

/// Where the segment starting at the leaf at `start` ends: after the last
/// of `leaves` (in file order) that starts within `segment` bytes of it.
/// None when no leaf starts at `start`.
pub fn segment_end<'a>(leaves: impl IntoIterator<Item = &'a Leaf>, start: u64, segment: u64) -> Option<u64> {
    let mut end = None;
    for leaf in leaves {
        if leaf.offset < start {
            continue;
        }
        if end.is_none() && leaf.offset != start {
            return None;
        }
        if end.is_some() && leaf.offset >= start.saturating_add(segment) {
            break;
        }
        end = Some(leaf.offset + leaf.size);
    }
    end
}

impl Span {
    /// A span of `file` over `leaves` (non-empty, consecutive), whose first
    /// segment (up to `body_end`: [`segment_end`] of [`SEGMENT_BYTES`])
    /// `body` streams from `source`. Asks for the next segment at once
    /// (needs a tokio runtime).
    pub fn new(
        file: Cid,
        source: Arc<dyn BlockSource>,
        body: SpanBody,
        body_end: u64,
        leaves: Vec<Leaf>,
    ) -> Self {
        Self::with_segment(file, source, body, body_end, leaves, SEGMENT_BYTES)
    }

    /// [`Span::new`] with a first segment of `first` bytes (tests use tiny ones).
    fn with_segment(
        file: Cid,
        source: Arc<dyn BlockSource>,
        body: SpanBody,
        body_end: u64,
        leaves: Vec<Leaf>,
        first: u64,
    ) -> Self {
        let start = leaves.first().map_or(0, |l| l.offset);
        let mut span = Self {
            file,
            origin: source.name(),
            source,
            body,
            body_end,
            ahead: None,
            segment: first,
            leaves: leaves.into(),
            start,
            next: start,
            pending: BytesMut::new(),
            parked: BTreeMap::new(),
            parked_bytes: 0,
            live: true,
        };
        span.ask_ahead();
        span
    }

    /// Asks for the segment after the current answer, if there is one.
    fn ask_ahead(&mut self) {
        let from = self.body_end;
        self.segment = self.segment.saturating_mul(2).min(SEGMENT_MAX);
        let Some(to) = segment_end(&self.leaves, from, self.segment) else {
            return;
        };
        let (source, file) = (self.source.clone(), self.file);
        let request = tokio::spawn(async move { source.cat_span(&file, from, to - from).await });
        self.ahead = Some((from, to, request));
    }

    /// Moves on to the answer asked for ahead (the current one is read to
    /// its end), and asks for the one after it.
    async fn next_body(&mut self) -> Result<(), Stop> {
        let Some((from, to, request)) = self.ahead.take() else {
            return Err(Stop::Body("no segment was asked for past the answer".into()));
        };
        if from != self.next || !self.pending.is_empty() {
            return Err(Stop::Body(format!(
                "the answer ended at {} with {} bytes to spare; the next segment starts at {from}",
                self.next,
                self.pending.len()
            )));
        }
        match request.await {
            Ok(Ok(Some(body))) => {
                self.body = body;
                self.body_end = to;
                self.ask_ahead();
                Ok(())
            }
            Ok(Ok(None)) => Err(Stop::Body("the source no longer streams".into())),
            Ok(Err(e)) => Err(Stop::Body(e.message().to_string())),
            Err(e) => Err(Stop::Body(format!("segment request: {e}"))),
        }
    }

    /// Whether the bytes from `from` can still come from this span.
    fn serves(&self, from: u64) -> bool {
        let parked = self
            .parked
            .range(..=from)
            .next_back()
            .is_some_and(|(off, (_, b))| off + b.len() as u64 > from);
        let end = self.leaves.back().map_or(self.next, |l| l.offset + l.size);
        parked || (self.live && self.next <= from && from < end && from < self.next + SPAN_AHEAD)
    }

    /// Whether a read from `from` should go block by block rather than open
    /// a new span: the span failed (the node would likely fail a new one
    /// too, each failure costing up to a timeout), or `from` lies in what
    /// it already passed (a run that came late).
    fn blocks(&self, from: u64) -> bool {
        !self.live || (self.start <= from && from < self.next)
    }

    /// The verified leaves holding bytes of `from..to`, as far as this span
    /// has them; leaves it reads before `from` are parked for their run. A
    /// leaf that fails its check, like a failed answer, ends the span: the
    /// caller fetches what is missing block by block (and checks it again).
    pub async fn take(&mut self, from: u64, to: u64) -> HashMap<Cid, Bytes> {
        let mut out = HashMap::new();
        let here: Vec<u64> = self
            .parked
            .range(..to)
            .filter(|(off, (_, b))| *off + b.len() as u64 > from)
            .map(|(off, _)| *off)
            .collect();
        for off in here {
            if let Some((cid, b)) = self.parked.remove(&off) {
                self.parked_bytes -= b.len() as u64;
                out.insert(cid, b);
            }
        }
        while self.live && self.next < to {
            let Some(leaf) = self.leaves.front().cloned() else {
                break;
            };
            let data = match self.read_leaf(&leaf).await {
                Ok(d) => d,
                Err(Stop::Body(message)) => {
                    tracing::debug!(cid = %leaf.cid, source = %self.origin, error = %message, "cat span stopped; the rest block by block");
                    self.live = false;
                    break;
                }
                Err(Stop::Mismatch) => {
                    tracing::error!(cid = %leaf.cid, source = %self.origin, "block does not match its CID; refused (asked for again by block/get)");
                    self.live = false;
                    break;
                }
            };
            self.leaves.pop_front();
            self.next = leaf.offset + leaf.size;
            if self.next > from {
                out.insert(leaf.cid, data);
            } else {
                self.park(leaf.offset, leaf.cid, data);
            }
        }
        out
    }

    /// The next `leaf.size` bytes of the body, checked against `leaf.cid`.
    async fn read_leaf(&mut self, leaf: &Leaf) -> Result<Bytes, Stop> {
        if leaf.offset >= self.body_end {
            self.next_body().await?;
        }
        let want = leaf.size as usize;
        self.pending.reserve(want.saturating_sub(self.pending.len()));
        while self.pending.len() < want {
            match self.body.chunk().await {
                Ok(Some(chunk)) => self.pending.extend_from_slice(&chunk),
                Ok(None) => {
                    return Err(Stop::Body(format!(
                        "the body ended {} bytes into leaf {}",
                        self.pending.len(),
                        leaf.cid
                    )))
                }
                Err(e) => return Err(Stop::Body(e.message().to_string())),
            }
        }
        let data = self.pending.split_to(want).freeze();
        match verify_block(&leaf.cid, &data, 0, leaf.offset) {
            Ok(()) => Ok(data),
            Err(CarError::HashMismatch { .. }) => Err(Stop::Mismatch),
            Err(e) => Err(Stop::Body(e.to_string())),
        }
    }

    fn park(&mut self, offset: u64, cid: Cid, data: Bytes) {
        self.parked_bytes += data.len() as u64;
        self.parked.insert(offset, (cid, data));
        while self.parked_bytes > PARKED_MAX {
            let Some((_, (_, b))) = self.parked.pop_first() else {
                break;
            };
            self.parked_bytes -= b.len() as u64;
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        // A segment nobody will read: close its request.
        if let Some((_, _, request)) = self.ahead.take() {
            request.abort();
        }
    }
}

/// Why a span stopped.
enum Stop {
    /// The body failed or ended early (not the bytes' fault).
    Body(String),
    /// A leaf's bytes do not hash to its CID.
    Mismatch,
}

/// A span shared by the runs of one reader (they take turns).
pub type SharedSpan = Arc<AsyncMutex<Span>>;

/// What a read should do about spans.
pub enum Lookup {
    /// Take from this span (its turn: the lock is held).
    Use(OwnedMutexGuard<Span>),
    /// The span failed, or the bytes went by in it: fetch block by block.
    Blocks,
    /// No span serves the read: open one.
    Open,
}

/// The open spans of one store, by file CID.
#[derive(Default)]
pub struct Spans {
    open: Mutex<HashMap<Cid, (SharedSpan, Instant)>>,
}

impl Spans {
    /// What a read of `file` from `from` should do. A span being read by
    /// another run is waited for (its turn), then asked, and handed over
    /// still locked when it serves the read.
    pub async fn lookup(&self, file: &Cid, from: u64) -> Lookup {
        let span = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            match open.get_mut(file) {
                Some((span, used)) => {
                    *used = Instant::now();
                    span.clone()
                }
                None => return Lookup::Open,
            }
        };
        let guard = span.lock_owned().await;
        if guard.serves(from) {
            Lookup::Use(guard)
        } else if guard.blocks(from) {
            Lookup::Blocks
        } else {
            Lookup::Open
        }
    }

    /// Keeps `span` as the span of `file` (closing the one it replaces, the
    /// idle ones, and the least recently used past [`MAX_SPANS`]).
    pub fn insert(&self, file: Cid, span: Span) -> SharedSpan {
        let span = Arc::new(AsyncMutex::new(span));
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, (_, used)| now.duration_since(*used) < SPAN_IDLE);
        while open.len() >= MAX_SPANS {
            let Some(oldest) = open.iter().min_by_key(|(_, (_, used))| *used).map(|(c, _)| *c) else {
                break;
            };
            open.remove(&oldest);
        }
        open.insert(file, (span.clone(), now));
        span
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::car::{cid_of_block, RAW};

    /// Four leaves of different sizes (the last short), their bytes and plan.
    fn file() -> (Vec<u8>, Vec<Leaf>) {
        let sizes = [1000u64, 2000, 1500, 700];
        let mut bytes = Vec::new();
        let mut leaves = Vec::new();
        for (i, size) in sizes.into_iter().enumerate() {
            let data: Vec<u8> = (0..size).map(|j| (j as u8).wrapping_mul(i as u8 + 3)).collect();
            leaves.push(Leaf {
                cid: cid_of_block(false, RAW, &data),
                offset: bytes.len() as u64,
                size,
            });
            bytes.extend_from_slice(&data);
        }
        (bytes, leaves)
    }

    /// What a node would answer to `cat`: the file's bytes (possibly
    /// cut short or tampered with), for any offset and length.
    struct Answers(Vec<u8>);

    #[async_trait::async_trait]
    impl BlockSource for Answers {
        fn name(&self) -> String {
            "api test".into()
        }
        async fn get(&self, cid: &Cid) -> Result<Bytes, SourceError> {
            Err(SourceError::Missing(cid.to_string()))
        }
        async fn cat_span(&self, _: &Cid, offset: u64, length: u64) -> Result<Option<SpanBody>, SourceError> {
            let from = (offset as usize).min(self.0.len());
            let to = (offset + length).min(self.0.len() as u64) as usize;
            Ok(Some(SpanBody::of(self.0[from..to].to_vec())))
        }
    }

    /// A span over all of `leaves` from `answers`, in segments of `segment` bytes.
    async fn span_with(answers: Vec<u8>, leaves: &[Leaf], segment: u64) -> Span {
        let source: Arc<dyn BlockSource> = Arc::new(Answers(answers));
        let end = segment_end(leaves, 0, segment).unwrap();
        let body = source.cat_span(&leaves[0].cid, 0, end).await.unwrap().unwrap();
        Span::with_segment(leaves[0].cid, source, body, end, leaves.to_vec(), segment)
    }

    async fn span(answers: Vec<u8>, leaves: &[Leaf]) -> Span {
        span_with(answers, leaves, SEGMENT_BYTES).await
    }

    #[test]
    fn segments_end_at_leaf_boundaries() {
        let (_, leaves) = file();
        assert_eq!(
            segment_end(&leaves, 0, 2500),
            Some(3000),
            "two leaves: the second starts within 2500"
        );
        assert_eq!(segment_end(&leaves, 1000, 1), Some(3000), "at least one leaf");
        assert_eq!(segment_end(&leaves, 3000, 10_000), Some(5200));
        assert_eq!(segment_end(&leaves, 1500, 10_000), None, "no leaf starts there");
        assert_eq!(segment_end(&leaves, 5200, 10_000), None, "past the end");
    }

    #[tokio::test]
    async fn segments_are_asked_for_ahead_and_read_in_turn() {
        let (bytes, leaves) = file();
        // Segments of 2, 4, 8 bytes...: every leaf comes from its own answer.
        let mut s = span_with(bytes.clone(), &leaves, 1).await;
        let got = s.take(0, 5200).await;
        assert_eq!(got.len(), 4);
        for leaf in &leaves {
            let (a, b) = (leaf.offset as usize, (leaf.offset + leaf.size) as usize);
            assert_eq!(got[&leaf.cid].as_ref(), &bytes[a..b]);
        }
        // An answer cut short in the third segment stops the span there.
        let mut s = span_with(bytes[..3500].to_vec(), &leaves, 1).await;
        assert_eq!(s.take(0, 5200).await.len(), 2);
        assert!(s.blocks(3000));
    }

    #[tokio::test]
    async fn takes_verified_leaves_in_order_and_parks_what_a_later_run_skipped() {
        let (bytes, leaves) = file();
        let mut s = span(bytes.clone(), &leaves).await;
        // A run for the third leaf reads the first two and parks them.
        let got = s.take(3000, 4500).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[&leaves[2].cid].as_ref(), &bytes[3000..4500]);
        assert!(s.serves(0) && s.serves(1500) && s.serves(4500));
        assert!(!s.blocks(4500) && s.blocks(3500), "the third leaf went by");
        // The earlier run comes late: its leaves are parked.
        let got = s.take(0, 3000).await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[&leaves[0].cid].as_ref(), &bytes[..1000]);
        assert_eq!(got[&leaves[1].cid].as_ref(), &bytes[1000..3000]);
        assert!(!s.serves(0), "parked leaves are handed out once");
        let got = s.take(4500, 5200).await;
        assert_eq!(got[&leaves[3].cid].as_ref(), &bytes[4500..]);
        assert!(!s.serves(5200), "past the last leaf");
    }

    #[tokio::test]
    async fn a_short_body_stops_the_span_without_an_error() {
        let (bytes, leaves) = file();
        let mut s = span(bytes[..3500].to_vec(), &leaves).await;
        let got = s.take(0, 5200).await;
        assert_eq!(got.len(), 2, "the two whole leaves before the end");
        assert!(
            !s.serves(4500) && s.blocks(4500),
            "a failed span serves nothing more, and opens no new one"
        );
        assert!(s.take(3000, 5200).await.is_empty());
    }

    #[tokio::test]
    async fn a_tampered_leaf_is_refused_and_ends_the_span() {
        let (mut bytes, leaves) = file();
        bytes[1234] ^= 1;
        let mut s = span(bytes.clone(), &leaves).await;
        let got = s.take(0, 5200).await;
        assert_eq!(got.len(), 1, "only the leaf before the tampered one");
        assert_eq!(got[&leaves[0].cid].as_ref(), &bytes[..1000]);
        assert!(!s.serves(3000) && s.blocks(3000), "the rest goes block by block");
    }

    #[tokio::test]
    async fn spans_are_found_by_file_and_position() {
        let (bytes, leaves) = file();
        let spans = Spans::default();
        let file = leaves[0].cid;
        assert!(matches!(spans.lookup(&file, 0).await, Lookup::Open));
        let s = spans.insert(file, span(bytes, &leaves).await);
        s.lock().await.take(1000, 3000).await;
        assert!(matches!(spans.lookup(&file, 3000).await, Lookup::Use(_)));
        assert!(matches!(spans.lookup(&file, 0).await, Lookup::Use(_)), "parked");
        s.lock().await.take(0, 1000).await;
        assert!(matches!(spans.lookup(&file, 1500).await, Lookup::Blocks));
        assert!(
            matches!(spans.lookup(&file, 5200).await, Lookup::Open),
            "past its end"
        );
        assert!(matches!(spans.lookup(&leaves[1].cid, 0).await, Lookup::Open));
    }
}
