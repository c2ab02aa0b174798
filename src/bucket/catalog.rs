//! The buckets of one data home: each bucket's rows in memory (loaded from
//! its index and journal), the journal appends that record changes, and
//! compaction of the journal into the index.
//!
//! Invariants: every change is appended to the journal before it is applied
//! in memory; compaction writes the index (conditionally: only if it is the
//! file this process read or wrote last) and then removes the journal, both
//! under the bucket's lock, so no entry appended in between is lost; an
//! index or journal that cannot be read is moved aside (its new name says
//! why) and the bucket keeps working from what could be read, with the error
//! shown by `bucket list` and `status` until `bucket index` rebuilds it.

use super::dag;
use super::error::{BucketError, Result};
use super::index::{self, IndexInfo};
use super::journal::{self, Entry, Op};
use super::recorder::{marker_is_stale, marker_key, Recorder};
use super::row::Row;
use super::store::{Expect, Store, Version};
use crate::car::{Built, Profile};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// Journal entries after which a change compacts the journal into the index
/// at once (besides the periodic and unmount compactions): bounds replay
/// time and journal size for buckets that change without pause.
pub const COMPACT_AFTER: u64 = 50_000;
/// Test hook: with this environment variable set to 1, a compaction aborts
/// the process right after the new index is written and before the journal
/// is removed (the crash window a test must survive).
const ABORT_AFTER_INDEX_WRITE: &str = "IPFS_KIT_TEST_ABORT_AFTER_INDEX_WRITE";

/// What defines a bucket: its name, where it is mounted and its CID profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketDef {
    pub name: String,
    /// The bucket's mount path under the FUSE mount, e.g. `/buckets/media`.
    pub mount: String,
    pub profile: Profile,
}

/// One bucket and its rows.
pub struct Bucket {
    pub def: BucketDef,
    st: Mutex<State>,
}

/// The mutable part of a bucket, behind its lock.
#[derive(Default)]
pub struct State {
    pub rows: BTreeMap<String, Row>,
    /// Last journal sequence number applied.
    pub seq: u64,
    /// Last sequence number the index file includes.
    pub index_seq: u64,
    index_version: Option<Version>,
    /// Entries in the journal (not yet in the index).
    pub pending: u64,
    /// Why the bucket's files could not all be read, if so.
    pub error: Option<String>,
    /// The index was hashed with another profile: the next `bucket index`
    /// re-hashes every file.
    pub stale_profile: bool,
    /// Whether the bucket must be re-indexed because an earlier process
    /// stopped with records queued (see `recorder.rs`).
    pub recovery: Recovery,
    root: Option<Built>,
    /// Every directory's root by path (`""`: the bucket root), computed with
    /// `root` from the rows alone and dropped with it at the next change.
    dirs: Option<Arc<HashMap<String, Built>>>,
    by_cid: Option<HashMap<String, Vec<String>>>,
}

/// Recovery of records an earlier process queued and never wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing to recover.
    #[default]
    Idle,
    /// A marker of a process that is gone was found: re-index the bucket.
    Needed,
    /// The re-indexing is queued or running.
    Queued,
}

impl State {
    /// Rows sorted by path.
    pub fn sorted(&self) -> Vec<&Row> {
        self.rows.values().collect()
    }
}

/// Checks a bucket name: it becomes a file name and a directory name.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BucketError::BadName(name.to_string()))
    }
}

/// Store key of a bucket's index.
pub fn index_key(name: &str) -> String {
    format!("buckets/{name}_vfs.parquet")
}

/// Store key of a bucket's journal.
pub fn journal_key(name: &str) -> String {
    format!("buckets/{name}_vfs.journal")
}

/// Every bucket of a data home.
pub struct Catalog {
    pub(super) store: Arc<dyn Store>,
    buckets: RwLock<BTreeMap<String, Arc<Bucket>>>,
    /// The queue from closes to journals (`recorder.rs`).
    pub(super) recorder: Recorder,
}

impl Bucket {
    /// Locks the bucket's state.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Catalog {
    /// Opens the buckets in `defs`, loading each one's index and journal.
    pub fn open(store: Arc<dyn Store>, defs: Vec<BucketDef>) -> Arc<Catalog> {
        let cat = Arc::new(Catalog {
            store,
            buckets: RwLock::new(BTreeMap::new()),
            recorder: Recorder::default(),
        });
        for d in defs {
            cat.add(d);
        }
        cat
    }

    /// Adds (and loads) a bucket; a bucket of the same name is replaced.
    pub fn add(&self, def: BucketDef) -> Arc<Bucket> {
        let st = self.load(&def);
        if let Some(e) = &st.error {
            tracing::error!(bucket = %def.name, error = %e, "bucket loaded with an error");
        }
        let b = Arc::new(Bucket {
            def: def.clone(),
            st: Mutex::new(st),
        });
        self.buckets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(def.name.clone(), b.clone());
        b
    }

    /// Forgets a bucket (its files stay on disk).
    pub fn remove(&self, name: &str) -> Option<Arc<Bucket>> {
        self.buckets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
    }

    /// The bucket called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Bucket>> {
        self.buckets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| BucketError::NoSuchBucket(name.to_string()))
    }

    /// Every bucket, by name.
    pub fn all(&self) -> Vec<Arc<Bucket>> {
        self.buckets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The bucket mounted at the mount path `mount`.
    pub fn at_mount(&self, mount: &str) -> Option<Arc<Bucket>> {
        self.all().into_iter().find(|b| b.def.mount == mount)
    }

    fn load(&self, def: &BucketDef) -> State {
        let mut st = State::default();
        let mut errors = Vec::new();
        let ikey = index_key(&def.name);
        match self.store.read(&ikey) {
            Ok(None) => {}
            Ok(Some((bytes, version))) => {
                let path = self.store.local_path(&ikey).unwrap_or_default();
                match index::decode_with_profile(bytes.into(), &path) {
                    Ok((rows, seq, profile)) => {
                        if let Some(p) = profile.filter(|p| p != def.profile.name()) {
                            st.stale_profile = true;
                            errors.push(format!(
                                "the index holds CIDs of profile {p}, the bucket's profile is {}",
                                def.profile
                            ));
                        }
                        st.rows = rows.into_iter().map(|r| (r.path.clone(), r)).collect();
                        st.seq = seq;
                        st.index_seq = seq;
                        st.index_version = Some(version);
                    }
                    Err(e) => errors.push(self.aside(&ikey, "corrupt", &e)),
                }
            }
            Err(e) => errors.push(format!("{e}")),
        }
        let jkey = journal_key(&def.name);
        match self.store.read(&jkey) {
            Ok(None) => {}
            Ok(Some((bytes, _))) => {
                let path = self.store.local_path(&jkey).unwrap_or_default();
                match journal::decode(&bytes, &path) {
                    Ok(entries) => {
                        for e in entries.into_iter().filter(|e| e.seq > st.index_seq) {
                            journal::apply(&mut st.rows, &e.op);
                            st.seq = st.seq.max(e.seq);
                            st.pending += 1;
                        }
                    }
                    Err(e) => errors.push(self.aside(&jkey, "corrupt", &e)),
                }
            }
            Err(e) => errors.push(format!("{e}")),
        }
        match self.store.read(&marker_key(&def.name)) {
            Ok(Some((text, _))) if marker_is_stale(&text) => st.recovery = Recovery::Needed,
            Ok(_) => {}
            // Unreadable: assume the worst.
            Err(_) => st.recovery = Recovery::Needed,
        }
        if !errors.is_empty() {
            st.error = Some(format!(
                "{}; run `ipfs-kit-fuse bucket index {}` to rebuild the index from the backend",
                errors.join("; "),
                def.name
            ));
        }
        st
    }

    /// Moves a bad file aside; the message for the bucket's error.
    fn aside(&self, key: &str, why: &str, err: &BucketError) -> String {
        match self.store.move_aside(key, why) {
            Ok(new) => format!("{err} (moved to {new})"),
            Err(e) => format!("{err} (and it could not be moved aside: {e})"),
        }
    }

    /// Records one change: journal first, then memory.
    pub fn record(&self, b: &Bucket, op: Op) -> Result<()> {
        self.record_all(b, vec![op])
    }

    /// Records changes in order with one journal append, then in memory.
    pub fn record_all(&self, b: &Bucket, ops: Vec<Op>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut st = b.lock();
        let entries: Vec<Entry> = ops
            .into_iter()
            .zip(st.seq + 1..)
            .map(|(op, seq)| Entry { seq, op })
            .collect();
        let lines: Vec<u8> = entries.iter().flat_map(journal::encode).collect();
        self.store.append(&journal_key(&b.def.name), &lines)?;
        for e in &entries {
            journal::apply(&mut st.rows, &e.op);
        }
        st.seq += entries.len() as u64;
        st.pending += entries.len() as u64;
        st.root = None;
        st.dirs = None;
        st.by_cid = None;
        if st.pending >= COMPACT_AFTER {
            self.compact_locked(b, &mut st)?;
        }
        Ok(())
    }

    /// Folds the journal into the index; false when there was nothing to fold.
    pub fn compact(&self, b: &Bucket) -> Result<bool> {
        let mut st = b.lock();
        if st.pending == 0 {
            return Ok(false);
        }
        self.compact_locked(b, &mut st)?;
        Ok(true)
    }

    fn compact_locked(&self, b: &Bucket, st: &mut State) -> Result<()> {
        let started = std::time::Instant::now();
        let info = IndexInfo {
            bucket: b.def.name.clone(),
            mount_point: b.def.mount.clone(),
            profile: b.def.profile,
            seq: st.seq,
        };
        let rows: Vec<Row> = st.rows.values().cloned().collect();
        let bytes = index::encode(&rows, &info)?;
        let expect = match &st.index_version {
            Some(v) => Expect::At(v.clone()),
            None => Expect::Any,
        };
        let version = self.store.write(&index_key(&b.def.name), &bytes, expect)?;
        st.index_version = Some(version);
        st.index_seq = st.seq;
        if std::env::var_os(ABORT_AFTER_INDEX_WRITE).is_some_and(|v| v == "1") {
            tracing::error!(bucket = %b.def.name, "{ABORT_AFTER_INDEX_WRITE}=1: aborting between the index write and the journal removal");
            std::process::abort();
        }
        // A crash here leaves journal entries the index already holds; the
        // next load skips them by sequence number (`seq <= index_seq`).
        self.store.remove(&journal_key(&b.def.name))?;
        st.pending = 0;
        tracing::info!(
            bucket = %b.def.name,
            rows = rows.len(),
            bytes = bytes.len(),
            ms = started.elapsed().as_millis() as u64,
            "compacted the journal into the index"
        );
        Ok(())
    }

    /// Compacts every bucket with journal entries; logs failures.
    pub fn compact_all(&self) {
        for b in self.all() {
            if let Err(e) = self.compact(&b) {
                tracing::error!(bucket = %b.def.name, error = %e, "compaction failed; the journal is kept");
            }
        }
    }

    /// Makes journal appends durable (fsync) for every bucket.
    pub fn sync_journals(&self) {
        for b in self.all() {
            if let Err(e) = self.store.sync(&journal_key(&b.def.name)) {
                tracing::warn!(bucket = %b.def.name, error = %e, "journal fsync failed");
            }
        }
    }

    /// The bucket's root directory (from its rows alone; cached until a change).
    pub fn root(&self, b: &Bucket) -> Result<Built> {
        let mut st = b.lock();
        Self::root_locked(b, &mut st)
    }

    pub(super) fn root_locked(b: &Bucket, st: &mut State) -> Result<Built> {
        if let Some(r) = st.root {
            return Ok(r);
        }
        let dirs = dag::dirs(&st.sorted(), b.def.profile).map_err(|e| BucketError::Failed {
            bucket: b.def.name.clone(),
            message: format!("root CID: {e}"),
        })?;
        // dag::dirs always names the root.
        let built = dirs[""];
        st.root = Some(built);
        st.dirs = Some(Arc::new(dirs));
        Ok(built)
    }

    /// The directory `rel` of the bucket (`""`: its root) as the index
    /// describes it; None when no indexed file lies under it.
    pub fn dir(&self, b: &Bucket, rel: &str) -> Option<Built> {
        let mut st = b.lock();
        if st.dirs.is_none() {
            if let Err(e) = Self::root_locked(b, &mut st) {
                tracing::warn!(bucket = %b.def.name, error = %e, "no directory CIDs");
                return None;
            }
        }
        st.dirs.as_ref()?.get(rel).copied()
    }

    /// Rows whose path starts with `prefix` (all with `""`), sorted by path.
    pub fn files(&self, name: &str, prefix: &str) -> Result<Vec<Row>> {
        let b = self.get(name)?;
        let st = b.lock();
        Ok(st
            .rows
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, r)| r.clone())
            .collect())
    }

    /// (bucket, row) of every file with this CID, in every bucket.
    pub fn find_cid(&self, cid: &str) -> Vec<(String, Row)> {
        let mut out = Vec::new();
        for b in self.all() {
            let mut st = b.lock();
            if st.by_cid.is_none() {
                let mut m: HashMap<String, Vec<String>> = HashMap::new();
                for r in st.rows.values() {
                    m.entry(r.cid.clone()).or_default().push(r.path.clone());
                }
                st.by_cid = Some(m);
            }
            let paths = st
                .by_cid
                .as_ref()
                .and_then(|m| m.get(cid))
                .cloned()
                .unwrap_or_default();
            for p in paths {
                if let Some(r) = st.rows.get(&p) {
                    out.push((b.def.name.clone(), r.clone()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::store::LocalStore;

    fn def() -> BucketDef {
        BucketDef {
            name: "media".into(),
            mount: "/buckets/media".into(),
            profile: Profile::UnixfsV1_2025,
        }
    }

    fn row(p: &str) -> Row {
        Row {
            path: p.into(),
            cid: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku".into(),
            size: 0,
            dag_size: 0,
            mtime_ms: None,
            etag: None,
            indexed_ms: 1,
        }
    }

    #[test]
    fn rows_survive_reopen_from_journal_and_from_compacted_index() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::new(dir.path()));
        let cat = Catalog::open(store.clone(), vec![def()]);
        let b = cat.get("media").unwrap();
        cat.record(&b, Op::Put(row("a"))).unwrap();
        cat.record(&b, Op::Put(row("d/b"))).unwrap();
        let cat2 = Catalog::open(store.clone(), vec![def()]);
        assert_eq!(cat2.files("media", "").unwrap().len(), 2);
        assert!(cat.compact(&b).unwrap());
        assert!(!dir.path().join("buckets/media_vfs.journal").exists());
        cat.record(
            &b,
            Op::Mv {
                from: "d".into(),
                to: "e".into(),
            },
        )
        .unwrap();
        let cat3 = Catalog::open(store, vec![def()]);
        let paths: Vec<String> = cat3
            .files("media", "")
            .unwrap()
            .into_iter()
            .map(|r| r.path)
            .collect();
        assert_eq!(paths, vec!["a", "e/b"]);
        assert_eq!(cat3.find_cid(&row("x").cid).len(), 2);
        assert!(cat3.get("media").unwrap().lock().error.is_none());
    }

    #[test]
    fn changes_recorded_together_get_consecutive_numbers_and_one_append() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::new(dir.path()));
        let cat = Catalog::open(store.clone(), vec![def()]);
        let b = cat.get("media").unwrap();
        cat.record(&b, Op::Put(row("a"))).unwrap();
        cat.record_all(
            &b,
            vec![
                Op::Put(row("b")),
                Op::Mv {
                    from: "a".into(),
                    to: "c".into(),
                },
                Op::Del("b".into()),
            ],
        )
        .unwrap();
        let text = std::fs::read(dir.path().join("buckets/media_vfs.journal")).unwrap();
        let seqs: Vec<u64> = journal::decode(&text, std::path::Path::new("j"))
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        let st = b.lock();
        assert_eq!((st.seq, st.pending), (4, 4));
        assert_eq!(st.rows.keys().collect::<Vec<_>>(), vec!["c"]);
        drop(st);
        let again = Catalog::open(store, vec![def()]);
        assert_eq!(again.files("media", "").unwrap()[0].path, "c");
    }

    #[test]
    fn an_index_of_another_profile_is_named_in_the_error_and_marked_stale() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::new(dir.path()));
        let cat = Catalog::open(store.clone(), vec![def()]);
        let b = cat.get("media").unwrap();
        cat.record(&b, Op::Put(row("a"))).unwrap();
        assert!(cat.compact(&b).unwrap());
        let v0 = BucketDef {
            profile: Profile::UnixfsV0_2015,
            ..def()
        };
        let cat2 = Catalog::open(store.clone(), vec![v0]);
        let st = cat2.get("media").unwrap();
        let st = st.lock();
        assert!(st.stale_profile);
        let err = st.error.clone().unwrap();
        assert!(
            err.contains("unixfs-v1-2025") && err.contains("unixfs-v0-2015") && err.contains("bucket index"),
            "{err}"
        );
        // The rows stay (listed until re-hashed), and the same profile is fine.
        assert_eq!(st.rows.len(), 1);
        let cat3 = Catalog::open(store, vec![def()]);
        assert!(!cat3.get("media").unwrap().lock().stale_profile);
    }

    #[test]
    fn corrupt_index_is_moved_aside_and_named_in_the_bucket_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("buckets")).unwrap();
        std::fs::write(dir.path().join("buckets/media_vfs.parquet"), b"PAR1garbage").unwrap();
        let cat = Catalog::open(Arc::new(LocalStore::new(dir.path())), vec![def()]);
        let err = cat.get("media").unwrap().lock().error.clone().unwrap();
        assert!(
            err.contains("corrupt") && err.contains("moved to buckets/media_vfs.parquet.corrupt-"),
            "{err}"
        );
        let kept: Vec<_> = std::fs::read_dir(dir.path().join("buckets")).unwrap().collect();
        assert_eq!(kept.len(), 1, "the bad file is kept, nothing written over it");
    }
}
