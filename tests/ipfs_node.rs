//! `scheme = "ipfs"` against a real Kubo-RPC node (js-ipfs 0.66.1, started on
//! 127.0.0.1 by scripts/kubo-rpc.sh and stopped at the end): trees added with
//! the node's own `add` (CIDv0 defaults and CIDv1 raw leaves) are copied out
//! of the mount with `cp -r` and compared byte for byte, and the copies hash
//! to the same CIDs in the node; the node's base58btc, base36 and upper-case
//! forms of a CID name the same tree; a 100 MiB file is read at 200 random
//! offsets; a read after the node stops fails with EIO within the timeout,
//! and after a remount with the node still down what was read before is
//! read again from the disk cache (DAG nodes included).
//! Needs root, /dev/fuse and the node (IPFS_KIT_REQUIRE_KUBO_RPC=1 makes a
//! missing install a failure).

mod car_common;
mod ipfs_common;
mod support;

use rand::{Rng, SeedableRng};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{errno, sh, snapshot, Mounted};

/// The node's CIDv1 settings that match our default profile (unixfs-v1-2025).
const V1: &str = "cid-version=1&raw-leaves=true&chunker=size-1048576&cid-base=base32";

fn write_src(dir: &Path) {
    std::fs::create_dir_all(dir.join("docs/nested")).unwrap();
    std::fs::write(
        dir.join("three-mib.bin"),
        car_common::pseudo(3 * 1_048_576 + 7, 11),
    )
    .unwrap();
    std::fs::write(dir.join("exact-mib"), car_common::pseudo(1_048_576, 12)).unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    std::fs::write(dir.join("docs/readme with space.md"), b"# hello\n").unwrap();
    std::fs::write(
        dir.join("docs/nested/v0-deep.bin"),
        car_common::pseudo(174 * 262_144 + 1, 13),
    )
    .unwrap();
}

#[test]
fn ipfs_mount_serves_node_content_verified_and_fails_cleanly_when_the_node_stops() {
    let Some(mut node) = ipfs_common::KuboNode::start() else {
        return;
    };
    let work = support::temp_dir();
    let src = work.path().join("src");
    write_src(&src);
    let v0 = node.add(&src, "");
    let v1 = node.add(&src, V1);
    assert!(v0.starts_with("Qm") && v1.starts_with("bafy"), "{v0} {v1}");
    // A 100 MiB file in kubo's default shape (256 KiB dag-pb leaves, two
    // levels), and a 16 MiB one nobody reads before the node stops.
    let big = work.path().join("big.bin");
    let big_bytes = car_common::pseudo(100 << 20, 21);
    std::fs::write(&big, &big_bytes).unwrap();
    let big_cid = node.add(&big, "");
    let late = work.path().join("late.bin");
    std::fs::write(&late, car_common::pseudo(16 << 20, 22)).unwrap();
    let late_cid = node.add(&late, V1);

    let api = node.api.clone();
    let m = Mounted::with_config(
        |root| {
            Some(format!(
                "[vfs]\nio_timeout_secs = 20\n[[mount]]\npath = \"/ipfs\"\nscheme = \"ipfs\"\n[mount.options]\napi = \"{api}\"\nroots = \"{v1}\"\n\
                 [[mount]]\npath = \"/local\"\nuri = \"fs://{}/local\"\n[[mount]]\npath = \"/memory\"\nuri = \"memory://\"\n",
                root.display()
            ))
        },
        &[],
    );
    // The configured root is listed; any other CID can be looked up.
    let top = |m: &Mounted| -> Vec<String> {
        std::fs::read_dir(m.path("ipfs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(top(&m), vec![v1.clone()]);

    // cp -r out of the mount: same bytes, and the node gives the copies the same CIDs.
    for (cid, qs) in [(&v0, ""), (&v1, V1)] {
        let out = work.path().join(format!("out-{cid}"));
        sh(Command::new("cp")
            .arg("-r")
            .arg(m.path(&format!("ipfs/{cid}")))
            .arg(&out));
        assert_eq!(
            snapshot(&out),
            snapshot(&src),
            "cp -r of {cid} differs from the source"
        );
        let only_hash = if qs.is_empty() {
            "only-hash=true".to_string()
        } else {
            format!("{qs}&only-hash=true")
        };
        assert_eq!(
            &node.add(&out, &only_hash),
            cid,
            "the copy of {cid} hashes differently"
        );
    }
    // Any text form of a CID names it, as in Kubo's /ipfs paths (the node
    // itself gives the forms): same bytes, same `user.ipfs.cid`.
    let mut aliases = Vec::new();
    for base in ["base58btc", "base36", "base32upper"] {
        let qs = V1.replace("cid-base=base32", &format!("cid-base={base}"));
        let alias = node.add(&src, &format!("{qs}&only-hash=true"));
        assert_ne!(alias, v1, "the node gave no {base} form");
        let dir = m.path(&format!("ipfs/{alias}"));
        assert_eq!(
            std::fs::read(dir.join("docs/readme with space.md")).unwrap(),
            b"# hello\n",
            "read through {alias}"
        );
        assert_eq!(support::xattr(&dir, "user.ipfs.cid"), Ok(v1.clone()), "{alias}");
        aliases.push(alias);
    }
    let mut seen = top(&m);
    seen.sort();
    assert!(
        seen.contains(&v0) && seen.contains(&v1),
        "looked-up CIDs are listed: {seen:?}"
    );
    assert!(
        !seen.iter().any(|n| aliases.contains(n)),
        "the listing shows canonical names only: {seen:?}"
    );

    // Push a directory from /local: the node pins it under the CID `cid` gives.
    sh(Command::new("cp").arg("-r").arg(&src).arg(m.path("local/tree")));
    let mnt = m.mnt.display().to_string();
    let out = support::run_cli(
        &m.home,
        &["ipfs", "push", "/local/tree", "--api", &api, "-m", &mnt],
    );
    assert!(
        out.status.success(),
        "push: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let out = support::run_cli(&m.home, &["cid", "-Q", &src.display().to_string()]);
    assert_eq!(
        pushed,
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default(),
        "pushed CID differs from `cid`"
    );
    assert_eq!(pushed, v1, "pushed CID differs from the node's own add");
    let pins =
        String::from_utf8(node.rpc(&format!("pin/ls?arg={pushed}&type=recursive&cid-base=base32"))).unwrap();
    assert!(pins.contains(&pushed), "not pinned: {pins}");
    // Pull it (and the node's v0 DAG) into /memory: the trees equal the source.
    for (cid, name) in [(&pushed, "pulled-v1"), (&v0, "pulled-v0")] {
        let vpath = format!("/memory/{name}");
        let out = support::run_cli(&m.home, &["ipfs", "pull", cid, &vpath, "--api", &api, "-m", &mnt]);
        assert!(
            out.status.success(),
            "pull {cid}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            snapshot(&m.path(&format!("memory/{name}"))),
            snapshot(&src),
            "pulled {cid} differs"
        );
    }
    // A pull onto an existing path is refused, nothing written.
    let out = support::run_cli(
        &m.home,
        &[
            "ipfs",
            "pull",
            &v0,
            "/memory/pulled-v0",
            "--api",
            &api,
            "-m",
            &mnt,
        ],
    );
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("exists"));

    // Errors: a missing name, a name that is not a CID, writes.
    assert_eq!(
        errno(&std::fs::metadata(m.path(&format!("ipfs/{v1}/nope")))),
        libc::ENOENT
    );
    assert_eq!(errno(&std::fs::metadata(m.path("ipfs/not-a-cid"))), libc::ENOENT);
    assert_eq!(
        errno(&std::fs::write(m.path(&format!("ipfs/{v1}/new")), b"x")),
        libc::EROFS
    );

    // 200 random reads of the 100 MiB file.
    let f = std::fs::File::open(m.path(&format!("ipfs/{big_cid}"))).unwrap();
    assert_eq!(f.metadata().unwrap().len(), big_bytes.len() as u64);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in 0..200 {
        let len = rng.random_range(1..=300_000usize);
        let off = rng.random_range(0..big_bytes.len() - len);
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, off as u64).unwrap();
        assert!(
            buf == big_bytes[off..off + len],
            "read {i}: {len} bytes at {off} differ"
        );
    }

    // The node stops mid-read: the next uncached read fails with EIO, in time.
    drop(f);
    let f = std::fs::File::open(m.path(&format!("ipfs/{late_cid}"))).unwrap();
    let mut buf = vec![0u8; 65536];
    f.read_exact_at(&mut buf, 0).unwrap();
    node.stop();
    let start = Instant::now();
    let r = f.read_exact_at(&mut buf, 14 << 20);
    let took = start.elapsed();
    assert_eq!(errno(&r), libc::EIO, "read after the node stopped gave {r:?}");
    assert!(took < Duration::from_secs(60), "the failed read took {took:?}");
    // Blocks already read stay readable from the cache.
    f.read_exact_at(&mut buf, 0).unwrap();
    drop(f);

    // A new daemon on the same data home, the node still down: what was
    // read before comes from the disk cache, the DAG nodes on the way to
    // it included (the root CID, the directory, the file's nodes).
    let mut m = m;
    let out = m.unmount();
    assert!(
        out.status.success(),
        "unmount: {}\nlog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        m.log()
    );
    m.remount();
    let out = work.path().join("offline-copy");
    sh(Command::new("cp")
        .arg("-r")
        .arg(m.path(&format!("ipfs/{v1}")))
        .arg(&out));
    assert_eq!(
        snapshot(&out),
        snapshot(&src),
        "cp -r of {v1} with the node down, after a remount, differs from the source"
    );
    let r = std::fs::read(m.path(&format!("ipfs/{late_cid}")));
    assert_eq!(
        errno(&r),
        libc::EIO,
        "bytes never read cannot come offline: {:?}",
        r.map(|b| b.len())
    );
}
