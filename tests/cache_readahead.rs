//! The FUSE read path as the core should write it: serve the kernel's read
//! through the cache, then spawn prefetches the readahead policy asks for,
//! bounded by the global prefetch budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use ipfs_kit_fuse::cache::{
    BlockCache, CacheConfig, CacheError, ObjectId, PrefetchBudget, Readahead, Version,
};

const BS: u64 = 64 * 1024;

/// A fake backend: one object, counting range requests.
struct Backend {
    data: Bytes,
    requests: AtomicU64,
}

impl Backend {
    async fn read_block(&self, index: u64) -> Result<Bytes, CacheError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        let start = (index * BS).min(self.data.len() as u64) as usize;
        let end = (start + BS as usize).min(self.data.len());
        Ok(self.data.slice(start..end))
    }
}

/// One kernel read, as `fs/` would serve it.
async fn fuse_read(
    cache: &Arc<BlockCache>,
    backend: &Arc<Backend>,
    budget: &PrefetchBudget,
    ra: &mut Readahead,
    id: ObjectId,
    offset: u64,
    len: u64,
) -> Result<Bytes, CacheError> {
    let size = backend.data.len() as u64;
    for index in ra.on_read(offset, len, size) {
        if cache.contains(&id, index) {
            continue;
        }
        let Some(permit) = budget.try_reserve(cache.block_size()) else {
            break;
        };
        let (cache, backend) = (cache.clone(), backend.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _ = cache
                .get_block(&id, index, || backend.read_block(index))
                .await;
        });
    }
    cache
        .read_range(&id, offset, len, size, |i| backend.read_block(i))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_reads_are_served_exactly_once_per_block_when_readahead_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = CacheConfig {
        memory_bytes: 64 << 20,
        disk_bytes: 0,
        block_size: BS,
        ..CacheConfig::with_dir(dir.path())
    };
    let cache = BlockCache::open(&cfg).unwrap();
    let size = 200 * BS + 123;
    let data: Bytes = (0..size)
        .map(|i| (i % 241) as u8)
        .collect::<Vec<_>>()
        .into();
    let backend = Arc::new(Backend {
        data: data.clone(),
        requests: AtomicU64::new(0),
    });
    let budget = PrefetchBudget::new(8 * BS);
    let mut ra = Readahead::new(BS);
    let id = ObjectId::versioned("mem", "file.bin", Version::ETag("1"));
    let chunk = 16 * 1024;
    let mut offset = 0;
    while offset < size {
        let got = fuse_read(&cache, &backend, &budget, &mut ra, id, offset, chunk)
            .await
            .unwrap();
        let end = (offset + chunk).min(size);
        assert_eq!(got, data.slice(offset as usize..end as usize));
        offset += chunk;
    }
    let blocks = size.div_ceil(BS);
    assert_eq!(
        backend.requests.load(Ordering::SeqCst),
        blocks,
        "single flight: one request per block"
    );
    let s = cache.stats();
    assert!(s.memory_hits > 0);
    assert!(ra.window() > BS, "window grew on a sequential stream");
}
