//! The filesystem core without a kernel: `daemon::build_fs` (the production
//! wiring) on memory and fs mounts, driven through `Fs` methods the way the
//! kernel would call them. Covers create/write/read-back while open, flush
//! and release, rename (in place, over a file, of open files, EXDEV across
//! mounts), unlink, rmdir ENOTEMPTY, EROFS on a read-only mount and on the
//! synthetic root, readdir snapshots, readdirplus (attributes and the lookup
//! counts it carries), and a failing upload that keeps its staged file (with
//! its sidecar) and is retried.

use async_trait::async_trait;
use bytes::Bytes;
use ipfs_kit_fuse::backend::Backend;
use ipfs_kit_fuse::config::{Config, WriteMode};
use ipfs_kit_fuse::daemon::{build_fs, MountSpec};
use ipfs_kit_fuse::fs::staging::StagingDir;
use ipfs_kit_fuse::fs::{Attr, Fs, FsError, FsOptions, Kind, Owner, SetAttr, ROOT_INO};
use ipfs_kit_fuse::fuse::MountOptions;
use ipfs_kit_fuse::vfs::{Meta, MountTree, Router, Tree, VfsError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A core over `config` with its data home in `home`.
fn core(home: &Path, config: Config) -> Arc<Fs> {
    build_fs(&MountSpec {
        mountpoint: home.join("unused-mountpoint"),
        config,
        options: MountOptions::default(),
        home: home.to_path_buf(),
    })
    .expect("build_fs")
}

/// The built-in default (`/local` fs in the home, `/memory`).
fn default_core(home: &Path) -> Arc<Fs> {
    core(home, Config::builtin(home))
}

fn errno<T>(r: Result<T, FsError>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.errno(),
    }
}

async fn ino(fs: &Fs, path: &str) -> u64 {
    let mut cur = ROOT_INO;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        cur = fs
            .lookup(cur, part)
            .await
            .unwrap_or_else(|e| panic!("lookup {part} of {path}: {e}"))
            .attr
            .ino;
    }
    cur
}

/// Creates `name` in `parent` with `data`, flushed and closed.
async fn put(fs: &Fs, parent: u64, name: &str, data: &[u8]) -> u64 {
    let (e, o) = fs.create(parent, name, 0o644, false).await.unwrap();
    assert_eq!(fs.write(o.fh, 0, data).await.unwrap() as usize, data.len());
    fs.flush(o.fh).await.unwrap();
    fs.release(o.fh).await.unwrap();
    e.attr.ino
}

/// Reads a whole file by opening it read-only.
async fn get(fs: &Fs, ino: u64) -> Vec<u8> {
    let o = fs.open(ino, false, false).await.unwrap();
    let mut out = Vec::new();
    loop {
        let b = fs.read(o.fh, out.len() as u64, 1 << 20).await.unwrap();
        if b.is_empty() {
            break;
        }
        out.extend_from_slice(&b);
    }
    fs.release(o.fh).await.unwrap();
    out
}

async fn names(fs: &Fs, dir: u64) -> Vec<String> {
    let o = fs.opendir(dir).await.unwrap();
    let v = fs.readdir(o.fh, 0).unwrap();
    fs.releasedir(o.fh);
    v.into_iter()
        .map(|e| e.name)
        .filter(|n| n != "." && n != "..")
        .collect()
}

/// `readdirplus` on the handle `fh` of `dir` from `offset`, with room for
/// `room` entries: the placed names with their offsets and attributes.
async fn plus(fs: &Fs, dir: u64, fh: u64, offset: u64, room: usize) -> Vec<(String, u64, Attr)> {
    let mut placed = Vec::new();
    fs.readdirplus(dir, fh, offset, |e, entry| {
        if placed.len() == room {
            return true;
        }
        placed.push((e.name.clone(), e.offset, entry.attr));
        false
    })
    .await
    .unwrap();
    placed
}

#[tokio::test]
async fn written_bytes_read_back_when_still_open_and_after_close() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    let mem = ino(&fs, "memory").await;
    let (e, o) = fs.create(mem, "f", 0o600, true).await.unwrap();
    assert_eq!(e.attr.kind, Kind::File);
    assert_eq!(e.attr.perm, 0o600);
    fs.write(o.fh, 0, b"hello ").await.unwrap();
    fs.write(o.fh, 6, b"world").await.unwrap();
    // Before any flush: through the same handle and through a second one.
    assert_eq!(&fs.read(o.fh, 0, 100).await.unwrap()[..], b"hello world");
    let r = fs.open(e.attr.ino, false, false).await.unwrap();
    assert_eq!(&fs.read(r.fh, 6, 100).await.unwrap()[..], b"world");
    assert_eq!(fs.getattr(e.attr.ino).await.unwrap().size, 11);
    fs.release(r.fh).await.unwrap();
    fs.flush(o.fh).await.unwrap();
    fs.release(o.fh).await.unwrap();
    assert_eq!(get(&fs, e.attr.ino).await, b"hello world");
    assert!(
        fs.staging().leftovers().unwrap().is_empty(),
        "staging not cleaned after upload"
    );
}

/// A core whose `/local` mount stages writes, with `w` created in it:
/// the core, the backing file and the open handle.
async fn staged_local_file(home: &Path) -> (Arc<Fs>, std::path::PathBuf, u64) {
    let mut config = Config::builtin(home);
    config.mounts[0].writes = Some(WriteMode::Staged);
    let fs = core(home, config);
    let local = ino(&fs, "local").await;
    let (_, o) = fs.create(local, "w", 0o644, true).await.unwrap();
    (fs, home.join("vfs/local/w"), o.fh)
}

#[tokio::test]
async fn writes_reach_the_fs_backend_only_when_flushed_when_staged() {
    let t = tempfile::tempdir().unwrap();
    let (fs, backing, fh) = staged_local_file(t.path()).await;
    fs.write(fh, 0, b"abc").await.unwrap();
    assert_eq!(std::fs::read(&backing).unwrap(), b"", "uploaded before flush");
    fs.flush(fh).await.unwrap();
    assert_eq!(std::fs::read(&backing).unwrap(), b"abc");
    fs.write(fh, 3, b"def").await.unwrap();
    fs.release(fh).await.unwrap();
    assert_eq!(std::fs::read(&backing).unwrap(), b"abcdef");
}

/// A close by a child that inherited the descriptor (another process than
/// the opener) uploads nothing; the opener's close does, and so does the
/// last close whoever makes it.
#[tokio::test]
async fn a_flush_from_another_process_than_the_opener_uploads_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (fs, backing, fh) = staged_local_file(t.path()).await;
    fs.opened_by(fh, std::process::id());
    fs.write(fh, 0, b"abc").await.unwrap();
    let mut child = std::process::Command::new("sleep").arg("10").spawn().unwrap();
    let flushed = fs.flush_from(fh, child.id()).await;
    assert_eq!(std::fs::read(&backing).unwrap(), b"", "a child's close uploaded");
    flushed.unwrap();
    // A caller that cannot be told (outside our pid namespace): uploads.
    fs.write(fh, 3, b"d").await.unwrap();
    fs.flush_from(fh, 0).await.unwrap();
    assert_eq!(std::fs::read(&backing).unwrap(), b"abcd");
    fs.write(fh, 4, b"ef").await.unwrap();
    fs.flush_from(fh, child.id()).await.unwrap();
    assert_eq!(std::fs::read(&backing).unwrap(), b"abcd");
    fs.flush_from(fh, std::process::id()).await.unwrap();
    assert_eq!(std::fs::read(&backing).unwrap(), b"abcdef");
    fs.write(fh, 6, b"g").await.unwrap();
    fs.release(fh).await.unwrap();
    assert_eq!(std::fs::read(&backing).unwrap(), b"abcdefg");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn writes_reach_the_fs_backend_at_once_and_skip_staging_by_default() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    let local = ino(&fs, "local").await;
    let backing = t.path().join("vfs/local/w");
    let (e, o) = fs.create(local, "w", 0o644, true).await.unwrap();
    assert!(backing.is_file(), "create did not make the backing file");
    fs.write(o.fh, 0, b"abc").await.unwrap();
    assert_eq!(std::fs::read(&backing).unwrap(), b"abc");
    assert!(
        fs.staging().leftovers().unwrap().is_empty(),
        "staged a direct write"
    );
    // Opening with O_TRUNC empties the backing file; writes at an offset keep the rest.
    fs.release(o.fh).await.unwrap();
    let o = fs.open(e.attr.ino, true, true).await.unwrap();
    assert_eq!(std::fs::read(&backing).unwrap(), b"");
    fs.write(o.fh, 0, b"0123456789").await.unwrap();
    fs.write(o.fh, 2, b"xy").await.unwrap();
    assert_eq!(&fs.read(o.fh, 0, 100).await.unwrap()[..], b"01xy456789");
    assert_eq!(fs.getattr(e.attr.ino).await.unwrap().size, 10);
    fs.release(o.fh).await.unwrap();
    assert_eq!(std::fs::read(&backing).unwrap(), b"01xy456789");
    assert_eq!(fs.pending().await.files, 0);
}

#[tokio::test]
async fn rest_of_a_file_is_kept_when_writing_at_an_offset_or_truncating() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    let mem = ino(&fs, "memory").await;
    let f = put(&fs, mem, "f", b"0123456789").await;
    let o = fs.open(f, true, false).await.unwrap();
    fs.write(o.fh, 4, b"xy").await.unwrap();
    fs.release(o.fh).await.unwrap();
    assert_eq!(get(&fs, f).await, b"0123xy6789");
    // Truncate by path (no handle open): uploads at once.
    let a = fs
        .setattr(
            f,
            SetAttr {
                size: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(a.size, 3);
    assert_eq!(get(&fs, f).await, b"012");
    // O_TRUNC open empties it.
    let o = fs.open(f, true, true).await.unwrap();
    fs.release(o.fh).await.unwrap();
    assert!(get(&fs, f).await.is_empty());
}

#[tokio::test]
async fn rename_replaces_the_target_when_inside_one_mount() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    for mount in ["memory", "local"] {
        let m = ino(&fs, mount).await;
        let a = put(&fs, m, "a", b"from a").await;
        put(&fs, m, "b", b"old b").await;
        fs.rename(m, "a", m, "b", false).await.unwrap();
        assert_eq!(names(&fs, m).await, ["b"], "{mount}");
        assert_eq!(get(&fs, ino(&fs, &format!("{mount}/b")).await).await, b"from a");
        // The inode follows its name.
        assert_eq!(get(&fs, a).await, b"from a");
        assert_eq!(errno(fs.lookup(m, "a").await), libc::ENOENT);
        // RENAME_NOREPLACE refuses an existing target.
        put(&fs, m, "c", b"c").await;
        assert_eq!(
            errno(fs.rename(m, "c", m, "b", true).await),
            libc::EEXIST,
            "{mount}"
        );
    }
}

#[tokio::test]
async fn dirty_file_uploads_under_the_new_name_when_renamed_while_open() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    let local = ino(&fs, "local").await;
    let (e, o) = fs.create(local, "tmp", 0o644, true).await.unwrap();
    fs.write(o.fh, 0, b"first").await.unwrap();
    fs.rename(local, "tmp", local, "final", false).await.unwrap();
    fs.write(o.fh, 5, b"+more").await.unwrap();
    fs.release(o.fh).await.unwrap();
    assert_eq!(
        std::fs::read(t.path().join("vfs/local/final")).unwrap(),
        b"first+more"
    );
    assert!(!t.path().join("vfs/local/tmp").exists());
    assert_eq!(get(&fs, e.attr.ino).await, b"first+more");
}

#[tokio::test]
async fn directory_contents_move_when_the_directory_is_renamed() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    for mount in ["memory", "local"] {
        let m = ino(&fs, mount).await;
        let d = fs.mkdir(m, "d", 0o755).await.unwrap().attr.ino;
        let sub = fs.mkdir(d, "sub", 0o755).await.unwrap().attr.ino;
        put(&fs, sub, "f", b"deep").await;
        fs.rename(m, "d", m, "e", false).await.unwrap();
        assert_eq!(names(&fs, m).await, ["e"], "{mount}");
        assert_eq!(
            get(&fs, ino(&fs, &format!("{mount}/e/sub/f")).await).await,
            b"deep"
        );
        // A directory cannot move into itself.
        let e = ino(&fs, &format!("{mount}/e")).await;
        let sub = ino(&fs, &format!("{mount}/e/sub")).await;
        assert_eq!(
            errno(fs.rename(m, "e", sub, "x", false).await),
            libc::EINVAL,
            "{mount}"
        );
        assert_eq!(names(&fs, e).await, ["sub"]);
    }
}

#[tokio::test]
async fn rename_is_exdev_and_changes_nothing_when_crossing_mounts() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    let mem = ino(&fs, "memory").await;
    let local = ino(&fs, "local").await;
    put(&fs, mem, "x", b"stay").await;
    assert_eq!(errno(fs.rename(mem, "x", local, "x", false).await), libc::EXDEV);
    assert_eq!(names(&fs, mem).await, ["x"]);
    assert!(names(&fs, local).await.is_empty());
}

#[tokio::test]
async fn rmdir_is_enotempty_when_the_directory_has_entries() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    for mount in ["memory", "local"] {
        let m = ino(&fs, mount).await;
        let d = fs.mkdir(m, "d", 0o755).await.unwrap().attr.ino;
        put(&fs, d, "f", b"x").await;
        assert_eq!(errno(fs.rmdir(m, "d").await), libc::ENOTEMPTY, "{mount}");
        assert_eq!(errno(fs.unlink(m, "d").await), libc::EISDIR, "{mount}");
        assert_eq!(errno(fs.rmdir(d, "f").await), libc::ENOTDIR, "{mount}");
        assert_eq!(errno(fs.mkdir(m, "d", 0o755).await), libc::EEXIST, "{mount}");
        fs.unlink(d, "f").await.unwrap();
        assert_eq!(errno(fs.unlink(d, "f").await), libc::ENOENT, "{mount}");
        fs.rmdir(m, "d").await.unwrap();
        assert!(names(&fs, m).await.is_empty(), "{mount}");
        assert_eq!(errno(fs.lookup(m, "d").await), libc::ENOENT);
    }
    assert!(!t.path().join("vfs/local/d").exists());
}

#[tokio::test]
async fn file_stays_readable_and_is_never_uploaded_when_unlinked_while_open() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    let local = ino(&fs, "local").await;
    let (e, o) = fs.create(local, "ghost", 0o644, true).await.unwrap();
    fs.write(o.fh, 0, b"boo").await.unwrap();
    fs.unlink(local, "ghost").await.unwrap();
    assert_eq!(&fs.read(o.fh, 0, 10).await.unwrap()[..], b"boo");
    assert_eq!(fs.getattr(e.attr.ino).await.unwrap().nlink, 0);
    fs.release(o.fh).await.unwrap();
    assert!(
        !t.path().join("vfs/local/ghost").exists(),
        "unlinked file was uploaded"
    );
    assert!(fs.staging().leftovers().unwrap().is_empty());
}

#[tokio::test]
async fn mutations_are_erofs_when_aimed_at_the_synthetic_root() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    assert_eq!(names(&fs, ROOT_INO).await, ["local", "memory"]);
    assert_eq!(errno(fs.create(ROOT_INO, "f", 0o644, false).await), libc::EROFS);
    assert_eq!(errno(fs.mkdir(ROOT_INO, "d", 0o755).await), libc::EROFS);
    assert_eq!(errno(fs.rmdir(ROOT_INO, "local").await), libc::EROFS);
    assert_eq!(errno(fs.unlink(ROOT_INO, "local").await), libc::EROFS);
    assert_eq!(
        errno(fs.rename(ROOT_INO, "local", ROOT_INO, "x", false).await),
        libc::EROFS
    );
    assert_eq!(errno(fs.access(ROOT_INO, true).await), libc::EROFS);
    fs.access(ROOT_INO, false).await.unwrap();
    assert_eq!(fs.getattr(ROOT_INO).await.unwrap().perm & 0o222, 0);
    assert_eq!(errno(fs.lookup(ROOT_INO, "nosuch").await), libc::ENOENT);
}

#[tokio::test]
async fn mutations_are_erofs_when_the_mount_is_read_only() {
    let t = tempfile::tempdir().unwrap();
    let backing = t.path().join("ro");
    std::fs::create_dir_all(backing.join("d")).unwrap();
    std::fs::write(backing.join("f"), b"data").unwrap();
    let cfg = Config::parse(&format!(
        "[[mount]]\npath = \"/ro\"\nscheme = \"fs\"\nread_only = true\n[mount.options]\nroot = \"{}\"\n",
        backing.display()
    ))
    .unwrap();
    let fs = core(t.path(), cfg);
    let ro = ino(&fs, "ro").await;
    let f = ino(&fs, "ro/f").await;
    assert_eq!(get(&fs, f).await, b"data");
    assert_eq!(errno(fs.create(ro, "n", 0o644, false).await), libc::EROFS);
    assert_eq!(errno(fs.mkdir(ro, "n", 0o755).await), libc::EROFS);
    assert_eq!(errno(fs.unlink(ro, "f").await), libc::EROFS);
    assert_eq!(errno(fs.rmdir(ro, "d").await), libc::EROFS);
    assert_eq!(errno(fs.rename(ro, "f", ro, "g", false).await), libc::EROFS);
    assert_eq!(errno(fs.open(f, true, false).await), libc::EROFS);
    let trunc = SetAttr {
        size: Some(0),
        ..Default::default()
    };
    assert_eq!(errno(fs.setattr(f, trunc).await), libc::EROFS);
    assert_eq!(errno(fs.access(f, true).await), libc::EROFS);
    assert_eq!(std::fs::read(backing.join("f")).unwrap(), b"data");
}

#[tokio::test]
async fn readdir_offsets_stay_stable_when_entries_change_after_opendir() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    let mem = ino(&fs, "memory").await;
    for n in ["a", "b", "c"] {
        put(&fs, mem, n, b"").await;
    }
    let o = fs.opendir(mem).await.unwrap();
    let first = fs.readdir(o.fh, 0).unwrap();
    let all: Vec<&str> = first.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(all, [".", "..", "a", "b", "c"]);
    fs.unlink(mem, "b").await.unwrap();
    put(&fs, mem, "d", b"").await;
    // Resuming after "a" (its offset) gives the rest of the snapshot.
    let rest = fs.readdir(o.fh, first[2].offset).unwrap();
    let rest: Vec<&str> = rest.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(rest, ["b", "c"]);
    fs.releasedir(o.fh);
    assert_eq!(names(&fs, mem).await, ["a", "c", "d"]);
    assert_eq!(errno(fs.readdir(o.fh, 0)), libc::EBADF);
}

#[tokio::test]
async fn requests_are_rejected_when_names_are_too_long_or_handles_unknown() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    let mem = ino(&fs, "memory").await;
    let long = "x".repeat(256);
    assert_eq!(
        errno(fs.create(mem, &long, 0o644, false).await),
        libc::ENAMETOOLONG
    );
    assert_eq!(errno(fs.lookup(mem, &long).await), libc::ENAMETOOLONG);
    put(&fs, mem, &"y".repeat(255), b"ok").await;
    assert_eq!(errno(fs.getattr(987_654).await), libc::ESTALE);
    assert_eq!(errno(fs.read(424_242, 0, 1).await), libc::EBADF);
}

#[tokio::test]
async fn attributes_show_chmod_chown_utimens_when_set_while_the_inode_lives() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    let mem = ino(&fs, "memory").await;
    let f = put(&fs, mem, "f", b"x").await;
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let a = fs
        .setattr(
            f,
            SetAttr {
                mode: Some(0o100600),
                uid: Some(4242),
                gid: Some(4343),
                mtime: Some(when),
                atime: Some(when),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (a.perm, a.uid, a.gid, a.mtime, a.atime),
        (0o600, 4242, 4343, when, when)
    );
    let b = fs.getattr(f).await.unwrap();
    assert_eq!((b.perm, b.uid, b.mtime), (0o600, 4242, when));
}

/// A memory tree whose uploads fail while `fail` is set.
struct FlakyTree {
    inner: MountTree,
    fail: AtomicBool,
}

#[async_trait]
impl Tree for FlakyTree {
    fn read_only(&self) -> bool {
        false
    }
    fn describe(&self) -> String {
        "flaky".into()
    }
    async fn stat(&self, p: &str) -> Result<Meta, VfsError> {
        self.inner.stat(p).await
    }
    async fn list(&self, p: &str) -> Result<Vec<(String, Meta)>, VfsError> {
        self.inner.list(p).await
    }
    async fn read(&self, p: &str, off: u64, len: u64) -> Result<Bytes, VfsError> {
        self.inner.read(p, off, len).await
    }
    async fn upload(&self, p: &str, staged: &Path) -> Result<u64, VfsError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(VfsError::Backend(ipfs_kit_fuse::backend::BackendError::new(
                ipfs_kit_fuse::backend::BackendErrorKind::Other,
                "injected upload failure",
            )));
        }
        self.inner.upload(p, staged).await
    }
    async fn create_file(&self, p: &str) -> Result<(), VfsError> {
        self.inner.create_file(p).await
    }
}

#[tokio::test]
async fn staged_file_is_kept_and_close_is_eio_when_the_upload_fails() {
    let t = tempfile::tempdir().unwrap();
    let backend = Backend::open("memory", &BTreeMap::new(), Duration::from_secs(5)).unwrap();
    let flaky = Arc::new(FlakyTree {
        inner: MountTree::new(backend, false),
        fail: AtomicBool::new(true),
    });
    let router = Arc::new(Router::new());
    assert!(router.add("/flaky", flaky.clone()));
    let staging_dir = t.path().join("staging");
    let fs = Fs::new(
        router,
        StagingDir::new(staging_dir.clone()).unwrap(),
        FsOptions {
            owner: Owner {
                uid: 0,
                gid: 0,
                started: SystemTime::now(),
                shared: false,
            },
            ttl: Duration::from_secs(1),
        },
    );
    let dir = ino(&fs, "flaky").await;
    let (e, o) = fs.create(dir, "precious", 0o644, true).await.unwrap();
    fs.write(o.fh, 0, b"do not lose me").await.unwrap();
    assert_eq!(errno(fs.flush(o.fh).await), libc::EIO);
    assert_eq!(errno(fs.release(o.fh).await), libc::EIO);

    // The data and its sidecar are on disk, naming the target.
    let left = fs.staging().leftovers().unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].1.mount, "/flaky");
    assert_eq!(left[0].1.path, "precious");
    assert_eq!(std::fs::read(&left[0].0).unwrap(), b"do not lose me");
    assert!(left[0].0.starts_with(&staging_dir));
    assert!(left[0].0.with_extension("json").is_file());
    // Still readable through the mount, at its full size.
    assert_eq!(fs.getattr(e.attr.ino).await.unwrap().size, 14);
    let r = fs.open(e.attr.ino, false, false).await.unwrap();
    assert_eq!(&fs.read(r.fh, 0, 100).await.unwrap()[..], b"do not lose me");
    // Every last close retries the upload, and reports that it still fails.
    assert_eq!(errno(fs.release(r.fh).await), libc::EIO);
    assert_eq!(fs.staging().leftovers().unwrap().len(), 1);

    // The drain retries it once the backend works again.
    flaky.fail.store(false, Ordering::SeqCst);
    assert!(fs.flush_all().await.is_empty());
    assert_eq!(
        &flaky.inner.read("precious", 0, 100).await.unwrap()[..],
        b"do not lose me"
    );
}

#[tokio::test]
async fn readdirplus_counts_one_lookup_per_placed_entry_and_none_for_the_rest() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    let mem = ino(&fs, "memory").await;
    for (i, n) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let f = put(&fs, mem, n, &vec![7u8; i + 1]).await;
        fs.forget(f, 1); // the kernel forgot the create's lookup
    }
    let base = fs.counters().await.1;
    let o = fs.opendir(mem).await.unwrap();
    // Room for ".", "..", a, b, c: d is offered, refused, and not counted.
    let first = plus(&fs, mem, o.fh, 0, 5).await;
    let names: Vec<&str> = first.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, [".", "..", "a", "b", "c"]);
    let sizes: Vec<u64> = first[2..].iter().map(|(_, _, a)| a.size).collect();
    assert_eq!(sizes, [1, 2, 3]);
    assert!(first[2..].iter().all(|(_, _, a)| a.kind == Kind::File));
    assert_eq!(fs.counters().await.1, base + 3);
    // The placed inode is the table's: a lookup finds the same one.
    let a = fs.lookup(mem, "a").await.unwrap().attr;
    assert_eq!(a, first[2].2);
    fs.forget(a.ino, 1);

    let rest = plus(&fs, mem, o.fh, first[4].1, 10).await;
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].0.as_str(), rest[0].2.size), ("d", 4));
    assert_eq!(fs.counters().await.1, base + 4);
    // One forget per placed entry frees every inode it made.
    for (_, _, attr) in first[2..].iter().chain(&rest) {
        fs.forget(attr.ino, 1);
    }
    assert_eq!(fs.counters().await.1, base);
    assert!(plus(&fs, mem, o.fh, rest[0].1, 10).await.is_empty());
    fs.releasedir(o.fh);
}

#[tokio::test]
async fn readdirplus_shows_the_staged_size_of_an_open_file_and_leaves_out_names_gone_since_opendir() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    for mount in ["memory", "local"] {
        let dir = ino(&fs, mount).await;
        let f = put(&fs, dir, "open", b"old").await;
        put(&fs, dir, "gone", b"x").await;
        let w = fs.open(f, true, false).await.unwrap();
        fs.write(w.fh, 0, b"ten bytes!").await.unwrap();
        let o = fs.opendir(dir).await.unwrap();
        fs.unlink(dir, "gone").await.unwrap();
        let placed = plus(&fs, dir, o.fh, 0, 100).await;
        let names: Vec<&str> = placed.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, [".", "..", "open"], "{mount}");
        assert_eq!((placed[2].2.ino, placed[2].2.size), (f, 10), "{mount}");
        fs.releasedir(o.fh);
        fs.release(w.fh).await.unwrap();
    }
}

#[tokio::test]
async fn readdirplus_gives_mounts_as_directories_when_listing_the_synthetic_root() {
    let t = tempfile::tempdir().unwrap();
    let fs = default_core(t.path());
    let o = fs.opendir(ROOT_INO).await.unwrap();
    let placed = plus(&fs, ROOT_INO, o.fh, 0, 100).await;
    let names: Vec<&str> = placed.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, [".", "..", "local", "memory"]);
    for (name, _, attr) in &placed[2..] {
        assert_eq!(attr.kind, Kind::Dir, "{name}");
        assert_eq!(*attr, fs.lookup(ROOT_INO, name).await.unwrap().attr, "{name}");
    }
    fs.releasedir(o.fh);
}

/// A memory tree whose listings carry no sizes or times (as some services'
/// do); it does not claim full listing metadata.
struct SizelessTree(MountTree);

#[async_trait]
impl Tree for SizelessTree {
    fn read_only(&self) -> bool {
        false
    }
    fn describe(&self) -> String {
        "sizeless".into()
    }
    async fn stat(&self, p: &str) -> Result<Meta, VfsError> {
        self.0.stat(p).await
    }
    async fn list(&self, p: &str) -> Result<Vec<(String, Meta)>, VfsError> {
        let mut l = self.0.list(p).await?;
        for (_, m) in &mut l {
            m.size = 0;
            m.mtime = None;
        }
        Ok(l)
    }
    async fn read(&self, p: &str, off: u64, len: u64) -> Result<Bytes, VfsError> {
        self.0.read(p, off, len).await
    }
    async fn upload(&self, p: &str, staged: &Path) -> Result<u64, VfsError> {
        self.0.upload(p, staged).await
    }
    async fn create_file(&self, p: &str) -> Result<(), VfsError> {
        self.0.create_file(p).await
    }
}

#[tokio::test]
async fn sizes_come_from_stats_when_a_tree_lists_without_them() {
    let t = tempfile::tempdir().unwrap();
    let backend = Backend::open("memory", &BTreeMap::new(), Duration::from_secs(5)).unwrap();
    let router = Arc::new(Router::new());
    assert!(router.add("/s", Arc::new(SizelessTree(MountTree::new(backend, false)))));
    let fs = Fs::new(
        router,
        StagingDir::new(t.path().join("staging")).unwrap(),
        FsOptions {
            owner: Owner {
                uid: 0,
                gid: 0,
                started: SystemTime::now(),
                shared: false,
            },
            ttl: Duration::from_secs(60),
        },
    );
    let dir = ino(&fs, "s").await;
    put(&fs, dir, "five", b"12345").await;
    put(&fs, dir, "two", b"12").await;
    let o = fs.opendir(dir).await.unwrap();
    let placed = plus(&fs, dir, o.fh, 0, 100).await;
    let sizes: Vec<(&str, u64)> = placed[2..].iter().map(|(n, _, a)| (n.as_str(), a.size)).collect();
    assert_eq!(sizes, [("five", 5), ("two", 2)]);
    fs.releasedir(o.fh);
    // A lookup while that listing is cached still reports the real size.
    assert_eq!(fs.lookup(dir, "five").await.unwrap().attr.size, 5);
    // And what the listing says is absent stays absent.
    assert_eq!(errno(fs.lookup(dir, "none").await), libc::ENOENT);
}
