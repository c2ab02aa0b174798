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
//! A span is planned from the file's DAG first: the leaves it covers, in
//! order, with their CIDs and sizes (`unixfs.rs`). It is asked for in
//! segments, each one `cat` request, from [`SEGMENT_BYTES`] growing
//! [`SEGMENT_GROWTH`]-fold up to [`SEGMENT_MAX`] (8, 32, 128, 88 MiB for a
//! 256 MiB file), the next one asked for as soon as the current one
//! starts being read, so the node prepares one while the other is checked
//! (js-ipfs holds back most of an answer before its first byte: its time to
//! first byte grows with the length asked, about 0.05 s for 32 MiB and
//! 0.2-0.37 s for 256 MiB, during which a single request would leave the
//! reader idle). Each answer is cut at the leaf sizes and every leaf is
//! hashed against its CID before any byte is used, so nothing is trusted
//! that a `block/get` would not be trusted with: a leaf that does not match
//! is refused with an error log line naming its CID and the source, and
//! asked for again by `block/get` (checked again: EIO if that answer is
//! wrong too). Raw leaves are their blocks. The dag-pb File leaves of
//! kubo's classic `ipfs add` (`unixfs-v0-2015`) wrap their bytes in a few
//! bytes of protobuf that follow from the length alone, so the block is
//! hashed with that wrapper around the bytes `cat` gave (`car::leaf`): a
//! match proves the bytes as a `block/get` would. A leaf planned as such
//! that does not match (a sibling that is no leaf, or bad bytes) ends the
//! span without an error line: the block-by-block read that follows checks
//! the whole block and logs a bad one. Files with leaves of any other kind
//! are read block by block.
//!
//! The leaves one run takes are read into one buffer, one after the other,
//! each checked in place: a run the buffer covers is served as a slice of
//! it, with no copy to put the leaves together. The buffers come from a
//! pool ([`RunBuffers`]) and go back to it when the run's bytes are dropped.
//!
//! Invariants: one span per file CID at a time, read by one caller at a time
//! (the readahead's runs of one stream take turns, and runs that arrive
//! while it is being opened wait for it rather than open another); a leaf read past by a run
//! that wants later bytes is parked for the run that wants it (bounded by
//! [`PARKED_MAX`]); a span that fails (an answer ends early, a read times
//! out, a leaf does not match) is never read again: the bytes it did not
//! give, and the rest of that file while its reader goes on, are fetched
//! block by block. Spans idle for [`SPAN_IDLE`] are closed, and at most
//! [`MAX_SPANS`] are open (each holds a connection to the node, two while
//! the next segment is asked for).

use super::runbuf::{RunBuf, RunBuffers};
use super::source::{BlockSource, SourceError, SpanBody};
use crate::car::{is_leaf_data, leaf_node, verify_block, CarError};
use bytes::Bytes;
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
/// [`SEGMENT_GROWTH`] times the one before, up to [`SEGMENT_MAX`].
pub const SEGMENT_BYTES: u64 = 8 << 20;
/// How much larger each `cat` request of a span is than the one before:
/// every request costs js-ipfs about 0.05 s of CPU of its own (a 256 MiB
/// file read in 2, 4 or 8 requests cost it 0.1, 0.2 and 0.4 CPU-s more than
/// in one), so a span is read in few; and each is asked for while the one
/// before is read, which on a 2-core machine hides its time to first byte.
/// The node's side of a 256 MiB read in our schedule, read by a client that
/// only counts bytes: doubling (8, 16, 32, 64, 64, 64, 8 MiB) 0.69-0.71 s
/// and 1.0 CPU-s; four-fold (8, 32, 128, 88) 0.49-0.59 s and 0.67-0.87
/// CPU-s, as much as one `cat` of it (0.44-0.54 s, 0.67-0.78 CPU-s).
const SEGMENT_GROWTH: u64 = 4;
/// Most bytes one `cat` request of a span asks for: js-ipfs holds back a
/// request's leaves until it has all those under one DAG node, so its
/// first byte comes about 1 ms per MiB asked after the request (0.09 s
/// for 64 MiB); 128 MiB is read in about 0.2 s, time enough for the node to
/// ready the next.
const SEGMENT_MAX: u64 = 128 << 20;
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
/// Room a run buffer gets (address space: only the bytes written take
/// memory): a run of the readahead (at most 8 MiB) and the leaves of a run
/// that came late, read past first; a take that must read past more (up to
/// [`SPAN_AHEAD`]) grows its buffer as it goes.
const RUN_ROOM_MAX: u64 = 16 << 20;
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
    /// A dag-pb File leaf (kubo's `unixfs-v0-2015` leaves), whose block
    /// wraps its bytes: checked with [`is_leaf_data`]. Else a raw leaf,
    /// whose block is its bytes.
    pub wrapped: bool,
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
    /// Bytes the next segment asked for covers (growing up to [`SEGMENT_MAX`]).
    segment: u64,
    /// Leaves not yet read from the body, in file order.
    leaves: VecDeque<Leaf>,
    /// Where the span's first leaf starts.
    start: u64,
    /// File offset of the next leaf to come from the body.
    next: u64,
    /// Bytes received and not yet handed out: first the leaves checked
    /// during the current [`Span::take`] (`checked` bytes), then the start
    /// of the next leaf. A buffer of `buffers`.
    pending: RunBuf,
    checked: usize,
    buffers: Arc<RunBuffers>,
    /// Verified leaves read past by a later run, by file offset.
    parked: BTreeMap<u64, Parked>,
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
    /// `body` streams from `source`, read into buffers of `buffers`. Asks
    /// for the next segment at once (needs a tokio runtime).
    pub fn new(
        file: Cid,
        source: Arc<dyn BlockSource>,
        body: SpanBody,
        body_end: u64,
        leaves: Vec<Leaf>,
        buffers: Arc<RunBuffers>,
    ) -> Self {
        Self::with_segment(file, source, body, body_end, leaves, buffers, SEGMENT_BYTES)
    }

    /// [`Span::new`] with a first segment of `first` bytes (tests use tiny ones).
    fn with_segment(
        file: Cid,
        source: Arc<dyn BlockSource>,
        body: SpanBody,
        body_end: u64,
        leaves: Vec<Leaf>,
        buffers: Arc<RunBuffers>,
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
            pending: buffers.get(),
            checked: 0,
            buffers,
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
        self.segment = self.segment.saturating_mul(SEGMENT_GROWTH).min(SEGMENT_MAX);
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
        let spare = self.pending.bytes.len() - self.checked;
        if from != self.next || spare != 0 {
            return Err(Stop::Body(format!(
                "the answer ended at {} with {spare} bytes to spare; the next segment starts at {from}",
                self.next,
            )));
        }
        let asked = Instant::now();
        let answer = request.await;
        // How long the reader waited for the node to start this segment:
        // the time to first byte the segment schedule did not hide.
        tracing::trace!(
            from,
            to,
            waited_ms = asked.elapsed().as_millis() as u64,
            "next cat segment"
        );
        match answer {
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
            .is_some_and(|(off, p)| off + p.bytes.len() as u64 > from);
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
    pub async fn take(&mut self, from: u64, to: u64) -> Taken {
        let mut leaves = HashMap::new();
        let mut wrapped = Vec::new();
        let here: Vec<u64> = self
            .parked
            .range(..to)
            .filter(|(off, p)| *off + p.bytes.len() as u64 > from)
            .map(|(off, _)| *off)
            .collect();
        // The run the parked leaves came in, if they all came in one.
        let mut parked_run: Option<(u64, Bytes)> = None;
        let mut one_run = true;
        for off in here {
            if let Some(p) = self.parked.remove(&off) {
                self.parked_bytes -= p.bytes.len() as u64;
                match &parked_run {
                    None => parked_run = Some(p.run),
                    Some((start, run)) => {
                        one_run &= *start == p.run.0 && run.as_ptr() == p.run.1.as_ptr();
                    }
                }
                if p.wrapped {
                    wrapped.push(p.cid);
                }
                leaves.insert(p.cid, p.bytes);
            }
        }
        // The leaves read now land one after the other in one buffer, which
        // the caller can use as it is when it covers the read.
        let room: u64 = self
            .leaves
            .iter()
            .take_while(|l| l.offset < to)
            .map(|l| l.size)
            .sum();
        // A buffer new to the pool gets room for any run at once: growing it
        // later would copy it into fresh memory.
        let room = room.min(RUN_ROOM_MAX) as usize;
        let pending = &mut self.pending.bytes;
        if pending.capacity() < room {
            pending.reserve((RUN_ROOM_MAX as usize).saturating_sub(pending.len()));
        }
        let run_start = self.next;
        let mut read = Vec::new();
        while self.live && self.next < to {
            let Some(leaf) = self.leaves.front().cloned() else {
                break;
            };
            match self.read_leaf(&leaf).await {
                Ok(()) => {}
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
            }
            self.leaves.pop_front();
            self.next = leaf.offset + leaf.size;
            read.push(leaf);
        }
        // The checked leaves keep this buffer; the start of the next leaf
        // moves to the next one.
        let run = if self.checked == 0 {
            Bytes::new()
        } else {
            let mut next = self.buffers.get();
            next.bytes.extend_from_slice(&self.pending.bytes[self.checked..]);
            let run = std::mem::replace(&mut self.pending, next);
            let len = std::mem::take(&mut self.checked);
            self.buffers.freeze(run, len)
        };
        let mut at = 0;
        for leaf in read {
            let data = run.slice(at..at + leaf.size as usize);
            at += leaf.size as usize;
            if leaf.offset + leaf.size > from {
                if leaf.wrapped {
                    wrapped.push(leaf.cid);
                }
                leaves.insert(leaf.cid, data);
            } else {
                let parked = Parked {
                    cid: leaf.cid,
                    bytes: data,
                    wrapped: leaf.wrapped,
                    run: (run_start, run.clone()),
                };
                self.park(leaf.offset, parked);
            }
        }
        // A run that came late is served from the run that read its leaves
        // (every byte of which is checked), as a slice, with no copy.
        let run = if !run.is_empty() {
            Some((run_start, run))
        } else if one_run {
            parked_run
        } else {
            None
        };
        Taken { leaves, wrapped, run }
    }

    /// Reads the next `leaf.size` bytes of the body into `pending`, after
    /// the leaves checked already, and checks them against `leaf.cid`.
    async fn read_leaf(&mut self, leaf: &Leaf) -> Result<(), Stop> {
        if leaf.offset >= self.body_end {
            self.next_body().await?;
        }
        let want = self.checked + leaf.size as usize;
        let pending = &mut self.pending.bytes;
        pending.reserve(want.saturating_sub(pending.len()));
        while pending.len() < want {
            match self.body.chunk().await {
                Ok(Some(chunk)) => pending.extend_from_slice(&chunk),
                Ok(None) => {
                    return Err(Stop::Body(format!(
                        "the body ended {} bytes into leaf {}",
                        pending.len() - self.checked,
                        leaf.cid
                    )))
                }
                Err(e) => return Err(Stop::Body(e.message().to_string())),
            }
        }
        let bytes = &pending[self.checked..want];
        if leaf.wrapped {
            // Planned as a dag-pb leaf from its parent and its first
            // sibling: bytes that do not match may as well be a sibling that
            // is no leaf (a trickle DAG) as bad bytes; the block-by-block
            // read that follows checks whole blocks either way.
            if !is_leaf_data(&leaf.cid, bytes) {
                return Err(Stop::Body(format!(
                    "bytes of {} do not make its dag-pb leaf",
                    leaf.cid
                )));
            }
            self.checked = want;
            return Ok(());
        }
        match verify_block(&leaf.cid, bytes, 0, leaf.offset) {
            Ok(()) => {
                self.checked = want;
                Ok(())
            }
            Err(CarError::HashMismatch { .. }) => Err(Stop::Mismatch),
            Err(e) => Err(Stop::Body(e.to_string())),
        }
    }

    fn park(&mut self, offset: u64, leaf: Parked) {
        self.parked_bytes += leaf.bytes.len() as u64;
        self.parked.insert(offset, leaf);
        while self.parked_bytes > PARKED_MAX {
            let Some((_, p)) = self.parked.pop_first() else {
                break;
            };
            self.parked_bytes -= p.bytes.len() as u64;
        }
    }
}

/// A verified leaf read past by a later run.
struct Parked {
    cid: Cid,
    bytes: Bytes,
    /// A dag-pb leaf (`bytes` is its data).
    wrapped: bool,
    /// The run it was read in and that run's file offset (the leaf is a
    /// slice of it).
    run: (u64, Bytes),
}

impl Drop for Span {
    fn drop(&mut self) {
        // A segment nobody will read: close its request.
        if let Some((_, _, request)) = self.ahead.take() {
            request.abort();
        }
        self.buffers.put(std::mem::take(&mut self.pending));
    }
}

/// What a [`Span::take`] gives.
#[derive(Debug, Default)]
pub struct Taken {
    /// The verified file bytes of the leaves holding bytes of the range
    /// asked for, by the leaf's CID (a dag-pb leaf's data, not its block).
    pub leaves: HashMap<Cid, Bytes>,
    /// Which of `leaves` are dag-pb leaves.
    pub wrapped: Vec<Cid>,
    /// The leaves read from the body by this take, verified, one after the
    /// other in one buffer, and the file offset where they start; when it
    /// read none, the run all the parked leaves it hands out came in.
    pub run: Option<(u64, Bytes)>,
}

impl Taken {
    /// Bytes `from..to` of the file, if `run` holds all of them.
    pub fn range(&self, from: u64, to: u64) -> Option<Bytes> {
        let (start, run) = self.run.as_ref()?;
        let end = start + run.len() as u64;
        (*start <= from && from <= to && to <= end)
            .then(|| run.slice((from - start) as usize..(to - start) as usize))
    }

    /// The leaves as their blocks, for a walk of the DAG: a dag-pb leaf's
    /// block is rebuilt around its data (a copy; only reads that no one run
    /// covers come here).
    pub fn into_blocks(self) -> HashMap<Cid, Bytes> {
        let mut blocks = self.leaves;
        for cid in self.wrapped {
            if let Some(data) = blocks.get_mut(&cid) {
                *data = Bytes::from(leaf_node(data));
            }
        }
        blocks
    }
}

/// Why a span stopped.
enum Stop {
    /// The body failed or ended early (not the bytes' fault).
    Body(String),
    /// A leaf's bytes do not hash to its CID.
    Mismatch,
}

/// The span of one file, shared by the runs of one reader (they take
/// turns). Empty while it is being opened, and left empty if that failed.
type Slot = Arc<AsyncMutex<Option<Span>>>;

/// A run's turn on an open span: the span's lock is held.
pub struct SpanTurn(OwnedMutexGuard<Option<Span>>);

impl SpanTurn {
    /// [`Span::take`] on this turn's span (a turn is only handed out for a
    /// slot that holds one).
    pub async fn take(&mut self, from: u64, to: u64) -> Taken {
        match self.0.as_mut() {
            Some(span) => span.take(from, to).await,
            None => Taken::default(),
        }
    }
}

/// The right to open the span of a file: its slot is locked, so the runs
/// that look the file up meanwhile wait for the span instead of opening
/// another (two runs of one reader arrive together). Dropped unfilled, the
/// slot is given up and the runs waiting on it read block by block.
pub struct Opening<'a> {
    spans: &'a Spans,
    file: Cid,
    slot: Slot,
    guard: Option<OwnedMutexGuard<Option<Span>>>,
}

impl Opening<'_> {
    /// The buffers the span should read into.
    pub fn buffers(&self) -> Arc<RunBuffers> {
        self.spans.buffers.clone()
    }

    /// Keeps `span` as the file's span and hands the caller its turn.
    pub fn fill(mut self, span: Span) -> Option<SpanTurn> {
        let mut guard = self.guard.take()?;
        *guard = Some(span);
        Some(SpanTurn(guard))
    }
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        if self.guard.take().is_some() {
            let mut open = self.spans.open.lock().unwrap_or_else(|e| e.into_inner());
            if open
                .get(&self.file)
                .is_some_and(|(s, _)| Arc::ptr_eq(s, &self.slot))
            {
                open.remove(&self.file);
            }
        }
    }
}

/// What a read should do about spans.
pub enum Lookup<'a> {
    /// Take from this span (its turn: the lock is held).
    Use(SpanTurn),
    /// The span failed, the bytes went by in it, or the read is too short
    /// to open one: fetch block by block.
    Blocks,
    /// No span serves the read: open one and [`Opening::fill`] it.
    Open(Opening<'a>),
}

/// The open spans of one store, by file CID.
#[derive(Default)]
pub struct Spans {
    open: Mutex<HashMap<Cid, (Slot, Instant)>>,
    /// The buffers every span of the store reads into.
    buffers: Arc<RunBuffers>,
}

impl Spans {
    /// What a read of `file` from `from` should do; `may_open` says whether
    /// the read is long enough to open a span. A span being read or opened
    /// by another run is waited for (its turn), then asked, and handed over
    /// still locked when it serves the read.
    pub async fn lookup(&self, file: &Cid, from: u64, may_open: bool) -> Lookup<'_> {
        let slot = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            match open.get_mut(file) {
                Some((slot, used)) => {
                    *used = Instant::now();
                    slot.clone()
                }
                None if may_open => return Lookup::Open(self.new_slot(&mut open, *file)),
                None => return Lookup::Blocks,
            }
        };
        let mut guard = slot.clone().lock_owned().await;
        let Some(span) = guard.as_ref() else {
            // Its opening failed: this read goes block by block.
            return Lookup::Blocks;
        };
        if span.serves(from) {
            Lookup::Use(SpanTurn(guard))
        } else if span.blocks(from) || !may_open {
            Lookup::Blocks
        } else {
            // A new span from `from` replaces this one, in the same slot:
            // runs waiting on it wait for the new one.
            *guard = None;
            Lookup::Open(Opening {
                spans: self,
                file: *file,
                slot,
                guard: Some(guard),
            })
        }
    }

    /// A new, locked slot for `file` (closing the idle spans, and the least
    /// recently used past [`MAX_SPANS`]).
    fn new_slot(&self, open: &mut HashMap<Cid, (Slot, Instant)>, file: Cid) -> Opening<'_> {
        let now = Instant::now();
        open.retain(|_, (_, used)| now.duration_since(*used) < SPAN_IDLE);
        while open.len() >= MAX_SPANS {
            let Some(oldest) = open.iter().min_by_key(|(_, (_, used))| *used).map(|(c, _)| *c) else {
                break;
            };
            open.remove(&oldest);
        }
        let slot: Slot = Arc::new(AsyncMutex::new(None));
        // A new mutex is free: try_lock cannot fail.
        let guard = slot.clone().try_lock_owned().ok();
        open.insert(file, (slot.clone(), now));
        Opening {
            spans: self,
            file,
            slot,
            guard,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::car::{cid_of_block, DAG_PB, RAW};

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
                wrapped: false,
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

    impl Span {
        async fn take_leaves(&mut self, from: u64, to: u64) -> HashMap<Cid, Bytes> {
            self.take(from, to).await.leaves
        }
    }

    /// A span over all of `leaves` from `answers`, in segments of `segment` bytes.
    async fn span_with(answers: Vec<u8>, leaves: &[Leaf], segment: u64) -> Span {
        let source: Arc<dyn BlockSource> = Arc::new(Answers(answers));
        let end = segment_end(leaves, 0, segment).unwrap();
        let body = source.cat_span(&leaves[0].cid, 0, end).await.unwrap().unwrap();
        let buffers = Arc::new(RunBuffers::default());
        Span::with_segment(
            leaves[0].cid,
            source,
            body,
            end,
            leaves.to_vec(),
            buffers,
            segment,
        )
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
    async fn dag_pb_leaves_are_checked_inside_their_wrapper_and_a_mismatch_ends_the_span() {
        // `file()`'s bytes as kubo's dag-pb File leaves (CIDv0).
        let (bytes, mut leaves) = file();
        for l in &mut leaves {
            let data = &bytes[l.offset as usize..(l.offset + l.size) as usize];
            l.cid = cid_of_block(true, DAG_PB, &leaf_node(data));
            l.wrapped = true;
        }
        let mut s = span(bytes.clone(), &leaves).await;
        let got = s.take(0, 5200).await;
        assert_eq!(got.range(0, 5200).as_deref(), Some(&bytes[..]));
        assert_eq!(
            got.leaves[&leaves[1].cid].as_ref(),
            &bytes[1000..3000],
            "the data, not the block"
        );
        let blocks = got.into_blocks();
        assert_eq!(
            blocks[&leaves[1].cid].as_ref(),
            &leaf_node(&bytes[1000..3000])[..]
        );
        // A wrong byte in the third leaf: the first two are handed out and
        // the rest goes block by block.
        let mut bad = bytes.clone();
        bad[3200] ^= 1;
        let mut s = span(bad, &leaves).await;
        let got = s.take_leaves(0, 5200).await;
        assert_eq!(got.len(), 2);
        assert!(s.blocks(3000) && !s.serves(3000));
        // A raw leaf's bytes do not pass as a dag-pb leaf's.
        let (bytes, mut leaves) = file();
        leaves[0].wrapped = true;
        let mut s = span(bytes, &leaves).await;
        assert!(s.take_leaves(0, 5200).await.is_empty());
    }

    #[tokio::test]
    async fn segments_are_asked_for_ahead_and_read_in_turn() {
        let (bytes, leaves) = file();
        // Segments of 2, 4, 8 bytes...: every leaf comes from its own answer.
        let mut s = span_with(bytes.clone(), &leaves, 1).await;
        let got = s.take_leaves(0, 5200).await;
        assert_eq!(got.len(), 4);
        for leaf in &leaves {
            let (a, b) = (leaf.offset as usize, (leaf.offset + leaf.size) as usize);
            assert_eq!(got[&leaf.cid].as_ref(), &bytes[a..b]);
        }
        // An answer cut short in the third segment stops the span there.
        let mut s = span_with(bytes[..3500].to_vec(), &leaves, 1).await;
        assert_eq!(s.take_leaves(0, 5200).await.len(), 2);
        assert!(s.blocks(3000));
    }

    #[tokio::test]
    async fn takes_verified_leaves_in_order_and_parks_what_a_later_run_skipped() {
        let (bytes, leaves) = file();
        let mut s = span(bytes.clone(), &leaves).await;
        // A run for the third leaf reads the first two and parks them.
        let got = s.take_leaves(3000, 4500).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[&leaves[2].cid].as_ref(), &bytes[3000..4500]);
        assert!(s.serves(0) && s.serves(1500) && s.serves(4500));
        assert!(!s.blocks(4500) && s.blocks(3500), "the third leaf went by");
        // The earlier run comes late: its leaves are parked.
        let got = s.take_leaves(0, 3000).await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[&leaves[0].cid].as_ref(), &bytes[..1000]);
        assert_eq!(got[&leaves[1].cid].as_ref(), &bytes[1000..3000]);
        assert!(!s.serves(0), "parked leaves are handed out once");
        let got = s.take_leaves(4500, 5200).await;
        assert_eq!(got[&leaves[3].cid].as_ref(), &bytes[4500..]);
        assert!(!s.serves(5200), "past the last leaf");
    }

    #[tokio::test]
    async fn a_run_that_came_late_is_a_slice_of_the_run_that_read_its_leaves() {
        let (bytes, leaves) = file();
        let mut s = span(bytes.clone(), &leaves).await;
        // The run for the third leaf reads the first two as well.
        let first = s.take(3000, 4500).await;
        let late = s.take(0, 3000).await;
        let got = late.range(0, 3000).expect("served whole");
        assert_eq!(&got[..], &bytes[..3000]);
        let (_, run) = first.run.as_ref().unwrap();
        assert_eq!(got.as_ptr(), run.as_ptr(), "a slice of the first run, not a copy");
        // Parked leaves of two runs (the first and the third): no one run
        // serves the read; the caller puts the leaves together.
        let mut s = span(bytes.clone(), &leaves).await;
        s.take(1000, 2000).await;
        s.take(4500, 5200).await;
        let mixed = s.take(0, 4500).await;
        assert!(mixed.run.is_none());
        assert_eq!(mixed.leaves.len(), 2);
        assert_eq!(mixed.leaves[&leaves[2].cid].as_ref(), &bytes[3000..4500]);
    }

    #[tokio::test]
    async fn a_take_reads_its_leaves_into_one_buffer_that_serves_the_range() {
        let (bytes, leaves) = file();
        let mut s = span(bytes.clone(), &leaves).await;
        let taken = s.take(1000, 4500).await;
        assert_eq!(taken.range(1000, 4500).as_deref(), Some(&bytes[1000..4500]));
        assert_eq!(
            taken.range(0, 10).as_deref(),
            Some(&bytes[..10]),
            "the parked leaf is in it too"
        );
        assert!(taken.range(4000, 5200).is_none(), "not read yet");
        let (start, run) = taken.run.as_ref().unwrap();
        assert_eq!((*start, run.len()), (0, 4500));
        let third = &taken.leaves[&leaves[2].cid];
        assert_eq!(
            third.as_ptr(),
            run[3000..].as_ptr(),
            "a leaf is a slice of the run, not a copy"
        );
        // A tampered leaf: the run holds the leaves checked before it.
        let (mut bad, _) = file();
        bad[3100] ^= 1;
        let mut s = span(bad, &leaves).await;
        let taken = s.take(0, 5200).await;
        assert_eq!(taken.run.as_ref().map(|(_, r)| r.len()), Some(3000));
        assert!(taken.range(0, 3500).is_none());
    }

    #[tokio::test]
    async fn a_short_body_stops_the_span_without_an_error() {
        let (bytes, leaves) = file();
        let mut s = span(bytes[..3500].to_vec(), &leaves).await;
        let got = s.take_leaves(0, 5200).await;
        assert_eq!(got.len(), 2, "the two whole leaves before the end");
        assert!(
            !s.serves(4500) && s.blocks(4500),
            "a failed span serves nothing more, and opens no new one"
        );
        assert!(s.take_leaves(3000, 5200).await.is_empty());
    }

    #[tokio::test]
    async fn a_tampered_leaf_is_refused_and_ends_the_span() {
        let (mut bytes, leaves) = file();
        bytes[1234] ^= 1;
        let mut s = span(bytes.clone(), &leaves).await;
        let got = s.take_leaves(0, 5200).await;
        assert_eq!(got.len(), 1, "only the leaf before the tampered one");
        assert_eq!(got[&leaves[0].cid].as_ref(), &bytes[..1000]);
        assert!(!s.serves(3000) && s.blocks(3000), "the rest goes block by block");
    }

    #[tokio::test]
    async fn spans_are_found_by_file_and_position() {
        let (bytes, leaves) = file();
        let spans = Spans::default();
        let file = leaves[0].cid;
        assert!(
            matches!(spans.lookup(&file, 0, false).await, Lookup::Blocks),
            "too short to open"
        );
        let Lookup::Open(opening) = spans.lookup(&file, 0, true).await else {
            panic!("no span yet: open one");
        };
        let mut turn = opening.fill(span(bytes.clone(), &leaves).await).unwrap();
        turn.take(1000, 3000).await;
        drop(turn);
        assert!(matches!(spans.lookup(&file, 3000, true).await, Lookup::Use(_)));
        let Lookup::Use(mut turn) = spans.lookup(&file, 0, true).await else {
            panic!("the first leaf is parked");
        };
        turn.take(0, 1000).await;
        drop(turn);
        assert!(matches!(spans.lookup(&file, 1500, true).await, Lookup::Blocks));
        assert!(
            matches!(spans.lookup(&file, 5200, false).await, Lookup::Blocks),
            "past its end, and too short to open"
        );
        let Lookup::Open(reopen) = spans.lookup(&file, 5200, true).await else {
            panic!("past its end: open a new one");
        };
        drop(reopen);
        assert!(
            matches!(spans.lookup(&file, 5200, false).await, Lookup::Blocks),
            "a given-up opening leaves no span"
        );
        assert!(matches!(
            spans.lookup(&leaves[1].cid, 0, true).await,
            Lookup::Open(_)
        ));
    }

    #[tokio::test]
    async fn runs_arriving_together_wait_for_one_opening() {
        let (bytes, leaves) = file();
        let spans = Spans::default();
        let file = leaves[0].cid;
        let Lookup::Open(opening) = spans.lookup(&file, 0, true).await else {
            panic!("no span yet: open one");
        };
        let second = spans.lookup(&file, 1000, true);
        tokio::pin!(second);
        assert!(
            futures::FutureExt::now_or_never(second.as_mut()).is_none(),
            "the second run waits while the first opens"
        );
        let turn = opening.fill(span(bytes, &leaves).await).unwrap();
        drop(turn);
        assert!(
            matches!(second.await, Lookup::Use(_)),
            "and then reads the same span"
        );
    }
}
