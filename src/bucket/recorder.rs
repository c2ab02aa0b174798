//! The queue between a bucket mount's closes and its journal, so that a
//! close never waits for the index. A close hands over an open descriptor
//! of the bytes it stored (still readable after a rename, or after the
//! staged copy is deleted) and returns; renames and removals take the same
//! queue, so each bucket's journal sees its changes in the order they
//! happened. One worker task takes everything queued (a batch, up to
//! [`MAX_BATCH`], gathered for [`LINGER`] after its first job): it hashes
//! the files on a blocking thread (several when they are large, see
//! [`hash_all`]; a file stored twice in a batch, with no rename or removal
//! in between, is hashed once: its later bytes), asks the backend for their
//! versions, and appends the batch's journal lines with one write per
//! bucket (group commit).
//!
//! Waiting: every job has a ticket, and the worker publishes the last
//! ticket it finished. [`Catalog::settled`] waits for the tickets issued
//! before the call (every `bucket.*` method calls it, so `bucket files`
//! right after `cp` lists the file); [`Catalog::settled_path`] waits only
//! for one path's jobs (`user.ipfs.cid`).
//!
//! Crash safety: a bucket's first job after a checkpoint writes the marker
//! `buckets/<bucket>_vfs.recording` (this process's pid, boot id and start
//! time) before the close returns; a checkpoint that finds the queue empty
//! removes it. A marker
//! whose process is gone means records may have been lost between a close
//! and the journal. The files are safe (a close returns after the backend
//! has the bytes), so the next process that opens the bucket re-indexes it
//! from the backend (`bucket index`: files new or changed since their row
//! are hashed, rows of files gone are dropped) before it answers a
//! `bucket.*` call; the daemon starts that at mount time.

use super::catalog::{Bucket, Catalog, Recovery};
use super::error::Result;
use super::hash::hash_open;
use super::journal::Op;
use super::row::{millis, now_ms, Row};
use crate::car::Built;
use crate::vfs::{Router, Tree};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, watch};

/// Jobs the worker takes at once at most: bounds one batch's memory and
/// how long the first rows of a long burst wait for the last ones.
const MAX_BATCH: usize = 1024;
/// How long the worker waits after a batch's first job for more: a
/// shell's `echo > f` flushes twice (at its redirection's `dup2` and at
/// the close) well under a millisecond apart, and a burst of closes then
/// shares one hashing hand-off and one journal append. `bucket files` waits
/// this much longer at most.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);
/// Bytes a batch must hold before its files are hashed on several threads:
/// below it (a burst of small files) starting threads costs more than it saves.
const POOL_BYTES: u64 = 8 << 20;
/// Threads hashing one batch at most (fewer on fewer cores): a few large
/// files closed together are indexed in parallel, as `bucket index` hashes.
const HASHERS: usize = 4;
/// Backend version lookups (stat) in flight for one batch: on S3 each is
/// a HEAD request; a few at once hide the round trip without a flood.
const STATS: usize = 8;
/// Test hook: with this set to 1 the worker takes no job (so a killed
/// daemon has lost every queued record: the case recovery must cover).
const HOLD: &str = "IPFS_KIT_TEST_HOLD_INDEX_QUEUE";

/// Store key of a bucket's marker (see the module doc).
pub fn marker_key(name: &str) -> String {
    format!("buckets/{name}_vfs.recording")
}

/// What a job asks.
pub enum Work {
    /// Hash the bytes of `file` and record them as the file `rel` of `tree`.
    Stored {
        tree: Arc<dyn Tree>,
        rel: String,
        file: Arc<File>,
    },
    /// Record a change as it is (a rename or a removal).
    Op(Op),
    /// Re-index the bucket from its backend (recovery, see the module doc).
    Reconcile(Arc<Router>),
}

struct Job {
    ticket: u64,
    bucket: Arc<Bucket>,
    work: Work,
}

#[derive(Default)]
struct Inner {
    issued: u64,
    /// The latest ticket of each (bucket, path) with a job queued.
    paths: HashMap<(String, String), u64>,
    /// Buckets whose marker this process wrote.
    marked: HashSet<String>,
    tx: Option<mpsc::UnboundedSender<Job>>,
}

/// The queue's shared state (one per catalog).
pub struct Recorder {
    inner: Mutex<Inner>,
    done: watch::Sender<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            done: watch::channel(0).0,
        }
    }
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn wait_for(&self, ticket: u64) {
        let mut rx = self.done.subscribe();
        // The sender lives as long as `self`: the wait ends with the ticket.
        let _ = rx.wait_for(|d| *d >= ticket).await;
    }
}

/// Who the process `pid` is: its pid, the boot it runs in and its start
/// time (so neither a reused pid nor a reboot passes for the process that
/// wrote a marker); None when no such process runs.
fn identity(pid: u32) -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (start time); the fields after the command name, which is
    // in parentheses and may hold spaces, start at field 3.
    let start = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?;
    Some(format!("{pid} {} {start}", boot.trim()))
}

/// This process's marker line.
fn my_line() -> String {
    let me = std::process::id();
    format!("{}\n", identity(me).unwrap_or_else(|| me.to_string()))
}

/// Whether a marker's text names a process that is gone (or is unreadable).
pub fn marker_is_stale(text: &[u8]) -> bool {
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines.is_empty()
        || lines.iter().any(|l| {
            let pid = l.split_whitespace().next().and_then(|p| p.parse().ok());
            pid.and_then(identity).is_none_or(|now| now != *l)
        })
}

impl Catalog {
    /// Queues `work` for bucket `b` and returns at once (the marker is
    /// written first when this is the bucket's first job since a checkpoint).
    /// Must be called within the tokio runtime (the worker starts on the first job).
    pub fn enqueue(self: &Arc<Self>, b: &Arc<Bucket>, work: Work) {
        let name = b.def.name.clone();
        let mut inner = self.recorder.lock();
        if !matches!(work, Work::Reconcile(_)) && !inner.marked.contains(&name) {
            match self.store.append(&marker_key(&name), my_line().as_bytes()) {
                Ok(()) => {
                    inner.marked.insert(name.clone());
                }
                Err(e) => {
                    tracing::warn!(bucket = %name, error = %e, "cannot write the recording marker; a crash now is recovered only by `bucket index`")
                }
            }
        }
        inner.issued += 1;
        let ticket = inner.issued;
        match &work {
            Work::Stored { rel, .. } => {
                inner.paths.insert((name, rel.clone()), ticket);
            }
            Work::Op(Op::Mv { to, .. }) => {
                inner.paths.insert((name, to.clone()), ticket);
            }
            _ => {}
        }
        let tx = inner.tx.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(worker(self.clone(), rx));
            tx
        });
        let job = Job {
            ticket,
            bucket: b.clone(),
            work,
        };
        if tx.send(job).is_err() {
            tracing::error!(bucket = %b.def.name, "the index queue is gone; run `bucket index`");
        }
    }

    /// Queues the re-indexing of every bucket whose marker was left by a
    /// process that is gone (once per bucket, until it succeeds).
    pub fn start_recovery(self: &Arc<Self>, router: &Arc<Router>) {
        for b in self.all() {
            let queue = {
                let mut st = b.lock();
                let needed = st.recovery == Recovery::Needed;
                if needed {
                    st.recovery = Recovery::Queued;
                }
                needed
            };
            if queue {
                tracing::warn!(bucket = %b.def.name, "an earlier process stopped with index records queued; re-indexing the bucket from its backend");
                self.enqueue(&b, Work::Reconcile(router.clone()));
            }
        }
    }

    /// Waits until every change queued before this call is in the journal,
    /// first queuing the recovery of buckets that need it.
    pub async fn settled(self: &Arc<Self>, router: &Arc<Router>) {
        self.start_recovery(router);
        self.drained().await;
    }

    /// Waits until every change queued before this call is in the journal.
    pub async fn drained(&self) {
        let t = self.recorder.lock().issued;
        self.recorder.wait_for(t).await;
    }

    /// Waits until the queued jobs of the file `rel` of bucket `b` are done.
    pub async fn settled_path(&self, b: &Bucket, rel: &str) {
        let ticket = self
            .recorder
            .lock()
            .paths
            .get(&(b.def.name.clone(), rel.to_string()))
            .copied();
        if let Some(t) = ticket {
            self.recorder.wait_for(t).await;
        }
    }

    /// Removes the markers this process wrote, when nothing is queued and
    /// the bucket needs no recovery (called by checkpoints).
    pub fn release_markers(&self) {
        let mut inner = self.recorder.lock();
        if inner.issued != *self.recorder.done.borrow() {
            return;
        }
        let names: Vec<String> = inner.marked.iter().cloned().collect();
        for name in names {
            let recovering = self.get(&name).is_ok_and(|b| b.lock().recovery != Recovery::Idle);
            if recovering {
                continue;
            }
            match self.store.remove(&marker_key(&name)) {
                Ok(()) => {
                    inner.marked.remove(&name);
                }
                Err(e) => tracing::warn!(bucket = %name, error = %e, "cannot remove the recording marker"),
            }
        }
    }

    /// True while this process has a marker written (a checkpoint is due).
    pub fn has_markers(&self) -> bool {
        !self.recorder.lock().marked.is_empty()
    }

    /// Re-indexes `b` from its backend (recovery); on failure it is tried
    /// again at the next `bucket.*` call.
    async fn reconcile(&self, router: &Router, b: &Arc<Bucket>) {
        let noop: super::ProgressFn = Arc::new(|_: &str, _: u64, _: u64| {});
        let run: std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<super::IndexReport>> + Send + '_>,
        > = Box::pin(self.index(router, &b.def.name, false, noop));
        match run.await {
            Ok(r) => {
                tracing::info!(bucket = %b.def.name, hashed = r.hashed, removed = r.removed, unchanged = r.unchanged, "bucket re-indexed after an earlier process stopped");
                b.lock().recovery = Recovery::Idle;
                let mine = self.recorder.lock().marked.contains(&b.def.name);
                if !mine {
                    if let Err(e) = self.store.remove(&marker_key(&b.def.name)) {
                        tracing::warn!(bucket = %b.def.name, error = %e, "cannot remove the recording marker");
                    }
                }
            }
            Err(e) => {
                tracing::error!(bucket = %b.def.name, error = %e, "re-indexing after an earlier process stopped failed; tried again at the next `bucket` command");
                b.lock().recovery = Recovery::Needed;
            }
        }
    }

    /// Marks every ticket up to `last` done.
    fn finish(&self, last: u64) {
        let mut inner = self.recorder.lock();
        inner.paths.retain(|_, t| *t > last);
        self.recorder.done.send_replace(last);
    }
}

async fn worker(cat: Arc<Catalog>, mut rx: mpsc::UnboundedReceiver<Job>) {
    if std::env::var_os(HOLD).is_some_and(|v| v == "1") {
        tracing::error!("{HOLD}=1: the index queue takes no job");
        let mut held = Vec::new();
        while let Some(j) = rx.recv().await {
            held.push(j);
        }
        return;
    }
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        tokio::time::sleep(LINGER).await;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let last = batch.last().map_or(0, |j| j.ticket);
        let mut run = Vec::new();
        for job in batch {
            match job.work {
                Work::Reconcile(router) => {
                    record_run(cat.clone(), std::mem::take(&mut run)).await;
                    reconcile(cat.clone(), router, job.bucket).await;
                }
                work => run.push(Job { work, ..job }),
            }
        }
        record_run(cat.clone(), run).await;
        cat.finish(last);
    }
}

/// Hashes the files of a batch: on this thread when they are small
/// together, else on up to [`HASHERS`] threads taking files in turn.
fn hash_all(files: Vec<(usize, Arc<File>, crate::car::Profile)>) -> HashMap<usize, Result<Built>> {
    let bytes: u64 = files
        .iter()
        .map(|(_, f, _)| f.metadata().map_or(0, |m| m.len()))
        .sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if bytes < POOL_BYTES {
        1
    } else {
        HASHERS.min(cores).min(files.len())
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = Mutex::new(HashMap::new());
    let work = || loop {
        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some((i, file, profile)) = files.get(k) else {
            return;
        };
        let r = hash_open(file, *profile);
        out.lock().unwrap_or_else(|e| e.into_inner()).insert(*i, r);
    };
    if threads <= 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    out.into_inner().unwrap_or_else(|e| e.into_inner())
}

async fn reconcile(cat: Arc<Catalog>, router: Arc<Router>, b: Arc<Bucket>) {
    cat.reconcile(&router, &b).await
}

/// Hashes, looks up and records a run of stores, renames and removals.
async fn record_run(cat: Arc<Catalog>, jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    // A store followed by another store of the same file (nothing but
    // stores in between) is superseded: only the later bytes count.
    let mut superseded = vec![false; jobs.len()];
    let mut later: HashSet<(&str, &str)> = HashSet::new();
    for (i, j) in jobs.iter().enumerate().rev() {
        match &j.work {
            Work::Stored { rel, .. } => {
                superseded[i] = !later.insert((j.bucket.def.name.as_str(), rel.as_str()));
            }
            _ => later.clear(),
        }
    }
    let to_hash: Vec<(usize, Arc<File>, crate::car::Profile)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| match &j.work {
            Work::Stored { file, .. } if !superseded[i] => Some((i, file.clone(), j.bucket.def.profile)),
            _ => None,
        })
        .collect();
    let hashed = tokio::task::spawn_blocking(move || hash_all(to_hash))
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "the hashing thread failed; run `bucket index`");
            HashMap::new()
        });
    let to_stat: Vec<(usize, Arc<dyn Tree>, String)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| match (&j.work, hashed.get(&i)) {
            (Work::Stored { tree, rel, .. }, Some(Ok(_))) => Some((i, tree.clone(), rel.clone())),
            _ => None,
        })
        .collect();
    let mut metas: HashMap<usize, crate::vfs::Meta> = HashMap::new();
    for chunk in to_stat.chunks(STATS) {
        let mut set = tokio::task::JoinSet::new();
        for (i, tree, rel) in chunk.iter().cloned() {
            set.spawn(async move { (i, tree.stat(&rel).await.ok()) });
        }
        while let Some(r) = set.join_next().await {
            if let Ok((i, Some(m))) = r {
                metas.insert(i, m);
            }
        }
    }
    // Consecutive jobs of one bucket go to its journal in one append.
    let mut ops: Vec<Op> = Vec::new();
    let mut current: Option<Arc<Bucket>> = None;
    for (i, j) in jobs.into_iter().enumerate() {
        if current.as_ref().is_some_and(|c| !Arc::ptr_eq(c, &j.bucket)) {
            append(&cat, current.take(), std::mem::take(&mut ops));
        }
        current = Some(j.bucket.clone());
        let op = match j.work {
            Work::Stored { rel, .. } => match hashed.get(&i) {
                None => continue,
                Some(Err(e)) => {
                    tracing::error!(bucket = %j.bucket.def.name, path = rel, error = %e, "could not hash a closed file; run `bucket index`");
                    continue;
                }
                Some(Ok(built)) => Op::Put(row_of(rel, built, metas.get(&i))),
            },
            Work::Op(op) => op,
            Work::Reconcile(_) => continue,
        };
        ops.push(op);
    }
    append(&cat, current, ops);
}

/// The row of `rel` hashed to `built`, with the backend's version `meta`.
fn row_of(rel: String, built: &Built, meta: Option<&crate::vfs::Meta>) -> Row {
    // Only a version that describes these bytes: a size mismatch means the
    // file changed again since (its next close records it).
    let meta = meta.filter(|m| m.size == built.size);
    Row {
        path: rel,
        cid: built.cid.to_string(),
        size: built.size,
        dag_size: built.dag_size,
        mtime_ms: meta.and_then(|m| m.mtime.map(millis)),
        etag: meta.and_then(|m| m.version.clone()),
        indexed_ms: now_ms(),
    }
}

fn append(cat: &Catalog, b: Option<Arc<Bucket>>, ops: Vec<Op>) {
    let Some(b) = b else { return };
    if let Err(e) = cat.record_all(&b, ops) {
        tracing::error!(bucket = %b.def.name, error = %e, "could not record changes in the bucket journal; run `bucket index`");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::car::{cid_of_bytes, Profile};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_changes_land_in_order_with_the_last_bytes_read_through_the_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let backing = dir.path().join("backing");
        std::fs::create_dir_all(&backing).unwrap();
        let config = crate::config::Config::parse(&format!(
            "[[mount]]\npath = \"/buckets/m\"\nscheme = \"fs\"\nbucket = \"m\"\n[mount.options]\nroot = \"{}\"\n",
            backing.display()
        ))
        .unwrap();
        let router = crate::daemon::build_router(&config).unwrap();
        let cat = super::super::open(&dir.path().join("home"), &config);
        let b = cat.get("m").unwrap();
        let tree = super::super::scan::tree_at(&router, "/buckets/m").unwrap();
        let stored = |file: &Arc<File>| Work::Stored {
            tree: tree.clone(),
            rel: "a".into(),
            file: file.clone(),
        };
        std::fs::write(backing.join("a"), b"one").unwrap();
        let fa = Arc::new(File::open(backing.join("a")).unwrap());
        cat.enqueue(&b, stored(&fa));
        // Rewritten in place (same inode), then renamed: the queue reads
        // the bytes through the descriptor, and the move comes after.
        std::fs::write(backing.join("a"), b"two!").unwrap();
        cat.enqueue(&b, stored(&fa));
        std::fs::rename(backing.join("a"), backing.join("b")).unwrap();
        cat.enqueue(
            &b,
            Work::Op(Op::Mv {
                from: "a".into(),
                to: "b".into(),
            }),
        );
        std::fs::write(backing.join("c"), b"see").unwrap();
        let fc = Arc::new(File::open(backing.join("c")).unwrap());
        cat.enqueue(
            &b,
            Work::Stored {
                tree: tree.clone(),
                rel: "c".into(),
                file: fc,
            },
        );
        cat.settled(&router).await;
        let rows = cat.files("m", "").unwrap();
        let got: Vec<(&str, String, u64)> = rows
            .iter()
            .map(|r| (r.path.as_str(), r.cid.clone(), r.size))
            .collect();
        let cid = |b: &[u8]| cid_of_bytes(Profile::UnixfsV1_2025, b).unwrap().to_string();
        assert_eq!(got, vec![("b", cid(b"two!"), 4), ("c", cid(b"see"), 3)]);
        // c was stat'ed after its bytes: its row carries the backend's mtime.
        assert!(rows[1].mtime_ms.is_some());
        let marker = dir.path().join("home/vfs").join(marker_key("m"));
        assert!(marker.exists());
        cat.checkpoint().unwrap();
        assert!(
            !marker.exists(),
            "a checkpoint with nothing queued removes the marker"
        );
    }

    #[test]
    fn a_large_batch_hashed_on_several_threads_gives_each_file_its_own_root() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        let mut want = HashMap::new();
        // 4 x 3 MiB: over POOL_BYTES, so the batch takes the threaded path.
        for i in 0..4usize {
            let body: Vec<u8> = (0..3 << 20).map(|k: usize| (k * (i + 3) % 251) as u8).collect();
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, &body).unwrap();
            want.insert(i * 10, cid_of_bytes(Profile::UnixfsV1_2025, &body).unwrap());
            let file = Arc::new(File::open(&path).unwrap());
            files.push((i * 10, file, Profile::UnixfsV1_2025));
        }
        let got = hash_all(files);
        assert_eq!(got.len(), 4);
        for (i, cid) in want {
            let b = got[&i].as_ref().unwrap();
            assert_eq!((b.cid, b.size), (cid, 3 << 20), "file {i}");
        }
    }

    #[test]
    fn a_marker_is_stale_when_a_process_it_names_is_gone_or_it_is_unreadable() {
        let me = my_line();
        assert!(me.split_whitespace().count() == 3, "{me}");
        assert!(!marker_is_stale(me.as_bytes()));
        // pid 1 with its own identity runs; with a bare pid (or another
        // boot's identity) it does not count as the writer.
        let init = format!("{}\n", identity(1).unwrap());
        assert!(!marker_is_stale(format!("{me}{init}").as_bytes()));
        assert!(marker_is_stale(b"1\n"));
        let other_boot = format!("{} 00000000-0000-0000-0000-000000000000 1\n", std::process::id());
        assert!(marker_is_stale(other_boot.as_bytes()));
        // A pid above the kernel's limit (2^22) never runs.
        assert!(marker_is_stale(format!("{me}4194305 x 1\n").as_bytes()));
        assert!(marker_is_stale(b""));
        assert!(marker_is_stale(b"not a pid\n"));
    }
}
