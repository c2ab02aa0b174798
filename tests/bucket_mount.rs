//! Buckets end to end on a real mount: files written through a bucket mount
//! are indexed (CIDs equal to `ipfs-kit-fuse cid` and to ipfs-car on the
//! same bytes), renames and deletes update the index, `bucket index` catches
//! changes made in the backing store, snapshots keep the old version
//! readable through a prepared CAR, both trees are read-only, pyarrow and
//! DuckDB read the index, corrupt files are moved aside with a clear error,
//! and a killed daemon loses no row.

mod car_common;
mod ipfs_common;
mod support;

use car_common::{ipfs_car, run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{errno, random_bytes, run_cli, xattr, Mounted};

fn bucket_config(root: &Path) -> Option<String> {
    let media = root.join("media");
    let other = root.join("other");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    Some(format!(
        "[[mount]]\npath = \"/buckets/media\"\nscheme = \"fs\"\nbucket = \"media\"\n[mount.options]\nroot = \"{}\"\n\n\
         [[mount]]\npath = \"/buckets/other\"\nscheme = \"fs\"\nbucket = \"other\"\n[mount.options]\nroot = \"{}\"\n",
        media.display(),
        other.display()
    ))
}

/// `ipfs-kit-fuse ARGS -m MNT` (or in-process without a mount), as JSON.
fn cli_json(m: &Mounted, args: &[&str]) -> Value {
    let mnt = m.mnt.display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--json", "-m", &mnt]);
    let out = run_cli(&m.home, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}\nlog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        m.log()
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// path -> cid of `bucket files NAME`.
fn files(m: &Mounted, name: &str) -> Vec<(String, String, u64)> {
    let v = cli_json(m, &["bucket", "files", name]);
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["cid"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn our_cid(m: &Mounted, path: &Path, extra: &[&str]) -> String {
    let p = path.display().to_string();
    let mut args = vec!["cid", "-Q"];
    args.extend(extra);
    args.push(&p);
    let out = run_cli(&m.home, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap_or_default().to_string()
}

fn ipfs_car_root(bin: &Path, input: &Path, extra: &[&str], tmp: &Path) -> String {
    let out = tmp.join(format!("oracle-{}.car", rand::random::<u32>()));
    let mut cmd = Command::new(bin);
    cmd.arg("pack").arg(input).args(extra).arg("--output").arg(&out);
    run(&mut cmd).trim().to_string()
}

/// The entry of bucket `name` in a `bucket list --json` reply.
fn bucket_named(list: &Value, name: &str) -> Value {
    list["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("no bucket {name} in {list}"))
        .clone()
}

fn bucket_row<'a>(rows: &'a [(String, String, u64)], path: &str) -> &'a (String, String, u64) {
    rows.iter()
        .find(|r| r.0 == path)
        .unwrap_or_else(|| panic!("{path} not indexed: {rows:?}"))
}

#[test]
fn writes_renames_and_deletes_through_a_bucket_mount_update_its_index() {
    let m = Mounted::with_config(bucket_config, &[]);
    let dir = m.path("buckets/media");
    std::fs::write(dir.join("a.txt"), b"hello bucket\n").unwrap();
    std::fs::create_dir_all(dir.join("d/e")).unwrap();
    let big = random_bytes(7, 3 * 1024 * 1024 + 11);
    std::fs::write(dir.join("d/b.bin"), &big).unwrap();
    std::fs::write(dir.join("d/e/c.txt"), b"c").unwrap();
    // cp through the mount too (another close path).
    let src = m.root().join("src.bin");
    std::fs::write(&src, random_bytes(8, 200_000)).unwrap();
    run(Command::new("cp").arg(&src).arg(dir.join("copied.bin")));

    let backing = m.root().join("media");
    let rows = files(&m, "media");
    let paths: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(paths, vec!["a.txt", "copied.bin", "d/b.bin", "d/e/c.txt"]);
    for (path, cid, size) in &rows {
        let f = backing.join(path);
        assert_eq!(*size, std::fs::metadata(&f).unwrap().len());
        assert_eq!(cid, &our_cid(&m, &f, &[]), "{path}: row CID differs from `cid`");
    }
    let car = ipfs_car();
    if let Some(bin) = &car {
        for (path, cid, _) in &rows {
            let theirs = ipfs_car_root(bin, &backing.join(path), &["--no-wrap"], m.root());
            assert_eq!(cid, &theirs, "{path}: row CID differs from ipfs-car");
        }
    }
    // The root from the index alone equals the CID of the backing tree.
    let list = cli_json(&m, &["bucket", "list"]);
    let media = bucket_named(&list, "media");
    assert_eq!(media["files"], 4);
    let root = media["root_cid"].as_str().unwrap().to_string();
    assert_eq!(root, our_cid(&m, &backing, &["--hidden"]));
    if let Some(bin) = &car {
        assert_eq!(
            root,
            ipfs_car_root(bin, &backing, &["-H"], m.root()),
            "bucket root differs from ipfs-car"
        );
    }

    // Rename (a file and a directory) and delete.
    std::fs::rename(dir.join("a.txt"), dir.join("a2.txt")).unwrap();
    std::fs::rename(dir.join("d/e"), dir.join("moved")).unwrap();
    std::fs::remove_file(dir.join("copied.bin")).unwrap();
    let after = files(&m, "media");
    let paths: Vec<&str> = after.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(paths, vec!["a2.txt", "d/b.bin", "moved/c.txt"]);
    assert_eq!(bucket_row(&after, "a2.txt").1, bucket_row(&rows, "a.txt").1);
    let root2 = cli_json(&m, &["bucket", "list"])["buckets"][0]["root_cid"].clone();
    assert_eq!(root2.as_str().unwrap(), our_cid(&m, &backing, &["--hidden"]));

    // find-cid finds the file wherever it is.
    let cid = bucket_row(&after, "d/b.bin").1.clone();
    let found = cli_json(&m, &["bucket", "find-cid", &cid]);
    assert_eq!(found["found"][0]["path"], "d/b.bin");
    assert_eq!(found["found"][0]["bucket"], "media");

    // The .buckets tree: listings and bytes from the index, read-only.
    let view = m.path(".buckets/media/files");
    let mut names: Vec<String> = std::fs::read_dir(&view)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["a2.txt", "d", "moved"]);
    assert_eq!(std::fs::read(view.join("d/b.bin")).unwrap(), big);
    assert_eq!(
        std::fs::metadata(view.join("d/b.bin")).unwrap().len(),
        big.len() as u64
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(m.path(".buckets/media/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["root_cid"], root2);
    let w = std::fs::write(view.join("new.txt"), b"x");
    assert_eq!(errno(&w), libc::EROFS);
    let r = std::fs::remove_file(view.join("a2.txt"));
    assert_eq!(errno(&r), libc::EROFS);
    let mk = std::fs::create_dir(m.path(".snapshots/x"));
    assert_eq!(errno(&mk), libc::EROFS);
}

#[test]
fn snapshot_keeps_the_old_version_readable_from_a_prepared_car_after_an_outside_change() {
    let m = Mounted::with_config(bucket_config, &[]);
    let dir = m.path("buckets/media");
    let v1 = random_bytes(21, 1_500_000);
    std::fs::write(dir.join("f.bin"), &v1).unwrap();
    std::fs::write(dir.join("keep.txt"), b"unchanged").unwrap();
    let snap = cli_json(&m, &["bucket", "snapshot", "media"]);
    let id = snap["snapshot_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("snapshot_"), "{id}");
    let global = snap["global_hash"].as_str().unwrap();
    assert!(id.ends_with(&global[..12]), "{id} vs {global}");
    assert!(m.home.join(format!("vfs/snapshots/{id}.json")).exists());
    assert!(m
        .home
        .join(format!("vfs/snapshots/{id}/media_vfs.parquet"))
        .exists());
    let listed = cli_json(&m, &["bucket", "snapshots", "--bucket", "media"]);
    assert_eq!(listed["snapshots"][0]["snapshot_id"], id.as_str());

    let car = cli_json(&m, &["bucket", "prepare-car", "media"]);
    let car_path = PathBuf::from(car["cars"][0]["path"].as_str().unwrap());
    assert!(
        car_path.starts_with(m.home.join("vfs/cars/media")),
        "{car_path:?}"
    );
    assert_eq!(car["root"], snap["buckets"]["media"]["root_cid"]);
    assert_eq!(car["reindexed"].as_array().unwrap().len(), 0);
    if let Some(bin) = ipfs_car() {
        run(Command::new(&bin).arg("blocks").arg(&car_path).arg("--verify"));
        let roots = run(Command::new(&bin).arg("roots").arg(&car_path));
        assert_eq!(roots.trim(), car["root"].as_str().unwrap());
    }
    let list = cli_json(&m, &["bucket", "list"]);
    let media = bucket_named(&list, "media");
    assert_eq!(media["car_ready"], true);
    assert_eq!(media["last_snapshot"], id.as_str());

    // Change the file behind the mount's back, then re-index.
    let backing = m.root().join("media");
    let v2 = random_bytes(22, 900_000);
    std::fs::write(backing.join("f.bin"), &v2).unwrap();
    std::fs::write(backing.join("outside.txt"), b"new outside").unwrap();
    let rep = cli_json(&m, &["bucket", "index", "media"]);
    assert_eq!(rep["hashed"], 2, "{rep}");
    assert_eq!(rep["unchanged"], 1, "{rep}");
    assert_eq!(
        rep["root_cid"].as_str().unwrap(),
        our_cid(&m, &backing, &["--hidden"])
    );
    let rows = files(&m, "media");
    assert_eq!(
        bucket_row(&rows, "f.bin").1,
        our_cid(&m, &backing.join("f.bin"), &[])
    );
    assert_eq!(bucket_row(&rows, "outside.txt").2, 11);

    // Both versions: the new one through .buckets, the old one through the snapshot.
    assert_eq!(std::fs::read(m.path(".buckets/media/files/f.bin")).unwrap(), v2);
    let old = m.path(&format!(".snapshots/{id}/media/f.bin"));
    assert_eq!(std::fs::metadata(&old).unwrap().len(), v1.len() as u64);
    assert_eq!(std::fs::read(&old).unwrap(), v1);
    assert_eq!(
        std::fs::read(m.path(&format!(".snapshots/{id}/media/keep.txt"))).unwrap(),
        b"unchanged"
    );
    let sm: Value =
        serde_json::from_slice(&std::fs::read(m.path(&format!(".snapshots/{id}/manifest.json"))).unwrap())
            .unwrap();
    assert_eq!(sm["snapshot_id"], id.as_str());
    let w = std::fs::write(m.path(&format!(".snapshots/{id}/media/f.bin")), b"x");
    assert_eq!(errno(&w), libc::EROFS);
}

/// The python of the venv scripts/parquet-readers.sh installs, or None
/// (a failure when IPFS_KIT_REQUIRE_PARQUET_READERS=1, as under CI).
fn parquet_python() -> Option<PathBuf> {
    let dir = std::env::var_os("IPFS_KIT_PARQUET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/ipfs-kit-fuse/parquet-readers")
        });
    let py = dir.join("bin/python");
    if dir.join(".installed").exists() && py.exists() {
        return Some(py);
    }
    if std::env::var("IPFS_KIT_REQUIRE_PARQUET_READERS").is_ok_and(|v| v == "1") {
        panic!(
            "pyarrow/duckdb missing in {} (run scripts/parquet-readers.sh)",
            dir.display()
        );
    }
    eprintln!("skipped: pyarrow/duckdb missing; run scripts/parquet-readers.sh");
    None
}

#[test]
fn pyarrow_and_duckdb_read_the_index_and_agree_with_bucket_files() {
    let Some(py) = parquet_python() else { return };
    let m = Mounted::with_config(bucket_config, &[]);
    let dir = m.path("buckets/media");
    for i in 0..40 {
        std::fs::create_dir_all(dir.join(format!("d{}", i % 4))).unwrap();
        std::fs::write(dir.join(format!("d{}/f{i:03}.txt", i % 4)), format!("file {i}\n")).unwrap();
    }
    // Compaction writes the Parquet file (snapshot compacts first).
    cli_json(&m, &["bucket", "snapshot", "media"]);
    let ours = files(&m, "media");
    let index = m.home.join("vfs/buckets/media_vfs.parquet");
    let script = r#"
import sys, json, pyarrow.parquet as pq, duckdb
path = sys.argv[1]
t = pq.read_table(path)
f = pq.ParquetFile(path)
md = f.metadata
rg = md.row_group(0)
cols = {rg.column(i).path_in_schema: rg.column(i) for i in range(rg.num_columns)}
out = {
  "columns": t.column_names,
  "rows": [[p, c, s] for p, c, s in zip(t["path"].to_pylist(), t["cid"].to_pylist(), t["size_bytes"].to_pylist())],
  "compression": cols["cid"].compression,
  "bloom": cols["cid"].bloom_filter_offset is not None and cols["cid"].bloom_filter_offset > 0,
  "stats": cols["path"].is_stats_set,
  "duck": duckdb.sql(f"select path, cid, size_bytes from read_parquet('{path}') order by path").fetchall(),
  "duck_prefix": duckdb.sql(f"select count(*) from read_parquet('{path}') where path like 'd1/%'").fetchall()[0][0],
  "duck_mime": duckdb.sql(f"select distinct mime_type from read_parquet('{path}')").fetchall(),
}
print(json.dumps(out))
"#;
    let out = run(Command::new(&py).arg("-c").arg(script).arg(&index));
    let v: Value = serde_json::from_str(&out).unwrap();
    for c in [
        "file_id",
        "bucket_name",
        "name",
        "path",
        "vfs_path",
        "mount_point",
        "cid",
        "size_bytes",
        "mime_type",
        "uploaded_at",
        "bucket_version",
        "mtime",
        "etag",
        "cid_profile",
        "kind",
        "dag_size",
    ] {
        assert!(
            v["columns"].as_array().unwrap().iter().any(|x| x == c),
            "column {c} missing: {}",
            v["columns"]
        );
    }
    let want: Vec<Value> = ours
        .iter()
        .map(|(p, c, s)| serde_json::json!([p, c, s]))
        .collect();
    assert_eq!(
        v["rows"].as_array().unwrap(),
        &want,
        "pyarrow disagrees with bucket files"
    );
    assert_eq!(
        v["duck"].as_array().unwrap(),
        &want,
        "DuckDB disagrees with bucket files"
    );
    assert_eq!(v["duck_prefix"], 10);
    assert_eq!(v["compression"], "ZSTD");
    assert_eq!(v["bloom"], true, "no bloom filter on cid");
    assert_eq!(v["stats"], true, "no statistics on path");
    assert_eq!(v["duck_mime"], serde_json::json!([["text/plain"]]));
}

#[test]
fn a_killed_daemon_loses_no_row_and_corrupt_files_are_moved_aside() {
    let mut m = Mounted::with_config(bucket_config, &[]);
    let dir = m.path("buckets/media");
    for i in 0..50 {
        std::fs::write(dir.join(format!("f{i:02}")), format!("{i}")).unwrap();
    }
    std::fs::write(m.path("buckets/other/o.txt"), b"other").unwrap();
    let pid = m.pid().expect("daemon pid");
    // SAFETY: kill(2) of the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(support::wait_until(std::time::Duration::from_secs(30), || {
        !support::alive(pid)
    }));
    m.unmount();
    // In-process now (no daemon): every row is there, from the journal.
    let config = m.root().join("config.toml").display().to_string();
    let out = run_cli(
        &m.home,
        &["bucket", "files", "media", "--json", "--config", &config],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 50);

    // A corrupt index: moved aside, named in `bucket list`, the other bucket fine.
    let idx = m.home.join("vfs/buckets/media_vfs.parquet");
    assert!(
        idx.exists(),
        "the in-process run compacted the journal into the index"
    );
    let len = std::fs::metadata(&idx).unwrap().len();
    let bytes = std::fs::read(&idx).unwrap();
    std::fs::write(&idx, &bytes[..(len / 2) as usize]).unwrap();
    let out = run_cli(&m.home, &["bucket", "list", "--json", "--config", &config]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = |n: &str| bucket_named(&v, n);
    let err = b("media")["error"].as_str().unwrap_or_default().to_string();
    assert!(
        err.contains("corrupt") && err.contains("media_vfs.parquet.corrupt-"),
        "{err}"
    );
    assert!(b("other")["error"].is_null());
    assert_eq!(b("other")["files"], 1);
    let aside: Vec<_> = std::fs::read_dir(m.home.join("vfs/buckets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("media_vfs.parquet.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the bad index is kept under a name that says why");
    // `bucket index` rebuilds it from the backend.
    let out = run_cli(
        &m.home,
        &["bucket", "index", "media", "--json", "--config", &config],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_cli(&m.home, &["bucket", "list", "--json", "--config", &config]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let media = bucket_named(&v, "media");
    assert!(media["error"].is_null(), "{media}");
    assert_eq!(media["files"], 50);

    // A corrupt journal line and a corrupt manifest.
    std::fs::write(m.home.join("vfs/buckets/other_vfs.journal"), b"{not json\n").unwrap();
    std::fs::write(m.home.join("vfs/bucket_manifest.json"), b"{\"trunc").unwrap();
    let out = run_cli(&m.home, &["bucket", "list", "--json", "--config", &config]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let other = bucket_named(&v, "other");
    assert!(other["error"].as_str().unwrap().contains("journal"), "{other}");
    let names: Vec<String> = std::fs::read_dir(m.home.join("vfs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("bucket_manifest.json.corrupt-")),
        "{names:?}"
    );
}

/// The xattr names of `path` (listxattr(2)).
fn xattr_names(path: &Path) -> Vec<String> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut buf = vec![0u8; 512];
    // SAFETY: NUL-terminated path; the buffer pointer and length match.
    let r = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(r >= 0, "listxattr {path:?}: {}", std::io::Error::last_os_error());
    buf[..r as usize]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}

#[test]
fn files_of_bucket_mounts_and_both_trees_carry_their_cid_as_an_xattr() {
    let m = Mounted::with_config(bucket_config, &[]);
    let dir = m.path("buckets/media");
    let data = random_bytes(31, 2 * 1024 * 1024 + 5);
    std::fs::create_dir_all(dir.join("d")).unwrap();
    std::fs::write(dir.join("d/x.bin"), &data).unwrap();
    let f = dir.join("d/x.bin");
    let backing = m.root().join("media");
    // Indexed at flush or, for a file the kernel wrote through passthrough,
    // possibly only at the release that follows close(2).
    support::wait_until(std::time::Duration::from_secs(30), || {
        xattr(&f, "user.ipfs.cid").is_ok()
    });
    let cid = xattr(&f, "user.ipfs.cid").expect("user.ipfs.cid of a bucket file");
    // The golden CID: ipfs-car on the same bytes, else our `cid` command.
    let golden = match ipfs_car() {
        Some(bin) => ipfs_car_root(&bin, &backing.join("d/x.bin"), &["--no-wrap"], m.root()),
        None => our_cid(&m, &backing.join("d/x.bin"), &[]),
    };
    assert_eq!(cid, golden);
    assert_eq!(xattr(&f, "user.ipfs.profile").unwrap(), "unixfs-v1-2025");
    assert_eq!(
        xattr_names(&f),
        vec!["user.ipfs.cid".to_string(), "user.ipfs.profile".to_string()]
    );
    // Other names are absent (the kernel's security.capability included).
    assert_eq!(xattr(&f, "security.capability"), Err(libc::ENODATA));
    assert_eq!(xattr(&f, "user.ipfs.other"), Err(libc::ENODATA));
    // Directories carry their UnixFS directory CID, from the index alone:
    // the same as ipfs-car (else our `cid`) packing the backing directory;
    // the bucket's top is its root CID.
    std::fs::create_dir_all(dir.join("d/e")).unwrap();
    std::fs::write(dir.join("d/e/y.txt"), b"why\n").unwrap();
    std::fs::write(dir.join("top.txt"), b"top\n").unwrap();
    let dir_golden = |sub: &Path| match ipfs_car() {
        Some(bin) => ipfs_car_root(&bin, sub, &["-H"], m.root()),
        None => our_cid(&m, sub, &["--hidden"]),
    };
    let d_cid = xattr(&dir.join("d"), "user.ipfs.cid").expect("user.ipfs.cid of a directory");
    assert_eq!(d_cid, dir_golden(&backing.join("d")));
    assert_eq!(
        xattr(&dir.join("d/e"), "user.ipfs.cid").unwrap(),
        dir_golden(&backing.join("d/e"))
    );
    assert_eq!(
        xattr_names(&dir.join("d")),
        vec!["user.ipfs.cid".to_string(), "user.ipfs.profile".to_string()]
    );
    let root_cid = xattr(&dir, "user.ipfs.cid").expect("user.ipfs.cid of the bucket's top");
    assert_eq!(root_cid, dir_golden(&backing));
    let listed = bucket_named(&cli_json(&m, &["bucket", "list"]), "media");
    assert_eq!(listed["root_cid"].as_str().unwrap(), root_cid);
    assert_eq!(
        xattr(&m.path(".buckets/media/files/d"), "user.ipfs.cid").unwrap(),
        d_cid
    );
    assert_eq!(
        xattr(&m.path(".buckets/media/files"), "user.ipfs.cid").unwrap(),
        root_cid
    );
    assert_eq!(
        xattr(&m.path(".buckets/media/files/d"), "user.ipfs.profile").unwrap(),
        "unixfs-v1-2025"
    );
    // `.buckets/media` itself and `.buckets/` are not bucket directories.
    assert_eq!(
        xattr(&m.path(".buckets/media"), "user.ipfs.cid"),
        Err(libc::ENODATA)
    );
    assert_eq!(xattr(&m.path(".buckets"), "user.ipfs.cid"), Err(libc::ENODATA));

    // The same CID in .buckets/, and in a snapshot.
    let in_tree = m.path(".buckets/media/files/d/x.bin");
    assert_eq!(xattr(&in_tree, "user.ipfs.cid").unwrap(), cid);
    assert_eq!(xattr(&in_tree, "user.ipfs.profile").unwrap(), "unixfs-v1-2025");
    assert_eq!(
        xattr(&m.path(".buckets/media/manifest.json"), "user.ipfs.cid"),
        Err(libc::ENODATA)
    );
    let snap = cli_json(&m, &["bucket", "snapshot", "media"]);
    let id = snap["snapshot_id"].as_str().unwrap().to_string();
    let old = m.path(&format!(".snapshots/{id}/media/d/x.bin"));
    assert_eq!(xattr(&old, "user.ipfs.cid").unwrap(), cid);
    let old_d = m.path(&format!(".snapshots/{id}/media/d"));
    let old_root = m.path(&format!(".snapshots/{id}/media"));
    assert_eq!(xattr(&old_d, "user.ipfs.cid").unwrap(), d_cid);
    assert_eq!(xattr(&old_root, "user.ipfs.cid").unwrap(), root_cid);
    assert_eq!(
        snap["buckets"]["media"]["root_cid"].as_str(),
        Some(root_cid.as_str()),
        "{snap}"
    );

    // Rewritten through the mount: the new bytes' CID.
    std::fs::write(&f, b"second version\n").unwrap();
    support::wait_until(std::time::Duration::from_secs(30), || {
        xattr(&f, "user.ipfs.cid").is_ok_and(|c| c != cid)
    });
    let new_cid = xattr(&f, "user.ipfs.cid").unwrap();
    assert_ne!(new_cid, cid);
    assert_eq!(new_cid, our_cid(&m, &backing.join("d/x.bin"), &[]));
    assert_eq!(
        xattr(&old, "user.ipfs.cid").unwrap(),
        cid,
        "the snapshot keeps the old CID"
    );
    // The live directories follow the change; the snapshot's keep theirs.
    assert_eq!(
        xattr(&dir.join("d"), "user.ipfs.cid").unwrap(),
        dir_golden(&backing.join("d"))
    );
    assert_ne!(xattr(&dir.join("d"), "user.ipfs.cid").unwrap(), d_cid);
    assert_eq!(xattr(&old_d, "user.ipfs.cid").unwrap(), d_cid);
    assert_eq!(xattr(&old_root, "user.ipfs.cid").unwrap(), root_cid);

    // Changed behind the mount's back: the row no longer describes the
    // bytes, so the mount claims no CID until `bucket index` runs.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(backing.join("d/x.bin"), b"changed outside, longer than before\n").unwrap();
    assert!(
        support::wait_until(std::time::Duration::from_secs(30), || {
            xattr(&f, "user.ipfs.cid") == Err(libc::ENODATA)
        }),
        "a stale CID is still claimed: {:?}",
        xattr(&f, "user.ipfs.cid")
    );
    cli_json(&m, &["bucket", "index", "media"]);
    assert_eq!(
        xattr(&f, "user.ipfs.cid").unwrap(),
        our_cid(&m, &backing.join("d/x.bin"), &[])
    );
}

/// POSTs `file` as the multipart part `file` to the node's RPC `path_and_query`.
fn rpc_upload(node: &ipfs_common::KuboNode, path_and_query: &str, file: &Path) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-X", "POST", "-F"])
        .arg(format!("file=@{}", file.display()))
        .arg(format!("{}/api/v0/{path_and_query}", node.api))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{path_and_query}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn a_prepared_car_imports_into_a_kubo_rpc_node_which_pins_the_root_and_serves_equal_bytes() {
    let Some(node) = ipfs_common::KuboNode::start() else {
        return;
    };
    let m = Mounted::with_config(bucket_config, &[]);
    let dir = m.path("buckets/media");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let big = random_bytes(41, 3 * 1024 * 1024 + 77);
    let small = b"small file\n".to_vec();
    std::fs::write(dir.join("sub/big.bin"), &big).unwrap();
    std::fs::write(dir.join("small.txt"), &small).unwrap();
    let car = cli_json(&m, &["bucket", "prepare-car", "media"]);
    let root = car["root"].as_str().unwrap().to_string();
    let car_path = PathBuf::from(car["cars"][0]["path"].as_str().unwrap());

    let out = rpc_upload(&node, "dag/import?pin-roots=true", &car_path);
    let text = String::from_utf8_lossy(&out).to_string();
    let imported: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let pinned = imported
        .iter()
        .find_map(|v| v["Root"]["Cid"]["/"].as_str())
        .unwrap_or_else(|| panic!("no root in the import answer: {text}"));
    assert_eq!(pinned, root);
    assert!(
        imported
            .iter()
            .all(|v| v["Root"]["PinErrorMsg"].as_str().unwrap_or("").is_empty()),
        "{text}"
    );
    let pins: Value =
        serde_json::from_slice(&node.rpc(&format!("pin/ls?arg={root}&type=recursive&cid-base=base32")))
            .unwrap();
    assert!(pins["Keys"][&root].is_object(), "root not pinned: {pins}");
    assert_eq!(node.rpc(&format!("cat?arg={root}/sub/big.bin")), big);
    assert_eq!(node.rpc(&format!("cat?arg={root}/small.txt")), small);
    // The node's own CID of the same tree (added from the backing store) is the root.
    assert_eq!(
        node.add(
            &m.root().join("media"),
            "cid-version=1&raw-leaves=true&chunker=size-1048576&cid-base=base32"
        ),
        root,
        "the node's add of the backing tree differs from the bucket root"
    );
}

/// `bucket NAME ...` in-process (no daemon) with `config`, as JSON; `env`
/// is added to the command's environment.
fn offline_json(m: &Mounted, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let config = m.root().join("config.toml").display().to_string();
    let mut cmd = Command::new(support::bin());
    cmd.args(args)
        .args(["--json", "--config", &config])
        .env("IPFS_KIT_HOME", &m.home)
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn a_crash_between_writing_the_index_and_removing_the_journal_loses_nothing() {
    use std::os::unix::process::ExitStatusExt;
    let mut m = Mounted::with_config(bucket_config, &[]);
    let dir = m.path("buckets/media");
    for i in 0..30 {
        std::fs::write(dir.join(format!("f{i:02}")), format!("v1 {i}")).unwrap();
    }
    std::fs::rename(dir.join("f00"), dir.join("renamed")).unwrap();
    std::fs::remove_file(dir.join("f01")).unwrap();
    // A `bucket` call returns once the queued records are in the journal.
    assert_eq!(files(&m, "media").len(), 29);
    let pid = m.pid().expect("daemon pid");
    // SAFETY: kill(2) of the daemon this test started: the journal is not compacted.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(support::wait_until(std::time::Duration::from_secs(30), || {
        !support::alive(pid)
    }));
    m.unmount();
    let journal = m.home.join("vfs/buckets/media_vfs.journal");
    let index = m.home.join("vfs/buckets/media_vfs.parquet");
    assert!(journal.exists() && !index.exists());

    // The in-process command compacts at its end; the hook aborts it after
    // the index is written, with the journal still in place.
    let out = offline_json(
        &m,
        &["bucket", "files", "media"],
        &[("IPFS_KIT_TEST_ABORT_AFTER_INDEX_WRITE", "1")],
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "the hook did not fire: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        index.exists() && journal.exists(),
        "both files are left by the crash"
    );

    // The next start reads the index and skips the journal lines it holds.
    let out = offline_json(&m, &["bucket", "files", "media"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    let mut want: Vec<String> = (2..30).map(|i| format!("f{i:02}")).collect();
    want.push("renamed".into());
    want.sort();
    assert_eq!(paths, want.iter().map(String::as_str).collect::<Vec<_>>());
    let out = offline_json(&m, &["bucket", "list"], &[]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let media = bucket_named(&v, "media");
    assert!(media["error"].is_null(), "{media}");
    assert_eq!(media["files"], 29);
    assert_eq!(
        media["root_cid"].as_str().unwrap(),
        our_cid(&m, &m.root().join("media"), &["--hidden"]),
        "the recovered index describes the backing tree"
    );
}

#[test]
fn a_bucket_on_a_staged_backend_indexes_each_close_from_its_staged_bytes() {
    // A memory backend: writes go through staged copies, which are deleted
    // once uploaded; the index queue hashes them later through the
    // descriptor it was handed at close.
    let m = Mounted::with_config(
        |_| Some("[[mount]]\npath = \"/buckets/mem\"\nscheme = \"memory\"\nbucket = \"mem\"\n".into()),
        &[],
    );
    let dir = m.path("buckets/mem");
    let local = m.root().join("same-bytes");
    let big = random_bytes(7, 3 * 1024 * 1024 + 1);
    for (p, body) in [("big.bin", &big[..]), ("small.txt", b"small"), ("d/x", b"x")] {
        std::fs::create_dir_all(dir.join(p).parent().unwrap()).unwrap();
        std::fs::write(dir.join(p), body).unwrap();
        std::fs::create_dir_all(local.join(p).parent().unwrap()).unwrap();
        std::fs::write(local.join(p), body).unwrap();
    }
    std::fs::rename(dir.join("small.txt"), dir.join("d/small.txt")).unwrap();
    std::fs::rename(local.join("small.txt"), local.join("d/small.txt")).unwrap();
    let rows = files(&m, "mem");
    let paths: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(paths, vec!["big.bin", "d/small.txt", "d/x"]);
    let car = ipfs_car();
    for (p, cid, size) in &rows {
        let golden = match &car {
            Some(bin) => ipfs_car_root(bin, &local.join(p), &["--no-wrap"], m.root()),
            None => our_cid(&m, &local.join(p), &[]),
        };
        assert_eq!(cid, &golden, "{p}");
        assert_eq!(*size, std::fs::metadata(local.join(p)).unwrap().len());
    }
    let root = xattr(&dir, "user.ipfs.cid").unwrap();
    let golden_root = match &car {
        Some(bin) => ipfs_car_root(bin, &local, &["-H"], m.root()),
        None => our_cid(&m, &local, &["--hidden"]),
    };
    assert_eq!(root, golden_root);
    assert_eq!(
        bucket_named(&cli_json(&m, &["bucket", "list"]), "mem")["root_cid"],
        golden_root.as_str()
    );
}

/// Kills the daemon `pid` and waits until it is gone.
fn kill_daemon(pid: i32) {
    // SAFETY: kill(2) of a daemon the calling test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(support::wait_until(std::time::Duration::from_secs(30), || {
        !support::alive(pid)
    }));
}

#[test]
fn records_still_queued_when_the_daemon_died_are_recovered_from_the_backend() {
    // The test hook makes the index queue hold every record: the closes
    // returned (the files are in the backing store), the journal has nothing.
    let hold = [("IPFS_KIT_TEST_HOLD_INDEX_QUEUE", Some("1"))];
    let mut m = Mounted::with_config_env(bucket_config, &[], &hold);
    let dir = m.path("buckets/media");
    std::fs::create_dir_all(dir.join("d")).unwrap();
    for i in 0..20 {
        std::fs::write(dir.join(format!("d/f{i:02}")), format!("queued {i}")).unwrap();
    }
    std::fs::write(dir.join("top.txt"), b"top").unwrap();
    let buckets = m.home.join("vfs/buckets");
    let marker = buckets.join("media_vfs.recording");
    assert!(marker.exists(), "the marker is written before the close returns");
    assert!(
        !buckets.join("media_vfs.journal").exists(),
        "the hook held the records"
    );
    kill_daemon(m.pid().expect("daemon pid"));
    m.unmount();

    // In-process: the marker names a dead process, so the bucket is
    // re-indexed from its backend before the command answers.
    let out = offline_json(&m, &["bucket", "list"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let media = bucket_named(&v, "media");
    assert_eq!(media["files"], 21, "{media}");
    let backing = m.root().join("media");
    let root = media["root_cid"].as_str().unwrap().to_string();
    assert_eq!(root, our_cid(&m, &backing, &["--hidden"]));
    if let Some(bin) = ipfs_car() {
        assert_eq!(root, ipfs_car_root(&bin, &backing, &["-H"], m.root()));
    }
    assert!(!marker.exists(), "the marker is removed once recovered");

    // A daemon: records held again and lost with it; the next daemon
    // re-indexes at start, and a `bucket` call waits for that.
    let mnt = m.mnt.display().to_string();
    let config = m.root().join("config.toml").display().to_string();
    let mount = ["mount", mnt.as_str(), "--config", config.as_str()];
    let out = support::run_cli_env(&m.home, &mount, &hold);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(dir.join("later.txt"), b"written before the second crash").unwrap();
    std::fs::remove_file(dir.join("top.txt")).unwrap();
    kill_daemon(m.pid().expect("daemon pid"));
    m.unmount();
    assert!(marker.exists());
    let out = run_cli(&m.home, &mount);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_cli(&m.home, &["bucket", "files", "media", "--json", "-m", &mnt]);
    // A record of this daemon's own: the clean unmount lands and compacts it.
    let written = std::fs::write(dir.join("final.txt"), b"last");
    m.unmount();
    let log = m.log();
    written.unwrap();
    assert!(!marker.exists(), "a clean unmount leaves no marker");
    assert!(
        !buckets.join("media_vfs.journal").exists(),
        "the unmount compacted the journal"
    );
    assert!(!log.contains("panicked"), "{log}");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: Vec<(String, String)> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["cid"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 21, "{rows:?}");
    assert!(
        !rows.iter().any(|r| r.0 == "top.txt"),
        "the removal was recovered"
    );
    let later = rows
        .iter()
        .find(|r| r.0 == "later.txt")
        .expect("later.txt recovered");
    assert_eq!(later.1, our_cid(&m, &backing.join("later.txt"), &[]));
    let out = offline_json(&m, &["bucket", "files", "media"], &[]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 22, "{v}");
}

#[test]
fn buckets_are_created_and_removed_through_the_cli_and_the_socket_of_a_running_mount() {
    let m = Mounted::with_config(bucket_config, &[]);
    let fresh = m.root().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let root_opt = format!("root={}", fresh.display());
    // Through the CLI (which talks to the daemon's socket).
    let made = cli_json(&m, &["bucket", "create", "fresh", "fs", "-O", &root_opt]);
    assert_eq!(made["path"], "/buckets/fresh");
    let saved = made["saved_to"].as_str().expect("saved to the config file");
    let text = std::fs::read_to_string(saved).unwrap();
    assert!(text.contains("bucket = \"fresh\""), "{text}");
    std::fs::write(m.path("buckets/fresh/n.txt"), b"new bucket").unwrap();
    let rows = files(&m, "fresh");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, our_cid(&m, &fresh.join("n.txt"), &[]));
    assert!(m.path(".buckets/fresh/files/n.txt").exists());
    // A second create of the same name is refused.
    let mnt = m.mnt.display().to_string();
    let out = run_cli(
        &m.home,
        &["bucket", "create", "fresh", "fs", "-O", &root_opt, "-m", &mnt],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fresh"));

    // Through the socket directly: bucket.remove.
    let reply = m
        .socket_client()
        .call_method("bucket.remove", serde_json::json!({"name": "fresh"}), |_| {})
        .unwrap();
    assert_eq!(reply["name"], "fresh", "{reply}");
    let list = cli_json(&m, &["bucket", "list"]);
    assert!(list["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["name"] != "fresh"));
    assert!(!m.path("buckets/fresh").exists(), "the bucket's mount is gone");
    // (after the kernel's attribute TTL for names it had looked up)
    assert!(support::wait_until(std::time::Duration::from_secs(30), || !m
        .path(".buckets/fresh")
        .exists()));
    let text = std::fs::read_to_string(saved).unwrap();
    assert!(!text.contains("bucket = \"fresh\""), "{text}");
    // The other buckets still work, and the data stays in the backend.
    assert_eq!(std::fs::read(fresh.join("n.txt")).unwrap(), b"new bucket");
    std::fs::write(m.path("buckets/media/still.txt"), b"ok").unwrap();
    assert_eq!(files(&m, "media").len(), 1);
}

#[test]
fn a_bucket_with_a_corrupt_journal_is_named_in_status_while_the_others_work() {
    let m = Mounted::with_config(
        |root| {
            let buckets = root.join("home/vfs/buckets");
            std::fs::create_dir_all(&buckets).unwrap();
            std::fs::write(buckets.join("other_vfs.journal"), b"{\"seq\": oops\n{also bad\n").unwrap();
            bucket_config(root)
        },
        &[],
    );
    let st: ipfs_kit_fuse::control::protocol::StatusReply = m
        .socket_client()
        .call(&ipfs_kit_fuse::control::Request::Status)
        .unwrap();
    assert_eq!(st.bucket_errors.len(), 1, "{st:?}");
    assert_eq!(st.bucket_errors[0].bucket, "other");
    assert!(
        st.bucket_errors[0].error.contains("journal") && st.bucket_errors[0].error.contains(".corrupt-"),
        "{st:?}"
    );
    // The CLI prints it too.
    let mnt = m.mnt.display().to_string();
    let out = run_cli(&m.home, &["status", "-m", &mnt]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bucket error  other:"), "{text}");
    // The healthy bucket indexes as usual.
    std::fs::write(m.path("buckets/media/ok.txt"), b"fine").unwrap();
    assert_eq!(files(&m, "media").len(), 1);
}

#[test]
fn a_bucket_with_the_unixfs_v0_2015_profile_gives_the_cids_of_a_kubo_nodes_default_add() {
    let Some(node) = ipfs_common::KuboNode::start() else {
        return;
    };
    let m = Mounted::with_config(
        |root| {
            let v0 = root.join("v0");
            std::fs::create_dir_all(&v0).unwrap();
            Some(format!(
                "{}\n[[mount]]\npath = \"/buckets/v0\"\nscheme = \"fs\"\nbucket = \"v0\"\nprofile = \"unixfs-v0-2015\"\n[mount.options]\nroot = \"{}\"\n",
                bucket_config(root).unwrap(),
                v0.display()
            ))
        },
        &[],
    );
    let dir = m.path("buckets/v0");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    // Over 256 KiB: several dag-pb leaves under this profile.
    std::fs::write(dir.join("sub/big.bin"), random_bytes(51, 700_000)).unwrap();
    std::fs::write(dir.join("a.txt"), b"classic add\n").unwrap();
    let backing = m.root().join("v0");
    // The node's default add (CIDv0, 256 KiB chunks, dag-pb leaves) is the oracle.
    let rows = files(&m, "v0");
    for (path, cid, _) in &rows {
        assert_eq!(cid, &node.add(&backing.join(path), ""), "{path}");
        assert!(cid.starts_with("Qm"), "{cid}");
    }
    assert_eq!(rows.len(), 2);
    let list = cli_json(&m, &["bucket", "list"]);
    let v0 = bucket_named(&list, "v0");
    assert_eq!(v0["profile"], "unixfs-v0-2015");
    assert_eq!(v0["root_cid"].as_str().unwrap(), node.add(&backing, ""));
    assert_eq!(
        xattr(&dir.join("a.txt"), "user.ipfs.profile").unwrap(),
        "unixfs-v0-2015"
    );
    assert_eq!(
        xattr(&m.path(".buckets/v0/files/a.txt"), "user.ipfs.cid").unwrap(),
        bucket_row(&rows, "a.txt").1
    );

    // Created at run time with a profile: saved with it.
    let fresh = m.root().join("car");
    std::fs::create_dir_all(&fresh).unwrap();
    let root_opt = format!("root={}", fresh.display());
    let made = cli_json(
        &m,
        &[
            "bucket",
            "create",
            "viacar",
            "fs",
            "-O",
            &root_opt,
            "--profile",
            "ipfs-car",
        ],
    );
    let text = std::fs::read_to_string(made["saved_to"].as_str().unwrap()).unwrap();
    assert!(text.contains("profile = \"ipfs-car\""), "{text}");
    let mnt = m.mnt.display().to_string();
    let out = run_cli(
        &m.home,
        &[
            "bucket",
            "create",
            "bad",
            "fs",
            "-O",
            &root_opt,
            "--profile",
            "nope",
            "-m",
            &mnt,
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn with_several_mounts_running_an_unnamed_bucket_command_is_refused_not_run_in_process() {
    let a = Mounted::with_config(bucket_config, &[]);
    let _b = Mounted::with_config(bucket_config, &[]);
    let fresh = a.root().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let root_opt = format!("root={}", fresh.display());
    let config = a.home.join("config.toml");
    let before = std::fs::read_to_string(&config).ok();
    let out = run_cli(&a.home, &["bucket", "create", "fresh", "fs", "-O", &root_opt]);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("several mounts are running"), "{err}");
    assert_eq!(std::fs::read_to_string(&config).ok(), before, "config changed");
    assert!(!a.path("buckets/fresh").exists());
}
