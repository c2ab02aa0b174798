//! The core's staging guarantees without a kernel, over a memory tree whose
//! uploads fail on demand: unlink retires staged data, a forgotten inode
//! with staged data stays reachable (rename of its directory carries it),
//! recovery writes only over the base version and keeps a conflict copy
//! otherwise, checks seals, and refuses a backend with another identity.

use async_trait::async_trait;
use bytes::Bytes;
use ipfs_kit_fuse::backend::{Backend, BackendError, BackendErrorKind};
use ipfs_kit_fuse::fs::staging::StagingDir;
use ipfs_kit_fuse::fs::{Fs, FsError, FsOptions, Owner, ROOT_INO};
use ipfs_kit_fuse::vfs::{Meta, MountTree, Router, Tree, VfsError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A memory tree whose uploads fail while `fail` is set.
struct Flaky {
    inner: MountTree,
    fail: AtomicBool,
    id: String,
}

impl Flaky {
    fn new(id: &str) -> Arc<Flaky> {
        let backend = Backend::open("memory", &BTreeMap::new(), Duration::from_secs(5)).unwrap();
        Arc::new(Flaky {
            inner: MountTree::new(backend, false),
            fail: AtomicBool::new(false),
            id: id.into(),
        })
    }

    async fn get(&self, p: &str) -> Option<Vec<u8>> {
        match self.inner.read(p, 0, 1 << 20).await {
            Ok(b) => Some(b.to_vec()),
            Err(VfsError::NotFound) => None,
            Err(e) => panic!("read {p}: {e}"),
        }
    }

    async fn put(&self, p: &str, data: &[u8]) {
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), data).unwrap();
        self.inner.upload(p, t.path()).await.unwrap();
    }
}

#[async_trait]
impl Tree for Flaky {
    fn read_only(&self) -> bool {
        false
    }
    fn describe(&self) -> String {
        "flaky".into()
    }
    fn identity(&self) -> String {
        self.id.clone()
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
            return Err(VfsError::Backend(BackendError::new(
                BackendErrorKind::Other,
                "injected upload failure",
            )));
        }
        self.inner.upload(p, staged).await
    }
    async fn create_file(&self, p: &str) -> Result<(), VfsError> {
        self.inner.create_file(p).await
    }
    async fn mkdir(&self, p: &str) -> Result<(), VfsError> {
        self.inner.mkdir(p).await
    }
    async fn remove_file(&self, p: &str) -> Result<(), VfsError> {
        self.inner.remove_file(p).await
    }
    async fn remove_dir(&self, p: &str) -> Result<(), VfsError> {
        self.inner.remove_dir(p).await
    }
    async fn rename(&self, from: &str, to: &str, is_dir: bool) -> Result<(), VfsError> {
        self.inner.rename(from, to, is_dir).await
    }
}

/// A core with `tree` at `/m`, staging in `staging`.
fn core(tree: Arc<Flaky>, staging: &Path) -> Fs {
    let router = Arc::new(Router::new());
    assert!(router.add("/m", tree));
    Fs::new(
        router,
        StagingDir::new(staging.to_path_buf()).unwrap(),
        FsOptions {
            owner: Owner {
                uid: 0,
                gid: 0,
                started: SystemTime::now(),
                shared: false,
            },
            ttl: Duration::from_secs(1),
        },
    )
}

fn errno<T>(r: Result<T, FsError>) -> i32 {
    r.err().map(|e| e.errno()).unwrap_or(0)
}

async fn m(fs: &Fs) -> u64 {
    fs.lookup(ROOT_INO, "m").await.unwrap().attr.ino
}

/// Creates `name` in `dir`, writes `data`, and closes it while uploads fail.
async fn staged(fs: &Fs, tree: &Flaky, dir: u64, name: &str, data: &[u8]) -> u64 {
    let (e, o) = fs.create(dir, name, 0o644, false).await.unwrap();
    tree.fail.store(true, Ordering::SeqCst);
    fs.write(o.fh, 0, data).await.unwrap();
    assert_eq!(errno(fs.flush(o.fh).await), libc::EIO);
    assert_eq!(errno(fs.release(o.fh).await), libc::EIO);
    e.attr.ino
}

#[tokio::test]
async fn unlink_after_a_failed_upload_leaves_nothing_to_resurrect() {
    let t = tempfile::tempdir().unwrap();
    let tree = Flaky::new("mem-a");
    let fs = core(tree.clone(), &t.path().join("st"));
    let dir = m(&fs).await;
    let f = staged(&fs, &tree, dir, "f", b"v1 stale").await;
    assert_eq!(fs.staging().leftovers().unwrap().len(), 1);
    fs.forget(f, 1);
    tree.fail.store(false, Ordering::SeqCst);
    fs.unlink(dir, "f").await.unwrap();
    assert!(
        fs.staging().leftovers().unwrap().is_empty(),
        "staged copy outlived its unlink"
    );
    let (_, o) = fs.create(dir, "f", 0o644, false).await.unwrap();
    fs.write(o.fh, 0, b"v2 fresh").await.unwrap();
    fs.release(o.fh).await.unwrap();
    assert!(fs.pending().await.files == 0);

    // A restart over the same staging directory finds nothing to upload.
    let fs2 = core(tree.clone(), &t.path().join("st"));
    let r = fs2.recover(fs2.scan_leftovers().unwrap()).await;
    assert!(
        r.uploaded.is_empty() && r.conflicts.is_empty() && r.kept.is_empty(),
        "{r:?}"
    );
    assert_eq!(tree.get("f").await.as_deref(), Some(&b"v2 fresh"[..]));
}

#[tokio::test]
async fn a_forgotten_inode_keeps_its_staged_data_through_a_directory_rename() {
    let t = tempfile::tempdir().unwrap();
    let tree = Flaky::new("mem-b");
    let fs = core(tree.clone(), &t.path().join("st"));
    let root = m(&fs).await;
    let d = fs.mkdir(root, "d", 0o755).await.unwrap().attr.ino;
    let f = staged(&fs, &tree, d, "f", b"child").await;
    // The kernel forgets both (as after a failed lookup and memory pressure).
    fs.forget(f, 1);
    fs.forget(d, 1);
    tree.fail.store(false, Ordering::SeqCst);
    fs.rename(root, "d", root, "e", false).await.unwrap();
    assert_eq!(tree.get("e/f").await.as_deref(), Some(&b"child"[..]));
    assert_eq!(tree.get("d/f").await, None);
    assert!(fs.flush_all().await.is_empty());
    assert_eq!(fs.pending().await.files, 0);
    assert!(fs.staging().leftovers().unwrap().is_empty());
}

#[tokio::test]
async fn recovery_writes_over_the_base_only_and_keeps_conflicts_beside() {
    let t = tempfile::tempdir().unwrap();
    let tree = Flaky::new("mem-c");
    tree.put("changed", b"original").await;
    let fs = core(tree.clone(), &t.path().join("st"));
    let dir = m(&fs).await;
    staged(&fs, &tree, dir, "same", b"mine").await;
    let c = fs.lookup(dir, "changed").await.unwrap().attr.ino;
    tree.fail.store(false, Ordering::SeqCst);
    let o = fs.open(c, true, false).await.unwrap();
    tree.fail.store(true, Ordering::SeqCst);
    fs.write(o.fh, 0, b"MINE").await.unwrap();
    assert_eq!(errno(fs.release(o.fh).await), libc::EIO);
    drop(fs);
    tree.fail.store(false, Ordering::SeqCst);
    tree.put("changed", b"theirs").await;

    let fs2 = core(tree.clone(), &t.path().join("st"));
    let r = fs2.recover(fs2.scan_leftovers().unwrap()).await;
    assert_eq!(r.uploaded, vec!["/m/same".to_string()], "{r:?}");
    assert_eq!(r.conflicts.len(), 1, "{r:?}");
    assert_eq!(tree.get("same").await.as_deref(), Some(&b"mine"[..]));
    assert_eq!(tree.get("changed").await.as_deref(), Some(&b"theirs"[..]));
    let copy = r.conflicts[0].1.strip_prefix("/m/").unwrap().to_string();
    assert!(copy.starts_with("changed.ipfs-kit-conflict-"), "{copy}");
    assert_eq!(tree.get(&copy).await.as_deref(), Some(&b"MINEinal"[..]));
    assert!(fs2.staging().leftovers().unwrap().is_empty());
}

#[tokio::test]
async fn a_torn_sealed_copy_goes_beside_the_file_and_another_backend_gets_nothing() {
    let t = tempfile::tempdir().unwrap();
    let tree = Flaky::new("mem-d");
    let fs = core(tree.clone(), &t.path().join("st"));
    let dir = m(&fs).await;
    staged(&fs, &tree, dir, "torn", b"0123456789").await;
    drop(fs);
    // Power loss: the sealed bytes lose their tail.
    let left = StagingDir::new(t.path().join("st")).unwrap().leftovers().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&left[0].0)
        .unwrap()
        .set_len(4)
        .unwrap();
    tree.fail.store(false, Ordering::SeqCst);

    // Another backend mounted at /m now: kept, not written there.
    let other = Flaky::new("mem-other");
    let fs2 = core(other.clone(), &t.path().join("st"));
    let r = fs2.recover(fs2.scan_leftovers().unwrap()).await;
    assert_eq!(r.kept.len(), 1, "{r:?}");
    assert!(other.inner.list("").await.unwrap().is_empty());

    let fs3 = core(tree.clone(), &t.path().join("st"));
    let r = fs3.recover(fs3.scan_leftovers().unwrap()).await;
    assert_eq!(r.conflicts.len(), 1, "{r:?}");
    assert!(r.conflicts[0].2.contains("checksum"), "{r:?}");
    // The empty object from create stays; the torn bytes are beside it.
    assert_eq!(tree.get("torn").await.as_deref(), Some(&b""[..]));
    let copy = r.conflicts[0].1.strip_prefix("/m/").unwrap().to_string();
    assert_eq!(tree.get(&copy).await.as_deref(), Some(&b"0123"[..]));
}

#[tokio::test]
async fn an_unsealed_copy_is_trusted_in_the_same_boot_only() {
    let t = tempfile::tempdir().unwrap();
    let tree = Flaky::new("mem-e");
    let fs = core(tree.clone(), &t.path().join("st"));
    let dir = m(&fs).await;
    for name in ["same-boot", "other-boot"] {
        let (_, o) = fs.create(dir, name, 0o644, false).await.unwrap();
        fs.write(o.fh, 0, b"written, never closed").await.unwrap();
    }
    // The daemon dies here (no flush, no release).
    drop(fs);
    let stage = StagingDir::new(t.path().join("st")).unwrap();
    let other = stage
        .leftovers()
        .unwrap()
        .into_iter()
        .find(|(_, t)| t.path == "other-boot")
        .unwrap();
    // As if the machine rebooted since: the marker names another boot.
    std::fs::write(other.0.with_extension("dirty"), br#"{"boot_id":"another-boot"}"#).unwrap();

    let fs2 = core(tree.clone(), &t.path().join("st"));
    let r = fs2.recover(fs2.scan_leftovers().unwrap()).await;
    assert_eq!(r.uploaded, vec!["/m/same-boot".to_string()], "{r:?}");
    assert_eq!(
        tree.get("same-boot").await.as_deref(),
        Some(&b"written, never closed"[..])
    );
    assert_eq!(r.conflicts.len(), 1, "{r:?}");
    assert!(r.conflicts[0].2.contains("restart"), "{r:?}");
    assert_eq!(tree.get("other-boot").await.as_deref(), Some(&b""[..]));
}
