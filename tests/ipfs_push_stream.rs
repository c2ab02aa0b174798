//! Long transfers. A push streams its CAR to the node: pushing a 320 MiB file into a real
//! Kubo-RPC node (js-ipfs 0.66.1 from scripts/kubo-rpc.sh) raises this
//! process's peak memory by far less than the CAR (a push used to hold the
//! CAR in memory twice, and refused CARs over 2 GiB), and the root the node
//! pins is the node's own `add` of the same bytes (unixfs-v0-2015, three
//! levels of 174-link nodes); the upload reports its progress up to the
//! CAR's size. A pull from a node that keeps sending, slowly, outlasts its
//! timeout, which only bounds how long the node may send nothing. Needs the node
//! (IPFS_KIT_REQUIRE_KUBO_RPC=1 makes a missing install a failure); no mount.

mod ipfs_common;
mod support;

use std::io::Read;
use std::time::Duration;

/// The file pushed: big enough that holding its CAR in memory would show
/// far above the allocator's and the runtime's own noise.
const SIZE: usize = 320 << 20;
/// Peak memory a push may add: a few read buffers and the HTTP client's,
/// nowhere near the 320 MiB the CAR takes.
const PEAK_MAX: u64 = 96 << 20;

/// A line of /proc/self/status in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("{key} missing from /proc/self/status"));
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

#[test]
fn a_push_streams_its_car_and_the_node_pins_the_same_root() {
    let Some(node) = ipfs_common::KuboNode::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("big.bin");
    {
        // Random bytes: no two leaves alike, so the CAR is as big as the file.
        let mut f = std::fs::File::create(&file).unwrap();
        let mut random = std::fs::File::open("/dev/urandom").unwrap().take(SIZE as u64);
        assert_eq!(std::io::copy(&mut random, &mut f).unwrap(), SIZE as u64);
    }
    // The node's own add defaults are our unixfs-v0-2015 (its CIDv1 adds
    // put 174 links in a node, where unixfs-v1-2025 puts 1024).
    let want = node.add(&file, "only-hash=true");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Peak memory from here on (writing "5" resets VmHWM to the current RSS).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_bytes("VmRSS:");
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = sent.clone();
    let pushed = rt
        .block_on(ipfs_kit_fuse::ipfs::push(
            &node.api,
            &file,
            ipfs_kit_fuse::car::Profile::UnixfsV0_2015,
            false,
            Duration::from_secs(600),
            |_| {},
            move |done, total| record.lock().unwrap().push((done, total)),
        ))
        .expect("push");
    let peak = status_bytes("VmHWM:").saturating_sub(before);
    eprintln!(
        "push of a {} MiB CAR: peak memory +{} MiB",
        pushed.car_bytes >> 20,
        peak >> 20
    );

    assert_eq!(
        pushed.root.to_string(),
        want,
        "pushed root differs from the node's own add"
    );
    assert!(
        pushed.car_bytes > SIZE as u64,
        "CAR of {} bytes for {SIZE} bytes of file",
        pushed.car_bytes
    );
    assert!(
        peak < PEAK_MAX,
        "a push of a {} MiB CAR raised peak memory by {} MiB",
        pushed.car_bytes >> 20,
        peak >> 20
    );
    // Upload progress: growing, against the CAR's size, ending at it.
    let sent = sent.lock().unwrap();
    assert!(sent.len() > 1, "{} upload reports", sent.len());
    assert!(
        sent.windows(2).all(|w| w[0].0 < w[1].0),
        "upload progress went back"
    );
    assert!(sent.iter().all(|s| s.1 == pushed.car_bytes));
    assert_eq!(sent.last().map(|s| s.0), Some(pushed.car_bytes));
    let pins = String::from_utf8(node.rpc(&format!("pin/ls?arg={want}&type=recursive"))).unwrap();
    assert!(pins.contains(&want), "not pinned: {pins}");
    let stat = String::from_utf8(node.rpc(&format!("files/stat?arg=/ipfs/{want}"))).unwrap();
    assert!(
        stat.contains(&format!("\"Size\":{SIZE}")),
        "the node's stat of the pushed root: {stat}"
    );
}

#[test]
fn a_pull_that_keeps_receiving_outlasts_its_stall_timeout() {
    let Some(node) = ipfs_common::KuboNode::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("a.txt"), b"slow but steady\n").unwrap();
    std::fs::write(src.join("d/b.bin"), vec![7u8; 300_000]).unwrap();
    let cid = node.add(&src, "cid-version=1&raw-leaves=true&cid-base=base32");
    // The export comes in 16 pieces 0.4 s apart: 6 s in all, never 2 s
    // without a byte.
    let proxy = ipfs_common::PyServer::start(
        "rpc_proxy.py",
        &["--upstream", node.api.as_str(), "--drip-export", "0.4"],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let target = work.path().join("pulled");
    let started = std::time::Instant::now();
    let pulled = rt
        .block_on(ipfs_kit_fuse::ipfs::pull(
            &proxy.url,
            &cid::Cid::try_from(cid.as_str()).unwrap(),
            &target,
            Duration::from_secs(2),
            |_| {},
        ))
        .expect("a steady pull outlasts its stall timeout");
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "the export was not dripped"
    );
    assert_eq!(pulled.files, 2);
    assert_eq!(std::fs::read(target.join("a.txt")).unwrap(), b"slow but steady\n");
    assert_eq!(std::fs::read(target.join("d/b.bin")).unwrap(), vec![7u8; 300_000]);
}
