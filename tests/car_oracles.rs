//! Live comparisons against the real tools (installed by scripts/oracles.sh):
//! ipfs-car 3.1.0 (CIDs and CAR bytes for `unixfs-v1-2025` files and the
//! `ipfs-car` profile), kubo 0.22 as a library (`unixfs-v0-2015`), and the
//! Storacha client's dry run (shard and index CIDs). Without an oracle the
//! test prints "skipped: oracle missing" and passes, unless
//! IPFS_KIT_REQUIRE_ORACLES=1.

mod car_common;

use car_common::*;
use ipfs_kit_fuse::car::{
    add_path, add_path_listed, cid_of_path, pack_file, Discard, Order, Profile, ShardWriter, WalkOptions,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn ipfs_car_pack(bin: &Path, input: &Path, out: &Path, extra: &[&str]) -> String {
    let mut cmd = Command::new(bin);
    cmd.arg("pack").arg(input).args(extra).arg("--output").arg(out);
    run(&mut cmd).trim().to_owned()
}

fn our_pack(profile: Profile, input: &Path, out: &Path, opts: WalkOptions) -> String {
    pack_file(profile, input, &opts, out, Order::RootLast, false, &|_| {})
        .unwrap()
        .root
        .to_string()
}

fn assert_same_file(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(
        x == y,
        "{} ({} bytes) differs from {} ({} bytes)",
        a.display(),
        x.len(),
        b.display(),
        y.len()
    );
}

fn kubo_cids(paths: &[PathBuf], repo: &Path) -> Option<HashMap<PathBuf, String>> {
    let (lib, script) = kubo()?;
    let out = run(Command::new("python3")
        .arg(script)
        .arg("--lib")
        .arg(lib)
        .arg("--repo")
        .arg(repo)
        .args(paths));
    Some(
        out.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(cid, p)| (PathBuf::from(p), cid.to_owned()))
            .collect(),
    )
}

#[test]
fn files_match_ipfs_car_when_corpus_files() {
    let Some(bin) = ipfs_car() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let files = write_files(&tmp.path().join("in"));
    for (i, f) in files.iter().enumerate() {
        let (theirs, ours) = (
            tmp.path().join(format!("t{i}.car")),
            tmp.path().join(format!("o{i}.car")),
        );
        let root = ipfs_car_pack(&bin, f, &theirs, &["--no-wrap"]);
        assert_eq!(
            cid_of_path(Profile::UnixfsV1_2025, f, false).unwrap().to_string(),
            root,
            "v1 {}",
            f.display()
        );
        assert_eq!(
            our_pack(Profile::IpfsCar, f, &ours, WalkOptions::default()),
            root,
            "ipfs-car {}",
            f.display()
        );
        assert_same_file(&theirs, &ours);
    }
    // ipfs-car's default --wrap.
    let (theirs, ours) = (tmp.path().join("tw.car"), tmp.path().join("ow.car"));
    let root = ipfs_car_pack(&bin, &files[7], &theirs, &[]);
    assert_eq!(
        our_pack(
            Profile::IpfsCar,
            &files[7],
            &ours,
            WalkOptions {
                wrap: true,
                hidden: false
            }
        ),
        root
    );
    assert_same_file(&theirs, &ours);
}

#[test]
fn files_match_kubo_when_profile_v0() {
    let tmp = tempfile::tempdir().unwrap();
    let files = write_files(&tmp.path().join("in"));
    let Some(cids) = kubo_cids(&files, &tmp.path().join("repo")) else {
        return;
    };
    assert_eq!(cids.len(), files.len());
    for f in &files {
        let ours = cid_of_path(Profile::UnixfsV0_2015, f, true).unwrap().to_string();
        assert_eq!(Some(&ours), cids.get(f), "{}", f.display());
    }
}

fn dir_corpus(root: &Path) -> Vec<PathBuf> {
    let tree = root.join("tree");
    write_tree(&tree, true);
    let plain = root.join("plain");
    write_tree(&plain, false);
    let flat1001 = root.join("flat1001");
    write_flat(&flat1001, 1001, 8);
    // 3000 x (80 + 34..36) bytes of links: over 256 KiB in every profile.
    let big = root.join("flat-big");
    write_flat(&big, 3000, 80);
    let single = root.join("single-subdir");
    write_tree(&single.join("only"), false);
    vec![tree, plain, flat1001, big, single]
}

#[test]
fn directories_match_ipfs_car_when_corpus_trees() {
    let Some(bin) = ipfs_car() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dirs = dir_corpus(&tmp.path().join("in"));
    for (i, d) in dirs.iter().enumerate() {
        for hidden in [false, true] {
            let flags: &[&str] = if hidden { &["-H"] } else { &[] };
            let (theirs, ours) = (
                tmp.path().join(format!("t{i}{hidden}.car")),
                tmp.path().join(format!("o{i}{hidden}.car")),
            );
            let root = ipfs_car_pack(&bin, d, &theirs, flags);
            assert_eq!(
                cid_of_path(Profile::IpfsCar, d, hidden).unwrap().to_string(),
                root,
                "{}",
                d.display()
            );
            let opts = WalkOptions { hidden, wrap: false };
            assert_eq!(
                our_pack(Profile::IpfsCar, d, &ours, opts),
                root,
                "{}",
                d.display()
            );
            assert_same_file(&theirs, &ours);
            if d.ends_with("plain") {
                // No HAMT, empty dir, symlink or hidden file: v1-2025 agrees with ipfs-car.
                assert_eq!(
                    cid_of_path(Profile::UnixfsV1_2025, d, hidden)
                        .unwrap()
                        .to_string(),
                    root
                );
            }
        }
    }
}

#[test]
fn directories_match_kubo_when_profile_v0() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = dir_corpus(&tmp.path().join("in"));
    let Some(cids) = kubo_cids(&dirs, &tmp.path().join("repo")) else {
        return;
    };
    for d in &dirs {
        let ours = cid_of_path(Profile::UnixfsV0_2015, d, true).unwrap().to_string();
        assert_eq!(Some(&ours), cids.get(d), "{}", d.display());
    }
}

/// `cid DIR` lists every entry as `ipfs add -r` does: each with the CID
/// kubo gives that path on its own, files first, directories after their
/// contents, the root last.
#[test]
fn every_listed_entry_matches_kubo_when_profile_v0() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("in/tree");
    write_tree(&tree, true);
    let mut listed: Vec<(PathBuf, String)> = Vec::new();
    let opts = WalkOptions {
        hidden: true,
        wrap: false,
    };
    let root = add_path_listed(
        Profile::UnixfsV0_2015,
        &tree,
        &opts,
        &mut Discard,
        &|_| {},
        &mut |p, b| listed.push((p.to_owned(), b.cid.to_string())),
    )
    .unwrap();
    let on_disk = walkdir(&tree);
    assert_eq!(listed.len(), on_disk.len(), "{listed:?}");
    assert_eq!(listed.last().unwrap(), &(tree.clone(), root.cid.to_string()));
    let first_dir = listed.iter().position(|(p, _)| p.is_dir()).unwrap();
    assert!(
        listed[first_dir..].iter().all(|(p, _)| p.is_dir()),
        "files after directories"
    );
    for (i, (p, _)) in listed.iter().enumerate().filter(|(_, (p, _))| p.is_dir()) {
        let inside = listed.iter().position(|(q, _)| q != p && q.starts_with(p));
        assert!(
            inside.is_none_or(|j| j < i),
            "{} listed before its contents",
            p.display()
        );
    }
    // A symlink named on kubo's command line is followed, so it is checked
    // through its parent directory's CID only.
    let listed: Vec<_> = listed.into_iter().filter(|(p, _)| !p.is_symlink()).collect();
    let paths: Vec<PathBuf> = listed.iter().map(|(p, _)| p.clone()).collect();
    let Some(cids) = kubo_cids(&paths, &tmp.path().join("repo")) else {
        return;
    };
    for (p, ours) in &listed {
        assert_eq!(Some(ours), cids.get(p), "{}", p.display());
    }
}

/// Every path under `root`, `root` included.
fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_owned()];
    if root.is_dir() && !root.is_symlink() {
        for e in std::fs::read_dir(root).unwrap() {
            out.extend(walkdir(&e.unwrap().path()));
        }
    }
    out
}

#[test]
fn ipfs_car_accepts_our_cars_when_verifying_and_unpacking() {
    let Some(bin) = ipfs_car() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    write_tree(&plain, false);
    let cases = [
        (Profile::IpfsCar, Order::RootLast, false),
        (Profile::UnixfsV1_2025, Order::Dfs, true),
        (Profile::UnixfsV0_2015, Order::Dfs, false),
        (Profile::UnixfsV0_2015, Order::RootLast, true),
    ];
    for (i, (profile, order, dedup)) in cases.into_iter().enumerate() {
        let car = tmp.path().join(format!("c{i}.car"));
        pack_file(
            profile,
            &plain,
            &WalkOptions::default(),
            &car,
            order,
            dedup,
            &|_| {},
        )
        .unwrap();
        run(Command::new(&bin).arg("blocks").arg(&car).arg("--verify"));
        let out = tmp.path().join(format!("u{i}"));
        run(Command::new(&bin)
            .arg("unpack")
            .arg(&car)
            .arg("--verify")
            .arg("--output")
            .arg(&out));
        for rel in [
            "a/y/z.bin",
            "日本語/ファイル.txt",
            "z/deep/er/still/leaf",
            "b-dup2.bin",
        ] {
            assert_same_file(&plain.join(rel), &out.join(rel));
        }
    }
}

fn storacha_dry_run(script: &Path, input: &Path, shard_size: u64, out: &Path) -> serde_json::Value {
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .arg(input)
        .arg("--shard-size")
        .arg(shard_size.to_string())
        .arg("--out")
        .arg(out);
    serde_json::from_str(&run(&mut cmd)).unwrap()
}

#[test]
fn shards_and_index_match_storacha_when_dry_run() {
    let Some(script) = storacha() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    write_tree(&plain, false);
    let flat = tmp.path().join("flat1001");
    write_flat(&flat, 1001, 8);
    for (i, (dir, size)) in [(&plain, 1_100_000u64), (&plain, 2_500_000), (&flat, 133_169_152)]
        .into_iter()
        .enumerate()
    {
        let theirs = storacha_dry_run(&script, dir, size, &tmp.path().join(format!("t{i}")));
        let out = tmp.path().join(format!("o{i}"));
        let mut sw = ShardWriter::create(&out, size).unwrap();
        let built = add_path(Profile::IpfsCar, dir, &WalkOptions::default(), &mut sw, &|_| {}).unwrap();
        let ours = sw.finish(&built.cid).unwrap();
        assert_eq!(theirs["root"], ours.root.to_string());
        let their_shards = theirs["shards"].as_array().unwrap();
        assert_eq!(
            their_shards.len(),
            ours.shards.len(),
            "shard count for size {size}"
        );
        for (t, o) in their_shards.iter().zip(&ours.shards) {
            assert_eq!(t["shard"], o.cid.to_string());
            assert_eq!(t["size"], o.size);
            let roots: Vec<String> = o.roots.iter().map(|r| r.to_string()).collect();
            assert_eq!(t["roots"], serde_json::json!(roots));
        }
        assert_eq!(theirs["index"], ours.index.to_string());
    }
}

#[test]
fn final_shard_overflow_matches_storacha_when_root_header_does_not_fit() {
    let Some(script) = storacha() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("two-chunks.bin");
    std::fs::write(&f, pseudo(M1 + 1000, 5)).unwrap();
    // Pick (not predict) a shard size where all blocks fit under a root-less
    // header (18 bytes) but not under the final shard's root header (59).
    let mut sink = ipfs_kit_fuse::car::MemorySink::default();
    let opts = WalkOptions::default();
    add_path(Profile::IpfsCar, &f, &opts, &mut sink, &|_| {}).unwrap();
    let body: u64 = sink
        .blocks
        .iter()
        .map(|(c, b)| ipfs_kit_fuse::car::section_len(c, b.len()))
        .sum();
    let size = body + 18 + 20;
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .arg(&f)
        .arg("--no-wrap")
        .arg("--shard-size")
        .arg(size.to_string());
    let theirs: serde_json::Value = serde_json::from_str(&run(&mut cmd)).unwrap();
    let mut sw = ShardWriter::create(&tmp.path().join("o"), size).unwrap();
    let built = add_path(Profile::IpfsCar, &f, &opts, &mut sw, &|_| {}).unwrap();
    let ours = sw.finish(&built.cid).unwrap();
    assert_eq!(
        theirs["shards"].as_array().unwrap().len(),
        2,
        "the oracle moved a block out"
    );
    assert_eq!(ours.shards.len(), 2);
    for (t, o) in theirs["shards"].as_array().unwrap().iter().zip(&ours.shards) {
        assert_eq!(t["shard"], o.cid.to_string());
    }
    assert_eq!(theirs["index"], ours.index.to_string());
}
