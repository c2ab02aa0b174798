//! `scheme = "ipfs"` over a Kubo-RPC node: a sequential read of a file with
//! raw leaves gets its bytes as `cat` spans (`src/ipfs/stream.rs`), every
//! leaf checked against its CID. Through a proxy in front of a real node
//! (js-ipfs 0.66.1; tests/gateway/rpc_proxy.py) the tests see that:
//! a streamed read equals the source in far fewer requests than leaves; a
//! tampered byte in a `cat` answer is refused with a log line naming the
//! leaf's CID and the source, and that leaf is asked for again by
//! `block/get` (so the read gets the true bytes, or EIO when that answer is
//! tampered too), while other files keep working; a node that stops sending
//! mid-answer costs one timeout, after which the read completes block by
//! block; a file with dag-pb leaves (the node's default shape, CIDv0) is
//! streamed too, each leaf checked inside the wrapper its block puts around
//! the bytes, and a tampered byte in its `cat` answer makes the read fetch
//! that leaf's block instead (true bytes, no error); the blocks a stream has
//! gone past leave the memory tier, and a read of the file again past the
//! page cache asks the node nothing (the disk tier has every block).
//! Needs root, /dev/fuse, python3 and the node (IPFS_KIT_REQUIRE_KUBO_RPC=1
//! makes a missing install a failure).

mod car_common;
mod ipfs_common;
mod support;

use ipfs_common::PyServer;
use std::time::{Duration, Instant};
use support::{errno, Mounted};

/// The node's CIDv1 settings (raw leaves of 1 MiB), CIDs in base32 as we print them.
const V1: &str = "cid-version=1&raw-leaves=true&chunker=size-1048576&cid-base=base32";
/// Each streamed file: 24 leaves of 1 MiB.
const SIZE: usize = 24 << 20;
const LEAVES: usize = SIZE / (1 << 20);
/// The byte the proxy flips in `cat` answers of the tampered files: in
/// their 11th leaf.
const TAMPERED_AT: usize = (10 << 20) + 12_345;
/// The mount's I/O timeout: a stalled span is given up after it.
const IO_TIMEOUT_SECS: u64 = 5;

/// Requests of `endpoint` for `arg` the proxy has seen.
fn count(proxy: &PyServer, endpoint: &str, arg: &str) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|(k, r)| k == endpoint && (arg.is_empty() || r.starts_with(&format!("{arg} "))))
        .count()
}

#[test]
fn sequential_reads_stream_cat_spans_verified_leaf_by_leaf() {
    let Some(node) = ipfs_common::KuboNode::start() else {
        return;
    };
    let work = support::temp_dir();
    let add = |name: &str, seed: u64, qs: &str| -> (String, Vec<u8>) {
        let path = work.path().join(name);
        let bytes = car_common::pseudo(SIZE, seed);
        std::fs::write(&path, &bytes).unwrap();
        (node.add(&path, qs), bytes)
    };
    // (`pseudo` makes the same bytes for seeds 2n and 2n+1: odd seeds.)
    let (good, good_bytes) = add("good.bin", 41, V1);
    let (tampered, tampered_bytes) = add("tampered.bin", 43, V1);
    let (bad, bad_bytes) = add("bad.bin", 45, V1);
    let (stalled, stalled_bytes) = add("stalled.bin", 47, V1);
    let (v0, v0_bytes) = add("v0.bin", 49, "");
    let (v0_tampered, v0_tampered_bytes) = add("v0-tampered.bin", 51, "");
    // The 11th leaf of each tampered file, found by its bytes in the node's export.
    let leaf_of = |cid: &str, bytes: &[u8]| -> String {
        let car = work.path().join(format!("{cid}.car"));
        std::fs::write(&car, node.rpc(&format!("dag/export?arg={cid}"))).unwrap();
        ipfs_common::car_blocks(&car)
            .into_iter()
            .find(|(_, b)| b.as_slice() == &bytes[10 << 20..11 << 20])
            .map(|(c, _)| c)
            .expect("the 11th leaf is in the export")
    };
    let leaf = leaf_of(&tampered, &tampered_bytes);
    let bad_leaf = leaf_of(&bad, &bad_bytes);
    // The dag-pb leaf (256 KiB of data in a few bytes of wrapper) holding
    // the tampered byte of the v0 file.
    let v0_leaf = {
        let car = work.path().join("v0-tampered.car");
        std::fs::write(&car, node.rpc(&format!("dag/export?arg={v0_tampered}"))).unwrap();
        let at = TAMPERED_AT / 262_144 * 262_144;
        let chunk = &v0_tampered_bytes[at..at + 262_144];
        ipfs_common::car_blocks(&car)
            .into_iter()
            .find(|(_, b)| b.len() > chunk.len() && (0..16).any(|h| b.get(h..h + chunk.len()) == Some(chunk)))
            .map(|(c, _)| c)
            .expect("the tampered v0 leaf is in the export")
    };

    let proxy = PyServer::start(
        "rpc_proxy.py",
        &[
            "--upstream".to_string(),
            node.api.clone(),
            "--tamper-cat".to_string(),
            format!("{tampered}:{TAMPERED_AT}"),
            "--tamper-cat".to_string(),
            format!("{bad}:{TAMPERED_AT}"),
            "--tamper-cat".to_string(),
            format!("{v0_tampered}:{TAMPERED_AT}"),
            "--tamper-block".to_string(),
            bad_leaf.clone(),
            "--stall-cat".to_string(),
            format!("{stalled}:{}", 3 << 20),
        ],
    );
    let cfg = format!(
        "[vfs]\nio_timeout_secs = {IO_TIMEOUT_SECS}\n[[mount]]\npath = \"/ipfs\"\nscheme = \"ipfs\"\n[mount.options]\napi = \"{}\"\n",
        proxy.url
    );
    let m = Mounted::with_config(|_| Some(cfg), &[]);
    let path = |cid: &str| m.path(&format!("ipfs/{cid}"));

    // A sequential read: the source's bytes, most leaves from cat spans.
    assert!(
        std::fs::read(path(&good)).unwrap() == good_bytes,
        "streamed read differs"
    );
    let (cats, gets) = (count(&proxy, "cat", &good), count(&proxy, "block/get", ""));
    assert!(cats >= 1, "no cat span was asked for: {:?}", proxy.requests());
    assert!(
        gets * 2 < LEAVES,
        "{gets} block/get requests for {LEAVES} leaves: spans served few of them\nrequests: {:?}\nlog:\n{}",
        proxy.requests(),
        m.log()
    );
    // The runs of one reader share one span: the node is never asked for
    // the same bytes twice (the kernel's readahead sends several reads at
    // once; each once opened a span of its own).
    let mut ranges: Vec<(u64, u64)> = proxy
        .requests()
        .iter()
        .filter(|(k, r)| k == "cat" && r.starts_with(&format!("{good} ")))
        .map(|(_, r)| {
            let q = |name: &str| -> u64 {
                r.split(['&', ' '])
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no {name} in {r}"))
            };
            (q("offset"), q("offset") + q("length"))
        })
        .collect();
    ranges.sort();
    assert!(
        ranges.windows(2).all(|w| w[0].1 <= w[1].0),
        "cat requests overlap: {ranges:?}"
    );
    // The mount raised the kernel's readahead from its 128 KiB.
    let dev = std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(m.path("")).unwrap());
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let ra = std::fs::read_to_string(format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb")).unwrap();
    assert_eq!(ra.trim(), ipfs_kit_fuse::fuse::DEFAULT_READ_AHEAD_KB.to_string());

    // The blocks the stream went past (the first 8 MiB: those 16 MiB
    // behind its end) left the memory tier once the disk tier had them
    // (the page cache holds what was read)...
    let memory = || -> u64 {
        m.cli_json("stats")["cache"]["memory"]["used_bytes"]
            .as_u64()
            .expect("memory figures")
    };
    assert!(
        support::wait_until(Duration::from_secs(10), || memory() < SIZE as u64 - (6 << 20)),
        "the memory tier holds {} bytes after a {SIZE}-byte stream",
        memory()
    );
    // ...and a read of it again, past the page cache, comes from the disk
    // tier: the node is asked nothing.
    let asked = proxy.requests().len();
    let file = std::fs::File::open(path(&good)).unwrap();
    let dropped = unsafe {
        libc::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
            0,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    assert_eq!(dropped, 0, "posix_fadvise");
    drop(file);
    assert!(
        std::fs::read(path(&good)).unwrap() == good_bytes,
        "re-read differs"
    );
    assert_eq!(
        proxy.requests().len(),
        asked,
        "a re-read asked the node: {:?}",
        &proxy.requests()[asked..]
    );

    // A tampered byte in a cat answer: the leaf is refused, logged with
    // its CID and the source, and fetched again by block/get: the reader
    // gets the true bytes.
    let got = std::fs::read(path(&tampered)).unwrap();
    assert!(got == tampered_bytes, "a read over a tampered cat answer differs");
    let refused = |cid: &str| {
        support::wait_until(Duration::from_secs(10), || {
            m.log()
                .lines()
                .any(|l| l.contains(cid) && l.contains("does not match") && l.contains(&proxy.url))
        })
    };
    assert!(
        refused(&leaf),
        "no log line names {leaf} and the source:\n{}",
        m.log()
    );
    assert!(count(&proxy, "cat", &tampered) >= 1);
    assert!(
        count(&proxy, "block/get", &leaf) >= 1,
        "the refused leaf was not fetched again"
    );
    // Both answers tampered: EIO, nothing wrong delivered.
    let r = std::fs::read(path(&bad));
    assert_eq!(
        errno(&r),
        libc::EIO,
        "read over a tampered leaf gave {:?}",
        r.map(|b| b.len())
    );
    assert!(refused(&bad_leaf), "no log line names {bad_leaf}:\n{}", m.log());

    // Other files keep working. A file in the node's default shape (dag-pb
    // leaves of 256 KiB, CIDv0) streams too: far fewer requests than leaves.
    let gets = count(&proxy, "block/get", "");
    assert!(std::fs::read(path(&v0)).unwrap() == v0_bytes, "v0 read differs");
    let v0_gets = count(&proxy, "block/get", "") - gets;
    assert!(
        count(&proxy, "cat", &v0) >= 1,
        "the dag-pb-leaf file was not streamed"
    );
    assert!(
        v0_gets * 4 < SIZE / 262_144,
        "{v0_gets} block/get requests for {} dag-pb leaves\nlog:\n{}",
        SIZE / 262_144,
        m.log()
    );
    // Its tampered leaf is fetched whole instead: the true bytes, no error.
    assert!(
        std::fs::read(path(&v0_tampered)).unwrap() == v0_tampered_bytes,
        "v0 read over a tampered cat answer differs"
    );
    assert!(count(&proxy, "cat", &v0_tampered) >= 1);
    assert!(
        count(&proxy, "block/get", &v0_leaf) >= 1,
        "the dag-pb leaf that did not match was not fetched whole"
    );
    assert!(std::fs::read(path(&good)).unwrap() == good_bytes);

    // A node that stops sending mid-answer: the span is given up after the
    // I/O timeout and the read completes block by block.
    let start = Instant::now();
    let got = std::fs::read(path(&stalled)).unwrap();
    let took = start.elapsed();
    assert!(got == stalled_bytes, "read after a stalled span differs");
    assert!(
        count(&proxy, "cat", &stalled) >= 1,
        "the stalled file was not streamed"
    );
    assert!(
        took < Duration::from_secs(IO_TIMEOUT_SECS * 3),
        "the read over a stalled span took {took:?}"
    );
}
