//! Read-only CAR and IPFS mounts without a node: `scheme = "car"` over a CAR
//! made by ipfs-car (the real tool) and over our own sharded `car pack`
//! output, and `scheme = "ipfs"` over a trustless-gateway stand-in that
//! serves one tampered block (EIO, a log line naming the CID, other files
//! still readable). Needs root and /dev/fuse, and ipfs-car (scripts/oracles.sh).

mod car_common;
mod ipfs_common;
mod support;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use support::{errno, sh, snapshot, Mounted};

/// A small tree: nested directories, a 3 MiB file (several 1 MiB leaves), a
/// 1-byte file, an empty file, a name with a space.
fn write_src(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    std::fs::write(dir.join("big.bin"), car_common::pseudo(3 * 1_048_576 + 123, 1)).unwrap();
    std::fs::write(dir.join("one"), b"x").unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    std::fs::write(dir.join("sub/with space.txt"), b"hello ipfs\n").unwrap();
    std::fs::write(dir.join("sub/deeper/k.bin"), car_common::pseudo(300_000, 2)).unwrap();
}

fn car_config(mount: &str, paths: &str) -> String {
    format!("[[mount]]\npath = \"{mount}\"\nscheme = \"car\"\n[mount.options]\npaths = \"{paths}\"\n")
}

#[test]
fn car_mount_of_ipfs_car_output_reads_the_packed_tree() {
    let Some(ipfs_car) = car_common::ipfs_car() else {
        return;
    };
    let work = support::temp_dir();
    let src = work.path().join("src");
    write_src(&src);
    let car = work.path().join("tree.car");
    let root = car_common::run(
        Command::new(&ipfs_car)
            .arg("pack")
            .arg(&src)
            .arg("-H")
            .arg("--output")
            .arg(&car),
    )
    .trim()
    .to_string();
    let car_path = car.display().to_string();
    let m = Mounted::with_config(|_| Some(car_config("/car", &car_path)), &[]);
    // One root: the DAG sits at the mount path.
    assert_eq!(
        snapshot(&m.path("car")),
        snapshot(&src),
        "CAR mount differs from the packed tree"
    );
    // Random offsets of the multi-leaf file.
    let want = std::fs::read(src.join("big.bin")).unwrap();
    let f = std::fs::File::open(m.path("car/big.bin")).unwrap();
    for (i, off) in [0usize, 1, 1_048_575, 1_048_576, 2_000_000, want.len() - 5]
        .iter()
        .enumerate()
    {
        let mut buf = vec![0u8; 4096.min(want.len() - off)];
        f.read_exact_at(&mut buf, *off as u64).unwrap();
        assert_eq!(buf, want[*off..*off + buf.len()], "read {i} at {off}");
    }
    // Read-only, and names that are not there.
    assert_eq!(errno(&std::fs::write(m.path("car/new"), b"x")), libc::EROFS);
    assert_eq!(errno(&std::fs::metadata(m.path("car/nope"))), libc::ENOENT);
    // The root CID is the one ipfs-car printed, also as the mount's xattr.
    assert!(root.starts_with("bafy"), "{root}");
    assert_eq!(support::xattr(&m.path("car"), "user.ipfs.cid"), Ok(root.clone()));
    let one = car_common::run(
        Command::new(&ipfs_car)
            .arg("pack")
            .arg(src.join("one"))
            .arg("--no-wrap")
            .arg("--output")
            .arg(work.path().join("one.car")),
    );
    assert_eq!(
        support::xattr(&m.path("car/one"), "user.ipfs.cid"),
        Ok(one.trim().to_string())
    );
    assert_eq!(
        support::xattr(&m.path("car/one"), "user.ipfs.profile"),
        Err(libc::ENODATA),
        "the CAR's maker chose the profile; none is claimed"
    );
}

#[test]
fn car_mount_of_our_sharded_output_joins_the_shards() {
    let work = support::temp_dir();
    let src = work.path().join("src");
    write_src(&src);
    std::os::unix::fs::symlink("sub/with space.txt", src.join("link")).unwrap();
    let shards = work.path().join("shards");
    // Small shards, so the 3 MiB file spans several and most have no root.
    let out = sh(Command::new(support::bin())
        .args(["car", "pack"])
        .arg(&src)
        .arg("-o")
        .arg(&shards)
        .args(["--shard-size", "1200000"]));
    let root = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    let mut cars: Vec<String> = std::fs::read_dir(&shards)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".car") && !n.starts_with("index-")
        })
        .map(|p| p.display().to_string())
        .collect();
    cars.sort();
    assert!(cars.len() >= 3, "expected several shards, got {cars:?}");
    let paths = cars.join(",");
    let m = Mounted::with_config(|_| Some(car_config("/set", &paths)), &[]);
    assert_eq!(
        snapshot(&m.path("set")),
        snapshot(&src),
        "sharded CAR mount differs"
    );
    let link = std::fs::read_link(m.path("set/link")).unwrap();
    assert_eq!(link, Path::new("sub/with space.txt"));
    // The same set with several roots named: one directory per CID.
    let cfg2 = format!(
        "[[mount]]\npath = \"/set\"\nscheme = \"car\"\n[mount.options]\npaths = \"{paths}\"\nroots = \"{root}\"\n"
    );
    drop(m);
    let m = Mounted::with_config(|_| Some(cfg2), &[]);
    let names: Vec<String> = std::fs::read_dir(m.path("set"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![root.clone()]);
    assert_eq!(snapshot(&m.path(&format!("set/{root}"))), snapshot(&src));
}

#[test]
fn car_mount_fails_clearly_when_the_car_is_corrupt() {
    let work = support::temp_dir();
    let bad = work.path().join("bad.car");
    std::fs::write(&bad, b"\x0anot a car at all").unwrap();
    let mnt = work.path().join("mnt");
    let home = work.path().join("home");
    std::fs::create_dir_all(&mnt).unwrap();
    let cfg = work.path().join("c.toml");
    std::fs::write(&cfg, car_config("/bad", &bad.display().to_string())).unwrap();
    let out = support::run_cli(
        &home,
        &[
            "mount",
            &mnt.display().to_string(),
            "--config",
            &cfg.display().to_string(),
        ],
    );
    assert!(!out.status.success(), "mount of a corrupt CAR succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.car"), "error does not name the file: {err}");
    assert!(support::mount_entry(&mnt).is_none());
}

#[test]
fn ipfs_mount_refuses_a_tampered_block_with_eio_and_keeps_serving_others() {
    let Some(ipfs_car) = car_common::ipfs_car() else {
        return;
    };
    let work = support::temp_dir();
    let src = work.path().join("src");
    write_src(&src);
    let car = work.path().join("tree.car");
    let root = car_common::run(
        Command::new(&ipfs_car)
            .arg("pack")
            .arg(&src)
            .arg("-H")
            .arg("--output")
            .arg(&car),
    )
    .trim()
    .to_string();
    let mut blocks = ipfs_common::car_blocks(&car);
    // The second 1 MiB leaf of big.bin: find it by its bytes.
    let want = std::fs::read(src.join("big.bin")).unwrap();
    let leaf = blocks
        .iter()
        .find(|(_, b)| b.as_slice() == &want[1_048_576..2 * 1_048_576])
        .map(|(c, _)| c.clone())
        .expect("leaf block");
    blocks.get_mut(&leaf).unwrap()[100] ^= 0xff;
    let gw = ipfs_common::GatewayStandIn::start(blocks);
    let cfg = format!(
        "[vfs]\nio_timeout_secs = 20\n[[mount]]\npath = \"/ipfs\"\nscheme = \"ipfs\"\n[mount.options]\ngateway = \"{}\"\nroot = \"{root}\"\n",
        gw.url
    );
    let m = Mounted::with_config(|_| Some(cfg), &[]);
    let f = std::fs::File::open(m.path("ipfs/big.bin")).unwrap();
    let mut buf = vec![0u8; 4096];
    // The first leaf is intact.
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(buf, want[..4096]);
    // The second is not: EIO, not wrong bytes.
    let r = f.read_exact_at(&mut buf, 1_048_576 + 50);
    assert_eq!(errno(&r), libc::EIO, "tampered block read gave {r:?}");
    assert!(
        support::wait_until(std::time::Duration::from_secs(10), || m
            .log()
            .lines()
            .any(|l| l.contains(&leaf) && l.contains("does not match"))),
        "no log line names {leaf}:\n{}",
        m.log()
    );
    // Other files keep working.
    assert_eq!(
        std::fs::read(m.path("ipfs/sub/with space.txt")).unwrap(),
        b"hello ipfs\n"
    );
    assert_eq!(
        std::fs::read(m.path("ipfs/sub/deeper/k.bin")).unwrap(),
        std::fs::read(src.join("sub/deeper/k.bin")).unwrap()
    );
}

#[test]
fn car_mount_reads_a_hamt_sharded_directory() {
    let Some(ipfs_car) = car_common::ipfs_car() else {
        return;
    };
    let work = support::temp_dir();
    let src = work.path().join("many");
    // ipfs-car shards directories of more than 1000 entries.
    car_common::write_flat(&src, 2500, 12);
    let car = work.path().join("many.car");
    car_common::run(
        Command::new(&ipfs_car)
            .arg("pack")
            .arg(&src)
            .arg("--output")
            .arg(&car),
    );
    let car_path = car.display().to_string();
    let m = Mounted::with_config(|_| Some(car_config("/h", &car_path)), &[]);
    let mut names: Vec<String> = std::fs::read_dir(m.path("h"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    want.sort();
    assert_eq!(names, want);
    // Lookups by hash, in a fresh mount (no listing cached).
    drop(m);
    let m = Mounted::with_config(|_| Some(car_config("/h", &car_path)), &[]);
    for i in [0usize, 1, 777, 2499] {
        let name = format!("{i:0>12}");
        assert_eq!(
            std::fs::read(m.path(&format!("h/{name}"))).unwrap(),
            vec![i as u8],
            "{name}"
        );
    }
    assert_eq!(errno(&std::fs::metadata(m.path("h/000000002500"))), libc::ENOENT);
}
