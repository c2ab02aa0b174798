//! Integration tests of the block cache through its public API: single flight,
//! both tiers' budgets, restart survival, staleness and corruption handling.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ipfs_kit_fuse::cache::{BlockCache, CacheConfig, CacheError, FreeSpaceMargin, ObjectId, Version};

const BS: u64 = 64 * 1024;

#[derive(Debug)]
enum TestError {
    Cache(CacheError),
    Backend(&'static str),
}

impl From<CacheError> for TestError {
    fn from(e: CacheError) -> Self {
        Self::Cache(e)
    }
}

/// Config with small blocks, no memory tier unless asked, and no free-space margin.
fn config(dir: &Path, memory: u64, disk: u64) -> CacheConfig {
    CacheConfig {
        memory_bytes: memory,
        disk_bytes: disk,
        block_size: BS,
        dir: dir.to_path_buf(),
        free_space_margin: FreeSpaceMargin::Bytes(0),
    }
}

fn block(seed: u64, len: u64) -> Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(31).wrapping_add(seed) % 251) as u8)
        .collect::<Vec<_>>()
        .into()
}

fn obj(name: &str, etag: &str) -> ObjectId {
    ObjectId::versioned("s3", name, Version::ETag(etag))
}

/// get_block with a fetch that counts calls and returns `block(seed)`.
async fn get(cache: &BlockCache, id: &ObjectId, index: u64, seed: u64, calls: &AtomicU64) -> Bytes {
    cache
        .get_block(id, index, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TestError>(block(seed, BS))
        })
        .await
        .unwrap()
}

/// Every block file under the disk tier.
fn block_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("tmp") {
                    stack.push(p);
                }
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn file_of(dir: &Path, id: &ObjectId, index: u64) -> PathBuf {
    let suffix = format!("{}-{index}", id.to_hex());
    block_files(dir)
        .into_iter()
        .find(|p| p.file_name().unwrap().to_str().unwrap() == suffix)
        .expect("block file exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fetch_runs_once_when_hundred_callers_miss_the_same_block() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlockCache::open(&config(dir.path(), 16 * BS, 64 * BS)).unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let id = obj("big.bin", "v1");
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let cache = cache.clone();
        let calls = calls.clone();
        tasks.push(tokio::spawn(async move {
            cache
                .get_block(&id, 3, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, TestError>(block(3, BS))
                })
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), block(3, BS));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let s = cache.stats();
    assert_eq!(s.backend_fetches, 1);
    assert_eq!(s.backend_bytes, BS);
    assert_eq!(s.memory_hits + s.memory_misses, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_hands_over_when_the_loader_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlockCache::open(&config(dir.path(), 16 * BS, 0)).unwrap();
    let id = obj("flaky", "v1");
    let err = cache
        .get_block(&id, 0, || async { Err::<Bytes, _>(TestError::Backend("boom")) })
        .await
        .unwrap_err();
    assert!(matches!(err, TestError::Backend("boom")));
    let calls = AtomicU64::new(0);
    assert_eq!(get(&cache, &id, 0, 9, &calls).await, block(9, BS));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_weight_stays_under_budget_when_more_blocks_than_fit_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 8 * BS + 8 * 1024;
    let cache = BlockCache::open(&config(dir.path(), budget, 0)).unwrap();
    let calls = AtomicU64::new(0);
    let id = obj("stream", "v1");
    for i in 0..64 {
        get(&cache, &id, i, i, &calls).await;
        assert!(cache.stats().memory_used_bytes <= budget);
    }
    let s = cache.stats();
    assert!(s.memory_evictions >= 56, "{s:?}");
    assert!(s.memory_used_bytes > 0);
    // Reading everything again must refetch most blocks: they were evicted.
    for i in 0..64 {
        assert_eq!(get(&cache, &id, i, i, &calls).await, block(i, BS));
    }
    assert!(calls.load(Ordering::SeqCst) >= 64 + 56);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_blocks_leave_memory_only_once_on_disk_and_are_read_back_without_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlockCache::open(&config(dir.path(), 16 * BS, 64 * BS)).unwrap();
    let id = obj("stream", "e1");
    let calls = AtomicU64::new(0);
    for i in 0..4 {
        get(&cache, &id, i, i, &calls).await;
    }
    // Released at once, while their disk writes may still be queued: they
    // leave memory when written, never before.
    cache.release(&id, 0);
    cache.release(&id, 1);
    cache.flush().await;
    let used = |c: &BlockCache| c.stats().memory_used_bytes;
    assert!(
        used(&cache) < 3 * BS,
        "two of four blocks should have left memory: {} bytes held",
        used(&cache)
    );
    // Released after the write: at once.
    cache.release(&id, 2);
    assert!(used(&cache) < 2 * BS, "{} bytes held", used(&cache));
    // All four read back from disk or memory, none fetched again.
    for i in 0..4 {
        assert_eq!(get(&cache, &id, i, 99, &calls).await, block(i, BS));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    // Without a disk tier memory is the only copy: released blocks stay.
    let mem_only = BlockCache::open(&config(dir.path(), 16 * BS, 0)).unwrap();
    get(&mem_only, &id, 0, 0, &calls).await;
    let before = used(&mem_only);
    mem_only.release(&id, 0);
    assert_eq!(used(&mem_only), before);
    assert_eq!(get(&mem_only, &id, 0, 99, &calls).await, block(0, BS));
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopened_cache_serves_blocks_without_fetch_when_version_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 16 * BS, 64 * BS);
    let id = obj("kept.bin", "etag-1");
    let calls = AtomicU64::new(0);
    {
        let cache = BlockCache::open(&cfg).unwrap();
        for i in 0..5 {
            get(&cache, &id, i, i, &calls).await;
        }
        cache.flush().await;
        assert_eq!(cache.stats().disk_writes, 5);
    }
    let cache = BlockCache::open(&cfg).unwrap();
    let calls = AtomicU64::new(0);
    for i in 0..5 {
        assert_eq!(get(&cache, &id, i, 1000 + i, &calls).await, block(i, BS));
    }
    let s = cache.stats();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(s.backend_fetches, 0);
    assert_eq!(s.disk_hits, 5);
    assert_eq!(
        s.disk_used_bytes,
        block_files(dir.path())
            .iter()
            .map(|p| p.metadata().unwrap().len())
            .sum::<u64>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_version_never_returns_old_bytes_when_object_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlockCache::open(&config(dir.path(), 16 * BS, 64 * BS)).unwrap();
    let calls = AtomicU64::new(0);
    let old = obj("doc.txt", "\"aaa\"");
    let new = obj("doc.txt", "\"bbb\"");
    assert_eq!(get(&cache, &old, 0, 1, &calls).await, block(1, BS));
    cache.flush().await;
    assert_eq!(get(&cache, &new, 0, 2, &calls).await, block(2, BS));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_cid_is_cached_once_when_read_through_two_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlockCache::open(&config(dir.path(), 16 * BS, 0)).unwrap();
    let calls = AtomicU64::new(0);
    let cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
    let via_s3 = ObjectId::from_cid(cid);
    let via_ipfs = ObjectId::from_cid(cid);
    get(&cache, &via_s3, 0, 5, &calls).await;
    assert_eq!(get(&cache, &via_ipfs, 0, 6, &calls).await, block(5, BS));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

async fn corrupt_then_read(damage: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 0, 64 * BS);
    let id = obj("fragile", "v1");
    let calls = AtomicU64::new(0);
    {
        let cache = BlockCache::open(&cfg).unwrap();
        get(&cache, &id, 2, 2, &calls).await;
        cache.flush().await;
    }
    damage(&file_of(dir.path(), &id, 2));
    let cache = BlockCache::open(&cfg).unwrap();
    assert_eq!(get(&cache, &id, 2, 2, &calls).await, block(2, BS));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "damaged block must be refetched");
    let s = cache.stats();
    assert_eq!(s.disk_hits, 0);
    // The refetched block is written again and then served from disk.
    cache.flush().await;
    assert_eq!(get(&cache, &id, 2, 99, &calls).await, block(2, BS));
    assert_eq!(cache.stats().disk_hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_block_file_is_a_miss_when_read() {
    corrupt_then_read(|p| {
        let mut data = std::fs::read(p).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(p, data).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_block_file_is_a_miss_when_read() {
    corrupt_then_read(|p| {
        let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        f.set_len(f.metadata().unwrap().len() / 2).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_budget_holds_and_evicts_least_recently_used_when_full() {
    let dir = tempfile::tempdir().unwrap();
    // Room for 4 block files (each is a block plus a small header).
    let budget = 4 * BS + 4 * 1024;
    let cfg = config(dir.path(), 0, budget);
    let cache = BlockCache::open(&cfg).unwrap();
    let id = obj("lru", "v1");
    let calls = AtomicU64::new(0);
    for i in 0..4 {
        get(&cache, &id, i, i, &calls).await;
        cache.flush().await;
    }
    // Touch block 0 so block 1 is the least recently used.
    get(&cache, &id, 0, 0, &calls).await;
    get(&cache, &id, 4, 4, &calls).await;
    cache.flush().await;
    let s = cache.stats();
    assert!(s.disk_used_bytes <= budget, "{s:?}");
    assert_eq!(s.disk_evictions, 1);
    let on_disk: u64 = block_files(dir.path())
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum();
    assert!(on_disk <= budget);
    let before = calls.load(Ordering::SeqCst);
    for i in [0, 2, 3, 4] {
        get(&cache, &id, i, i, &calls).await;
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "kept blocks served from disk"
    );
    get(&cache, &id, 1, 1, &calls).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before + 1,
        "evicted block refetched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lru_order_survives_restart_when_cache_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 3 * BS + 4 * 1024;
    let cfg = config(dir.path(), 0, budget);
    let id = obj("lru-restart", "v1");
    let calls = AtomicU64::new(0);
    {
        let cache = BlockCache::open(&cfg).unwrap();
        for i in 0..3 {
            get(&cache, &id, i, i, &calls).await;
            cache.flush().await;
            // mtime granularity is fine on ext4/tmpfs, but keep the order unambiguous.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        get(&cache, &id, 0, 0, &calls).await; // 1 is now the oldest
    }
    let cache = BlockCache::open(&cfg).unwrap();
    get(&cache, &id, 3, 3, &calls).await;
    cache.flush().await;
    let before = calls.load(Ordering::SeqCst);
    get(&cache, &id, 0, 0, &calls).await;
    get(&cache, &id, 2, 2, &calls).await;
    assert_eq!(calls.load(Ordering::SeqCst), before);
    get(&cache, &id, 1, 1, &calls).await;
    assert_eq!(calls.load(Ordering::SeqCst), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_refuses_writes_when_free_space_margin_is_not_met() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = CacheConfig {
        free_space_margin: FreeSpaceMargin::Bytes(u64::MAX / 2),
        ..config(dir.path(), 0, 64 * BS)
    };
    let cache = BlockCache::open(&cfg).unwrap();
    let id = obj("nospace", "v1");
    let calls = AtomicU64::new(0);
    assert_eq!(get(&cache, &id, 0, 0, &calls).await, block(0, BS));
    cache.flush().await;
    let s = cache.stats();
    assert_eq!(s.disk_writes_refused, 1);
    assert_eq!(s.disk_writes, 0);
    assert!(block_files(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_all_forces_a_refetch_when_called() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlockCache::open(&config(dir.path(), 16 * BS, 64 * BS)).unwrap();
    let id = obj("dropme", "v1");
    let calls = AtomicU64::new(0);
    get(&cache, &id, 0, 0, &calls).await;
    cache.flush().await;
    cache.drop_all();
    assert_eq!(cache.stats().memory_used_bytes, 0);
    assert_eq!(cache.stats().disk_used_bytes, 0);
    get(&cache, &id, 0, 0, &calls).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_range_returns_exact_bytes_when_range_spans_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlockCache::open(&config(dir.path(), 16 * BS, 0)).unwrap();
    let size = 3 * BS + 100;
    let whole: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
    let whole = Bytes::from(whole);
    let id = obj("range", "v1");
    let fetch = |i: u64| {
        let whole = whole.clone();
        async move {
            let start = i * BS;
            Ok::<_, TestError>(whole.slice(start as usize..(start + BS).min(size) as usize))
        }
    };
    for (off, len) in [
        (0, 10),
        (BS - 5, 10),
        (10, 3 * BS),
        (3 * BS + 50, 1000),
        (size, 5),
    ] {
        let got = cache.read_range(&id, off, len, size, fetch).await.unwrap();
        let end = (off + len).min(size);
        assert_eq!(
            got,
            whole.slice(off as usize..end as usize),
            "off {off} len {len}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_fetch_is_an_error_when_backend_returns_too_much() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlockCache::open(&config(dir.path(), 16 * BS, 0)).unwrap();
    let err = cache
        .get_block(&obj("x", "v"), 0, || async {
            Ok::<_, TestError>(block(0, BS + 1))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, TestError::Cache(CacheError::OversizedBlock { .. })));
}

#[test]
fn open_fails_with_clear_error_when_block_size_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = CacheConfig {
        block_size: 0,
        ..config(dir.path(), 0, 0)
    };
    let err = BlockCache::open(&cfg).unwrap_err().to_string();
    assert!(err.contains("block_size"), "{err}");
}
