//! The `cid` and `car` commands run as a user would (the real binary).

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ipfs-kit-fuse"))
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("d/e")).unwrap();
    std::fs::write(dir.join("hello.txt"), b"hello world").unwrap();
    std::fs::write(dir.join("d/e/big"), vec![3u8; 3 << 20]).unwrap();
    std::fs::write(dir.join(".dot"), b"x").unwrap();
}

#[test]
fn cid_prints_cid_and_path_when_given_files() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("hello.txt");
    std::fs::write(&f, b"hello world").unwrap();
    let out = ok(bin().arg("cid").arg(&f));
    assert_eq!(
        out,
        format!(
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e  {}\n",
            f.display()
        )
    );
    let out = ok(bin().args(["cid", "--profile", "unixfs-v0-2015"]).arg(&f));
    assert!(out.starts_with("Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD  "));
    let out = ok(bin().args(["cid", "--json", "--profile", "storacha"]).arg(&f));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        v["cid"],
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    );
}

#[test]
fn cid_fails_clearly_when_path_missing_or_profile_unknown() {
    let out = bin().args(["cid", "/nonexistent/x"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x"));
    let out = bin().args(["cid", "--profile", "v9", "/"]).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn pack_verify_ls_unpack_round_trip_when_each_order() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    tree(&input);
    let expected = ok(bin().arg("cid").arg("-Q").arg(&input));
    let expected = expected.split_whitespace().next().unwrap();
    for order in ["root-last", "dfs"] {
        let car = tmp.path().join(format!("{order}.car"));
        let root = ok(bin()
            .args(["car", "pack", "--dedup", "--order", order])
            .arg(&input)
            .arg("-o")
            .arg(&car));
        assert_eq!(root.trim(), expected);
        let v = ok(bin().args(["car", "verify", "--json"]).arg(&car));
        let v: serde_json::Value = serde_json::from_str(v.trim()).unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(v["blocks"], 6, "dedup keeps one copy of the repeated 1 MiB leaf");
        let ls = ok(bin().args(["car", "ls"]).arg(&car));
        assert!(ls.contains("/d/e/big"), "{ls}");
        let out = tmp.path().join(format!("out-{order}"));
        ok(bin().args(["car", "unpack"]).arg(&car).arg("-o").arg(&out));
        assert_eq!(std::fs::read(out.join("d/e/big")).unwrap(), vec![3u8; 3 << 20]);
        assert!(!out.join(".dot").exists());
    }
    // DFS order writes the root first.
    let dfs = std::fs::read(tmp.path().join("dfs.car")).unwrap();
    let ls = ok(bin()
        .args(["car", "ls", "--json"])
        .arg(tmp.path().join("dfs.car")));
    assert!(ls.lines().count() >= 4);
    let mut r = ipfs_kit_fuse::car::CarReader::new(std::io::Cursor::new(dfs)).unwrap();
    assert_eq!(r.next_block().unwrap().unwrap().cid.to_string(), expected);
}

#[test]
fn pack_writes_shards_and_index_when_shard_size_given() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    tree(&input);
    std::fs::write(
        input.join("other"),
        (0..2_000_000u32).map(|i| (i % 253) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let out = tmp.path().join("shards");
    let j = ok(bin()
        .args([
            "car",
            "pack",
            "--profile",
            "storacha",
            "--shard-size",
            "1200000",
            "--json",
        ])
        .arg(&input)
        .arg("-o")
        .arg(&out));
    let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    let shards = v["shards"].as_array().unwrap();
    assert!(shards.len() >= 2);
    for (i, s) in shards.iter().enumerate() {
        assert!(s["size"].as_u64().unwrap() <= 1_200_000);
        assert_eq!(s["roots"].as_array().unwrap().is_empty(), i + 1 < shards.len());
        let path = out.join(format!("{}.car", s["shard"].as_str().unwrap()));
        ok(bin().args(["car", "verify"]).arg(path));
    }
    let index = out.join(format!("index-{}.car", v["index"].as_str().unwrap()));
    ok(bin().args(["car", "verify"]).arg(index));
}

#[test]
fn verify_fails_with_offset_when_car_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("f");
    std::fs::write(&input, vec![1u8; 5000]).unwrap();
    let car = tmp.path().join("f.car");
    ok(bin().args(["car", "pack"]).arg(&input).arg("-o").arg(&car));
    let mut bytes = std::fs::read(&car).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 1;
    std::fs::write(&car, &bytes).unwrap();
    let out = bin().args(["car", "verify"]).arg(&car).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("block 0 at byte"), "{err}");
}

#[test]
fn unpack_restores_hamt_dirs_and_symlinks_when_packed_by_us() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(input.join("many")).unwrap();
    for i in 0..1500 {
        std::fs::write(input.join("many").join(format!("entry-{i:05}")), i.to_string()).unwrap();
    }
    std::fs::write(input.join("target.txt"), b"t").unwrap();
    std::os::unix::fs::symlink("target.txt", input.join("link")).unwrap();
    for profile in ["ipfs-car", "unixfs-v0-2015"] {
        let car = tmp.path().join(format!("{profile}.car"));
        ok(bin()
            .args(["car", "pack", "--profile", profile])
            .arg(&input)
            .arg("-o")
            .arg(&car));
        let out = tmp.path().join(format!("out-{profile}"));
        ok(bin().args(["car", "unpack"]).arg(&car).arg("-o").arg(&out));
        assert_eq!(std::fs::read_dir(out.join("many")).unwrap().count(), 1500);
        assert_eq!(
            std::fs::read_to_string(out.join("many/entry-01234")).unwrap(),
            "1234"
        );
        if profile == "unixfs-v0-2015" {
            // kubo-style walks keep symlinks; ipfs-car drops them.
            assert_eq!(
                std::fs::read_link(out.join("link")).unwrap(),
                Path::new("target.txt")
            );
        } else {
            assert!(!out.join("link").exists());
        }
    }
}
