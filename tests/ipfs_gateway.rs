//! `scheme = "ipfs"` over a trustless gateway: long sequential reads get
//! their blocks as CAR ranges (`?format=car&dag-scope=entity&entity-bytes=`),
//! in far fewer requests than block by block; a gateway that refuses CAR
//! ranges is read block by block (`?format=raw`); a tampered block inside a
//! CAR answer fails the read with EIO and a log line naming its CID.
//!
//! The DAGs are made by a real Kubo-RPC node (js-ipfs 0.66.1 `add`) and
//! exported with its `dag/export`. js-ipfs serves no trustless-gateway
//! answers, so the gateway is a stand-in (tests/gateway/trustless_standin.py)
//! serving the exported blocks. The expected bytes are the files given to the
//! node. Needs root, /dev/fuse, python3 and the node
//! (IPFS_KIT_REQUIRE_KUBO_RPC=1 makes a missing install a failure).

mod car_common;
mod ipfs_common;
mod support;

use ipfs_common::PyServer;
use std::path::{Path, PathBuf};
use support::{errno, Mounted};

/// The node's CIDv1 settings (raw leaves of 1 MiB), CIDs in base32 as we print them.
const V1: &str = "cid-version=1&raw-leaves=true&chunker=size-1048576&cid-base=base32";
/// The big file: 24 MiB, 96 leaves of 256 KiB in the node's default (v0)
/// shape, 24 leaves of 1 MiB in the v1 one.
const BIG: usize = 24 << 20;
const V0_LEAVES: usize = BIG / (256 << 10);
const V1_LEAVES: usize = BIG / (1 << 20);

/// The trustless-gateway stand-in serving the blocks of `cars`.
fn gateway(cars: &[&Path], extra: &[&str]) -> PyServer {
    let mut args: Vec<std::ffi::OsString> = extra.iter().map(Into::into).collect();
    for car in cars {
        args.push("--car".into());
        args.push(car.into());
    }
    PyServer::start("trustless_standin.py", &args)
}

/// A tree with the big file and a small one, added to the node in both
/// shapes and exported: (v0 root, v1 root, v0 CAR, v1 CAR).
fn add_and_export(node: &ipfs_common::KuboNode, work: &Path) -> (String, String, PathBuf, PathBuf) {
    let src = work.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big.bin"), car_common::pseudo(BIG, 31)).unwrap();
    std::fs::write(src.join("small.txt"), b"small file\n").unwrap();
    let v0 = node.add(&src, "");
    let v1 = node.add(&src, V1);
    let mut cars = Vec::new();
    for cid in [&v0, &v1] {
        let car = work.join(format!("{cid}.car"));
        std::fs::write(&car, node.rpc(&format!("dag/export?arg={cid}"))).unwrap();
        cars.push(car);
    }
    let v1_car = cars.pop().unwrap();
    (v0, v1, cars.pop().unwrap(), v1_car)
}

fn mount(gw: &PyServer, v0: &str, v1: &str) -> Mounted {
    let cfg = format!(
        "[vfs]\nio_timeout_secs = 30\n[[mount]]\npath = \"/ipfs\"\nscheme = \"ipfs\"\n[mount.options]\ngateway = \"{}\"\nroots = \"{v0},{v1}\"\n",
        gw.url
    );
    Mounted::with_config(|_| Some(cfg), &[])
}

#[test]
fn gateway_car_ranges_read_long_files_in_fewer_requests_than_block_by_block() {
    let Some(node) = ipfs_common::KuboNode::start() else {
        return;
    };
    let work = support::temp_dir();
    let (v0, v1, v0_car, v1_car) = add_and_export(&node, work.path());
    drop(node);
    let want = std::fs::read(work.path().join("src/big.bin")).unwrap();

    // Each gateway gets its own daemon (its own caches), reading the same files.
    let mut counts = Vec::new();
    for extra in [&["--no-car"][..], &[][..]] {
        let gw = gateway(&[&v0_car, &v1_car], extra);
        let m = mount(&gw, &v0, &v1);
        for root in [&v0, &v1] {
            let got = std::fs::read(m.path(&format!("ipfs/{root}/big.bin"))).unwrap();
            assert!(got == want, "big.bin of {root} differs (gateway {extra:?})");
            assert_eq!(
                std::fs::read(m.path(&format!("ipfs/{root}/small.txt"))).unwrap(),
                b"small file\n"
            );
        }
        drop(m);
        let reqs = gw.requests();
        let raw = reqs.iter().filter(|(k, _)| k == "raw").count();
        let car_ok = reqs
            .iter()
            .filter(|(k, r)| k == "car" && r.contains(" 200 "))
            .count();
        let car_refused = reqs
            .iter()
            .filter(|(k, r)| k == "car" && r.contains(" 400 "))
            .count();
        eprintln!("gateway {extra:?}: {raw} raw, {car_ok} CAR, {car_refused} refused CAR requests");
        counts.push((raw, car_ok, car_refused));
    }
    let leaves = V0_LEAVES + V1_LEAVES;
    // Without CAR ranges: refused once (plus the requests already in flight
    // then: the kernel's readahead sends up to 4 reads of 1 MiB at once, and
    // ours a run or two), then every leaf by itself.
    let (raw, car_ok, car_refused) = counts[0];
    assert!(car_ok == 0 && (1..=8).contains(&car_refused), "{counts:?}");
    assert!(raw >= leaves, "{raw} raw requests for {leaves} leaves");
    // With them: the leaves come in CAR answers (one per cache block or
    // readahead run), a few blocks by themselves (the directories, the
    // files' roots, the small file and the files' short tails).
    let (raw2, car_ok2, car_refused2) = counts[1];
    assert!(car_ok2 >= 2 && car_refused2 == 0, "{counts:?}");
    assert!(raw2 <= 12, "{raw2} blocks fetched alone: {counts:?}");
    assert!(
        (raw2 + car_ok2) * 2 <= raw,
        "CAR ranges: {} requests, block by block: {raw}",
        raw2 + car_ok2
    );
}

#[test]
fn gateway_car_range_with_a_tampered_block_fails_with_eio_naming_the_cid() {
    let Some(node) = ipfs_common::KuboNode::start() else {
        return;
    };
    let work = support::temp_dir();
    let (v0, v1, v0_car, v1_car) = add_and_export(&node, work.path());
    drop(node);
    let want = std::fs::read(work.path().join("src/big.bin")).unwrap();
    // The v1 file's 11th leaf (raw, 1 MiB): found by its bytes.
    let leaf = ipfs_common::car_blocks(&v1_car)
        .into_iter()
        .find(|(_, b)| b.as_slice() == &want[10 << 20..11 << 20])
        .map(|(c, _)| c)
        .expect("leaf block");
    let gw = gateway(&[&v0_car, &v1_car], &["--tamper", &leaf]);
    let m = mount(&gw, &v0, &v1);

    let r = std::fs::read(m.path(&format!("ipfs/{v1}/big.bin")));
    assert_eq!(
        errno(&r),
        libc::EIO,
        "read over a tampered block gave {:?}",
        r.map(|b| b.len())
    );
    assert!(
        support::wait_until(std::time::Duration::from_secs(10), || m
            .log()
            .lines()
            .any(|l| l.contains(&leaf) && l.contains("does not match"))),
        "no log line names {leaf}:\n{}",
        m.log()
    );
    // The gateway sent the tampered block inside a CAR range.
    assert!(
        gw.requests()
            .iter()
            .any(|(k, r)| k == "car" && r.contains(" 200 ") && r.contains(&leaf)),
        "{:?}",
        gw.requests()
    );
    // Other files keep working, long reads through CAR ranges included.
    assert!(std::fs::read(m.path(&format!("ipfs/{v0}/big.bin"))).unwrap() == want);
    assert_eq!(
        std::fs::read(m.path(&format!("ipfs/{v1}/small.txt"))).unwrap(),
        b"small file\n"
    );
}
