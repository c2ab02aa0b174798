//! Disk tier: block files under the cache directory, LRU-evicted within a byte
//! budget, kept across restarts. Blocking code only: callers run it on
//! `spawn_blocking` threads, never on a tokio worker.
//!
//! Layout under `dir`:
//! - `blocks-v2-<block_size>/<2 hex>/<64 hex object id>-<index>`: one block per
//!   file (the block size is in the name because block `i` means different
//!   bytes under a different block size);
//! - `tmp/`: files being written, renamed into place when complete;
//! - `trash-*`: directories being deleted by `clear`.
//!
//! Invariants:
//! - a block file is published by `rename` of a complete temp file, so a
//!   reader sees a whole file or none; it is written with `O_DIRECT` where
//!   the filesystem takes it, else through the page cache (`direct.rs`);
//! - every read checks the header (magic, object id, index, length) and an
//!   XXH3-128 checksum of the payload; a file failing any check is deleted and
//!   reported as a miss, never served. The checksum guards against torn and
//!   rotten files, not against an attacker who can write our cache directory
//!   (who could as well change the daemon); SHA-256 here cost a third of the
//!   daemon's CPU on a cold S3 stream, XXH3 runs at memory speed;
//! - the index (what files exist, their sizes and recency) is rebuilt at open
//!   from a directory scan ordered by mtime, and hits refresh the mtime, so LRU
//!   order survives a restart (mtime, not atime: `noatime` mounts are common);
//! - `used` never exceeds the budget after a write completes, and a write is
//!   refused when it would leave less than the free-space margin on the
//!   filesystem;
//! - no failure here panics: I/O errors become misses or skipped writes;
//! - one process owns a cache directory (the daemon). A second process using
//!   it would make the index stale (more misses, budget overshoot) but could
//!   still never serve wrong bytes, because every read is verified.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use xxhash_rust::xxh3::xxh3_128;

use super::config::FreeSpaceMargin;
use super::direct::{write_block_file, Written};
use super::key::{BlockKey, ObjectId, DIGEST_LEN};
use super::stats::{bump, Counters};
use super::CacheError;

/// File magic and format version; bump the version to change the header.
const MAGIC: &[u8; 8] = b"IKFBLK02";
/// Header: magic, object id, block index (u64 LE), payload length (u64 LE),
/// XXH3-128 of the payload (u128 LE).
pub(crate) const HEADER_LEN: usize = MAGIC.len() + DIGEST_LEN + 8 + 8 + 16;
/// Floor of the automatic free-space margin: room for the OS, logs and our own
/// write staging, even on small filesystems.
const AUTO_MARGIN_FLOOR: u64 = 1 << 30;
/// Automatic margin as a fraction of the filesystem (1/20 = 5%): filesystems
/// slow down and fragment when nearly full, and other programs share the disk.
const AUTO_MARGIN_DIVISOR: u64 = 20;
/// Layout version in directory names; bump with `MAGIC` on format changes.
const LAYOUT: &str = "blocks-v2-";
/// Prefix of every layout's directory, so older layouts are removed at open.
const LAYOUT_FAMILY: &str = "blocks-v";

/// Recency bookkeeping of one block file.
#[derive(Debug, Clone, Copy)]
struct Entry {
    stamp: u64,
    size: u64,
}

/// In-memory index of the block files.
#[derive(Debug, Default)]
struct Index {
    entries: HashMap<BlockKey, Entry>,
    /// Stamp -> key, oldest first.
    lru: BTreeMap<u64, BlockKey>,
    /// Bytes of published files plus reservations of writes in progress.
    used: u64,
    /// Next recency stamp.
    clock: u64,
}

impl Index {
    fn touch(&mut self, key: &BlockKey) {
        let stamp = self.clock;
        if let Some(e) = self.entries.get_mut(key) {
            self.lru.remove(&e.stamp);
            e.stamp = stamp;
            self.lru.insert(stamp, *key);
            self.clock += 1;
        }
    }

    fn insert(&mut self, key: BlockKey, size: u64) {
        let stamp = self.clock;
        self.clock += 1;
        if let Some(old) = self.entries.insert(key, Entry { stamp, size }) {
            self.lru.remove(&old.stamp);
            self.used = self.used.saturating_sub(old.size);
        }
        self.lru.insert(stamp, key);
        self.used += size;
    }

    fn remove(&mut self, key: &BlockKey) -> bool {
        match self.entries.remove(key) {
            Some(e) => {
                self.lru.remove(&e.stamp);
                self.used = self.used.saturating_sub(e.size);
                true
            }
            None => false,
        }
    }

    /// Remove least-recently-used entries until `extra` more bytes fit in `budget`.
    fn evict_for(&mut self, extra: u64, budget: u64) -> Vec<BlockKey> {
        let mut victims = Vec::new();
        while self.used + extra > budget {
            let Some((_, key)) = self.lru.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&key) {
                self.used = self.used.saturating_sub(e.size);
            }
            victims.push(key);
        }
        victims
    }
}

/// The disk tier.
pub(crate) struct DiskTier {
    dir: PathBuf,
    blocks: PathBuf,
    tmp: PathBuf,
    budget: u64,
    block_size: u64,
    margin: FreeSpaceMargin,
    index: Mutex<Index>,
    counters: Arc<Counters>,
    tmp_seq: AtomicU64,
    /// Write block files with `O_DIRECT` (`direct.rs`); false once the
    /// filesystem refused it.
    direct: AtomicBool,
}

impl DiskTier {
    /// Open (creating) the tier under `dir` and re-index the files there.
    /// Blocking: scans the directory.
    pub fn open(
        dir: &Path,
        budget: u64,
        block_size: u64,
        margin: FreeSpaceMargin,
        counters: Arc<Counters>,
    ) -> Result<Self, CacheError> {
        let io = |what: &str, path: &Path, e: std::io::Error| CacheError::Io {
            what: format!("{what} {}", path.display()),
            source: e,
        };
        fs::create_dir_all(dir).map_err(|e| io("create cache dir", dir, e))?;
        let blocks = dir.join(format!("{LAYOUT}{block_size}"));
        let tmp = dir.join("tmp");
        // Leftovers from a crash or an older layout: unfinished writes, trash,
        // and blocks of another block size (they would count against the
        // budget but can never be served).
        remove_dir_quietly(&tmp);
        if let Ok(rd) = fs::read_dir(dir) {
            for entry in rd.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let path = entry.path();
                if name.starts_with("trash-") || (name.starts_with(LAYOUT_FAMILY) && path != blocks) {
                    remove_dir_quietly(&path);
                }
            }
        }
        fs::create_dir_all(&blocks).map_err(|e| io("create", &blocks, e))?;
        fs::create_dir_all(&tmp).map_err(|e| io("create", &tmp, e))?;
        let tier = Self {
            dir: dir.to_path_buf(),
            blocks,
            tmp,
            budget,
            block_size,
            margin,
            index: Mutex::new(Index::default()),
            counters,
            tmp_seq: AtomicU64::new(0),
            direct: AtomicBool::new(true),
        };
        tier.reindex();
        Ok(tier)
    }

    /// Rebuild the index from the files on disk, oldest mtime first, then
    /// evict down to the budget (it may have shrunk since the last run).
    fn reindex(&self) {
        let mut found: Vec<(SystemTime, BlockKey, u64)> = Vec::new();
        let max_len = (HEADER_LEN as u64) + self.block_size;
        for shard in fs::read_dir(&self.blocks).into_iter().flatten().flatten() {
            let shard_path = shard.path();
            if !shard_path.is_dir() {
                remove_file_quietly(&shard_path);
                continue;
            }
            for file in fs::read_dir(&shard_path).into_iter().flatten().flatten() {
                let path = file.path();
                let meta = match file.metadata() {
                    Ok(m) if m.is_file() => m,
                    _ => continue,
                };
                let key = file.file_name().to_str().and_then(parse_file_name);
                match key {
                    Some(key) if meta.len() >= HEADER_LEN as u64 && meta.len() <= max_len => {
                        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
                        found.push((mtime, key, meta.len()));
                    }
                    _ => {
                        // Not ours or impossible size: it can never be served.
                        remove_file_quietly(&path);
                    }
                }
            }
        }
        found.sort_by_key(|(mtime, _, _)| *mtime);
        let victims = {
            let mut index = self.lock();
            for (_, key, size) in found {
                index.insert(key, size);
            }
            index.evict_for(0, self.budget)
        };
        self.delete_victims(&victims);
        self.publish_used();
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        // A panic elsewhere while holding the lock leaves a consistent enough
        // index (every mutation is a few field updates); never propagate it.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish_used(&self) {
        let used = self.lock().used;
        self.counters.disk_used_bytes.store(used, Ordering::Relaxed);
    }

    fn path_of(&self, key: &BlockKey) -> PathBuf {
        let hex = key.object.to_hex();
        self.blocks.join(&hex[..2]).join(format!("{hex}-{}", key.index))
    }

    /// Whether the index lists this block.
    pub fn contains(&self, key: &BlockKey) -> bool {
        self.lock().entries.contains_key(key)
    }

    /// The block's bytes if a verified file holds them.
    pub fn read(&self, key: &BlockKey) -> Option<Bytes> {
        if !self.contains(key) {
            bump(&self.counters.disk_misses, 1);
            return None;
        }
        let path = self.path_of(key);
        match read_verified(&path, key, self.block_size) {
            Ok(Some(bytes)) => {
                self.lock().touch(key);
                // Recency for the next start; best effort.
                if let Ok(f) = File::open(&path) {
                    let _ = f.set_modified(SystemTime::now());
                }
                bump(&self.counters.disk_hits, 1);
                Some(bytes)
            }
            Ok(None) => {
                tracing::warn!(path = %path.display(), "cache: corrupt block file, deleting");
                bump(&self.counters.disk_corrupt, 1);
                bump(&self.counters.disk_misses, 1);
                self.forget(key, &path);
                None
            }
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cache: unreadable block file");
                }
                bump(&self.counters.disk_misses, 1);
                self.forget(key, &path);
                None
            }
        }
    }

    fn forget(&self, key: &BlockKey, path: &Path) {
        self.lock().remove(key);
        remove_file_quietly(path);
        self.publish_used();
    }

    /// Store a block. Skips (counted in stats) when it is already stored, does
    /// not fit the budget, or would eat into the free-space margin.
    pub fn write(&self, key: &BlockKey, data: &[u8]) {
        let size = (HEADER_LEN + data.len()) as u64;
        if data.len() as u64 > self.block_size || size > self.budget {
            bump(&self.counters.disk_writes_dropped, 1);
            return;
        }
        if self.contains(key) {
            return;
        }
        if !self.has_free_space(size) {
            bump(&self.counters.disk_writes_refused, 1);
            return;
        }
        // Reserve the bytes (evicting as needed) before writing, so parallel
        // writers cannot overshoot the budget together.
        let victims = {
            let mut index = self.lock();
            let victims = index.evict_for(size, self.budget);
            index.used += size;
            victims
        };
        self.delete_victims(&victims);
        let path = self.path_of(key);
        let result = self.write_file(&path, key, data);
        {
            let mut index = self.lock();
            index.used = index.used.saturating_sub(size);
            if result.is_ok() {
                index.insert(*key, size);
            }
        }
        match result {
            Ok(()) => bump(&self.counters.disk_writes, 1),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cache: block write failed");
                bump(&self.counters.disk_writes_dropped, 1);
            }
        }
        self.publish_used();
    }

    fn write_file(&self, path: &Path, key: &BlockKey, data: &[u8]) -> std::io::Result<()> {
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self.tmp.join(format!("{}-{seq}.tmp", std::process::id()));
        let result = (|| {
            let direct = self.direct.load(Ordering::Relaxed);
            // No fsync: a file torn by a power cut fails verification and is a
            // miss, which is all a cache needs; fsync per block would halve
            // write throughput.
            let how = write_block_file(&tmp, &header(key, data), data, direct)?;
            if direct && matches!(how, Written::Buffered) && self.direct.swap(false, Ordering::Relaxed) {
                tracing::info!(dir = %self.dir.display(), "cache: the filesystem refuses O_DIRECT; block files go through the page cache");
            }
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            remove_file_quietly(&tmp);
        }
        result
    }

    fn delete_victims(&self, victims: &[BlockKey]) {
        for key in victims {
            remove_file_quietly(&self.path_of(key));
        }
        bump(&self.counters.disk_evictions, victims.len() as u64);
    }

    /// Whether writing `size` more bytes leaves the free-space margin intact.
    fn has_free_space(&self, size: u64) -> bool {
        match nix::sys::statvfs::statvfs(&self.blocks) {
            Ok(st) => {
                let frsize = st.fragment_size();
                let avail = st.blocks_available().saturating_mul(frsize);
                let total = st.blocks().saturating_mul(frsize);
                let margin = match self.margin {
                    FreeSpaceMargin::Auto => AUTO_MARGIN_FLOOR.max(total / AUTO_MARGIN_DIVISOR),
                    FreeSpaceMargin::Bytes(b) => b,
                };
                avail >= margin.saturating_add(size)
            }
            Err(e) => {
                // Unknown free space: refusing is the safe side.
                tracing::warn!(error = %e, "cache: statvfs failed; not writing");
                false
            }
        }
    }

    /// Forget every block and delete the files (deletion runs on a thread of
    /// its own; only a rename happens on the caller's thread).
    pub fn clear(&self) {
        let removed = {
            let mut index = self.lock();
            let n = index.entries.len() as u64;
            let stored: u64 = index.entries.values().map(|e| e.size).sum();
            let reserved = index.used.saturating_sub(stored);
            *index = Index {
                used: reserved,
                clock: index.clock,
                ..Index::default()
            };
            n
        };
        bump(&self.counters.disk_evictions, removed);
        self.publish_used();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let trash = self.dir.join(format!("trash-{}-{nanos}", std::process::id()));
        if fs::rename(&self.blocks, &trash).is_ok() {
            let _ = fs::create_dir_all(&self.blocks);
            let spawned = std::thread::Builder::new()
                .name("cache-trash".into())
                .spawn(move || remove_dir_quietly(&trash));
            if spawned.is_err() {
                tracing::warn!("cache: could not start trash thread; removed at next open");
            }
        }
    }
}

/// Header bytes for `data` stored as `key`.
fn header(key: &BlockKey, data: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    let mut at = 0;
    for part in [
        &MAGIC[..],
        &key.object.digest()[..],
        &key.index.to_le_bytes()[..],
        &(data.len() as u64).to_le_bytes()[..],
        &xxh3_128(data).to_le_bytes()[..],
    ] {
        h[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    h
}

/// Read a block file; `Ok(None)` when it is torn, corrupt or someone else's.
fn read_verified(path: &Path, key: &BlockKey, block_size: u64) -> std::io::Result<Option<Bytes>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    if len < HEADER_LEN as u64 || len > HEADER_LEN as u64 + block_size {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.read_to_end(&mut buf)?;
    if buf.len() as u64 != len {
        return Ok(None);
    }
    let payload = &buf[HEADER_LEN..];
    if buf[..HEADER_LEN] != header(key, payload) {
        return Ok(None);
    }
    Ok(Some(Bytes::from(buf).slice(HEADER_LEN..)))
}

/// `<64 hex>-<index>` back to a key.
fn parse_file_name(name: &str) -> Option<BlockKey> {
    let (hex, index) = name.split_once('-')?;
    let mut digest = [0u8; DIGEST_LEN];
    hex::decode_to_slice(hex, &mut digest).ok()?;
    Some(BlockKey {
        object: ObjectId::from_digest(digest),
        index: index.parse().ok()?,
    })
}

fn remove_file_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cache: could not delete");
        }
    }
}

fn remove_dir_quietly(path: &Path) {
    if let Err(e) = fs::remove_dir_all(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cache: could not delete");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: u64 = 4096;

    fn key(i: u64) -> BlockKey {
        BlockKey {
            object: ObjectId::from_cid("bafydisk"),
            index: i,
        }
    }

    fn open(dir: &Path, budget: u64) -> (DiskTier, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let tier = DiskTier::open(dir, budget, BS, FreeSpaceMargin::Bytes(0), counters.clone()).unwrap();
        (tier, counters)
    }

    #[test]
    fn block_round_trips_when_written_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let (tier, _) = open(dir.path(), 1 << 20);
        tier.write(&key(1), b"hello");
        assert_eq!(tier.read(&key(1)).unwrap(), Bytes::from_static(b"hello"));
        assert!(tier.read(&key(2)).is_none());
    }

    #[test]
    fn file_name_parses_back_when_generated_by_path_of() {
        let dir = tempfile::tempdir().unwrap();
        let (tier, _) = open(dir.path(), 1 << 20);
        let p = tier.path_of(&key(77));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_file_name(name), Some(key(77)));
        assert_eq!(parse_file_name("zz-1"), None);
        assert_eq!(parse_file_name(&format!("{}-x", key(0).object.to_hex())), None);
    }

    #[test]
    fn renamed_file_is_a_miss_when_it_holds_another_blocks_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (tier, counters) = open(dir.path(), 1 << 20);
        tier.write(&key(1), b"one");
        tier.write(&key(2), b"two");
        fs::copy(tier.path_of(&key(1)), tier.path_of(&key(2))).unwrap();
        assert!(tier.read(&key(2)).is_none());
        assert_eq!(counters.disk_corrupt.load(Ordering::Relaxed), 1);
        assert!(!tier.path_of(&key(2)).exists());
    }

    #[test]
    fn leftover_temp_and_foreign_files_are_removed_when_opening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (tier, _) = open(dir.path(), 1 << 20);
            tier.write(&key(1), b"x");
            fs::write(tier.tmp.join("123-0.tmp"), b"partial").unwrap();
            fs::write(tier.blocks.join("ab").join("junk"), b"j").unwrap_or(());
        }
        fs::create_dir_all(dir.path().join("blocks-v1-8192/aa")).unwrap();
        let (tier, _) = open(dir.path(), 1 << 20);
        assert_eq!(fs::read_dir(&tier.tmp).unwrap().count(), 0);
        assert!(!dir.path().join("blocks-v1-8192").exists());
        assert!(tier.read(&key(1)).is_some());
    }

    #[test]
    fn clear_empties_index_and_files_when_called() {
        let dir = tempfile::tempdir().unwrap();
        let (tier, counters) = open(dir.path(), 1 << 20);
        tier.write(&key(1), b"x");
        tier.clear();
        assert!(tier.read(&key(1)).is_none());
        assert_eq!(counters.disk_used_bytes.load(Ordering::Relaxed), 0);
        tier.write(&key(1), b"y");
        assert_eq!(tier.read(&key(1)).unwrap(), Bytes::from_static(b"y"));
    }

    #[test]
    fn oversized_block_is_not_written_when_larger_than_block_size() {
        let dir = tempfile::tempdir().unwrap();
        let (tier, counters) = open(dir.path(), 1 << 20);
        tier.write(&key(1), &vec![0u8; BS as usize + 1]);
        assert!(!tier.contains(&key(1)));
        assert_eq!(counters.disk_writes_dropped.load(Ordering::Relaxed), 1);
    }
}
