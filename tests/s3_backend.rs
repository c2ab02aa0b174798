//! The S3 backend against a real S3-compatible server (moto on 127.0.0.1):
//! ordinary tools through a real mount, a 200 MiB round trip, an object
//! changed behind our back, and the block cache surviving a restart.

mod common_s3;
mod support;

use common_s3::S3Server;
use ipfs_kit_fuse::config::Config;
use ipfs_kit_fuse::daemon::{build_fs, MountSpec};
use ipfs_kit_fuse::fs::ROOT_INO;
use ipfs_kit_fuse::fuse::MountOptions;
use rand::RngCore;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ipfs-kit-fuse");

/// A daemonized mount of `config` in a temp dir; unmounted on drop.
struct Mount {
    dir: tempfile::TempDir,
}

impl Mount {
    fn new(config: &str, opts: &str) -> Mount {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let m = Mount { dir };
        m.mount(opts);
        m
    }

    /// Mounts (again) with the same data home.
    fn mount(&self, opts: &str) {
        let out = self
            .cmd("mount")
            .arg(self.dir.path().join("mnt"))
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .args(["-o", opts])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The binary with this mount's data home and runtime directory.
    fn cmd(&self, sub: &str) -> Command {
        let mut c = Command::new(BIN);
        c.arg(sub)
            .env("IPFS_KIT_HOME", self.dir.path().join("home"))
            .env("RUNTIME_DIRECTORY", self.dir.path().join("run"))
            // Streamed uploads completed or given up, for failure messages.
            .env("RUST_LOG", "info,ipfs_kit_fuse::fs::write=debug");
        c
    }

    /// The daemon's log so far.
    fn log(&self) -> String {
        support::daemon_log(&self.dir.path().join("home"))
    }

    /// Unmounts (draining uploads); false if that failed.
    fn unmount(&self) -> bool {
        self.cmd("unmount")
            .arg(self.dir.path().join("mnt"))
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `ipfs-kit-fuse stats --json` of this mount.
    fn stats(&self) -> serde_json::Value {
        let out = self.cmd("stats").arg("--json").output().unwrap();
        assert!(
            out.status.success(),
            "stats: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("mnt").join(rel)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let mounted = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .contains(&self.dir.path().join("mnt").display().to_string());
        if mounted && !self.unmount() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path().join("mnt"))
                .status();
        }
    }
}

fn random_file(path: &Path, len: usize) {
    let mut buf = vec![0u8; len];
    rand::rng().fill_bytes(&mut buf);
    std::fs::write(path, buf).unwrap();
}

fn sh(cwd: &Path, script: &str) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn large_file_round_trips_with_equal_sha256_when_on_s3() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("big");
    let m = Mount::new(&s3.mount_toml("/s3", "big"), "attr_timeout=1");
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("f.bin");
    random_file(&file, 200 << 20);
    std::fs::copy(&file, m.path("s3/f.bin")).unwrap();
    let back = src.path().join("back.bin");
    std::fs::copy(m.path("s3/f.bin"), &back).unwrap();
    assert_eq!(support::sha256_file(&file), support::sha256_file(&back));
    assert_eq!(std::fs::metadata(m.path("s3/f.bin")).unwrap().len(), 200 << 20);
}

/// Bytes the `/s3` mount has uploaded while files were being written.
fn streamed(m: &Mount) -> u64 {
    let stats = m.stats();
    let backends = stats["backends"].as_array().expect("backends in stats");
    let s3 = backends
        .iter()
        .find(|b| b["mount"] == "/s3")
        .expect("/s3 in stats");
    s3["bytes_streamed"].as_u64().expect("bytes_streamed")
}

/// A file written from start to end goes up while it is written (counted as
/// streamed); one written out of order goes up whole from staging at close.
/// Both read back byte for byte from the server.
#[test]
fn sequential_writes_stream_and_out_of_order_writes_upload_whole_on_s3() {
    use std::io::{Seek, SeekFrom, Write};
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("stream");
    let m = Mount::new(&s3.mount_toml("/s3", "stream"), "attr_timeout=1");
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("seq.bin");
    random_file(&file, 40 << 20);
    std::fs::copy(&file, m.path("s3/seq.bin")).unwrap();
    // The log names what ended a stream (a failed part, a write out of
    // order, a flush).
    assert_eq!(
        streamed(&m),
        40 << 20,
        "a sequential copy was not streamed; log:\n{}",
        m.log()
    );
    assert_eq!(
        support::sha256_file(&m.path("s3/seq.bin")),
        support::sha256_file(&file)
    );

    // Out of order: 20 MiB, then back to overwrite 1 MiB at 5 MiB, then on.
    let mut model = vec![0u8; 30 << 20];
    rand::rng().fill_bytes(&mut model);
    let mut f = std::fs::File::create(m.path("s3/mixed.bin")).unwrap();
    f.write_all(&model[..20 << 20]).unwrap();
    model[5 << 20..6 << 20].fill(7);
    f.seek(SeekFrom::Start(5 << 20)).unwrap();
    f.write_all(&model[5 << 20..6 << 20]).unwrap();
    f.seek(SeekFrom::Start(20 << 20)).unwrap();
    f.write_all(&model[20 << 20..]).unwrap();
    drop(f);
    assert_eq!(
        streamed(&m),
        40 << 20,
        "an out-of-order file was streamed; log:\n{}",
        m.log()
    );
    assert_eq!(std::fs::read(m.path("s3/mixed.bin")).unwrap(), model);

    // O_TRUNC over an existing object streams again; an empty rewrite empties it.
    std::fs::write(m.path("s3/seq.bin"), b"short").unwrap();
    assert_eq!(streamed(&m), (40 << 20) + 5);
    assert_eq!(std::fs::read(m.path("s3/seq.bin")).unwrap(), b"short");
    std::fs::write(m.path("s3/seq.bin"), b"").unwrap();
    assert_eq!(std::fs::metadata(m.path("s3/seq.bin")).unwrap().len(), 0);
}

/// A program that forks while it writes a file hands the child a copy of
/// the descriptor; the child's exec (close-on-exec) or exit closes it, and
/// the kernel sends the mount a FLUSH from the child. That close must not
/// upload the half-written file for others to read, nor end its streamed
/// upload: the writer's own close uploads it, whole and streamed.
#[test]
fn a_forked_child_closing_the_descriptor_uploads_nothing_and_the_stream_goes_on_on_s3() {
    use std::io::Write;
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("fork");
    let m = Mount::new(&s3.mount_toml("/s3", "fork"), "attr_timeout=1");
    let mut model = vec![0u8; 24 << 20];
    rand::rng().fill_bytes(&mut model);
    let mut f = std::fs::File::create(m.path("s3/child.bin")).unwrap();
    f.write_all(&model[..12 << 20]).unwrap();
    let before = streamed(&m);
    // `f` is close-on-exec: the child's exec closes its copy.
    assert!(Command::new("true").status().unwrap().success());
    // A child that keeps the descriptor across its exec, and exits.
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(&f, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    let kept = Command::new("bash")
        .arg("-c")
        .arg(format!("test -e /proc/self/fd/{fd}"))
        .status()
        .unwrap();
    fcntl(&f, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
    assert!(kept.success(), "the child did not inherit the descriptor");
    let seen = s3.raw("GET", "/fork/child.bin", &[], b"");
    assert!(
        seen.status == 404 || seen.body.len() < 12 << 20,
        "a child's close uploaded the half-written file ({} bytes); log:\n{}",
        seen.body.len(),
        m.log()
    );
    f.write_all(&model[12 << 20..]).unwrap();
    drop(f);
    // Counted when a streamed upload completes: all of it, in one stream.
    assert_eq!(
        streamed(&m) - before,
        24 << 20,
        "the stream did not go on past the children's closes; log:\n{}",
        m.log()
    );
    let got = s3.raw("GET", "/fork/child.bin", &[], b"");
    assert_eq!(got.status, 200);
    assert!(got.body == model, "the object differs from what was written");
}

#[test]
fn ordinary_tools_behave_as_on_a_local_disk_when_on_s3() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("tools");
    let m = Mount::new(&s3.mount_toml("/s3", "tools"), "attr_timeout=0");
    let root = m.path("s3");
    sh(&root, "mkdir -p a/b/c && test -d a/b/c");
    sh(
        &root,
        "echo one > a/f && echo two >> a/f && test \"$(cat a/f)\" = \"$(printf 'one\\ntwo')\"",
    );
    sh(
        &root,
        "mv a/f a/b/g && test ! -e a/f && test \"$(head -1 a/b/g)\" = one",
    );
    sh(&root, "truncate -s 3 a/b/g && test \"$(cat a/b/g)\" = one");
    sh(&root, "truncate -s 10 a/b/g && test \"$(stat -c %s a/b/g)\" = 10");
    sh(
        &root,
        "printf XY | dd of=a/b/g bs=1 seek=1 conv=notrunc 2>/dev/null && test \"$(head -c 3 a/b/g)\" = oXY",
    );
    sh(&root, "ls -la a/b | grep -q ' g$'");
    sh(
        &root,
        "mv a/b a/renamed && test -f a/renamed/g && test -d a/renamed/c && test ! -e a/b",
    );
    sh(&root, "rm -r a && test ! -e a");
    sh(
        &root,
        "mkdir d && touch d/x && ! rmdir d 2>/dev/null && rm d/x && rmdir d",
    );
}

#[test]
fn object_changed_behind_our_back_is_read_whole_and_new_after_the_ttl() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("chg");
    let m = Mount::new(&s3.mount_toml("/s3", "chg"), "attr_timeout=1");
    let len = 5 << 20;
    let old = vec![b'o'; len];
    std::fs::write(m.path("s3/obj"), &old).unwrap();
    assert_eq!(std::fs::read(m.path("s3/obj")).unwrap(), old);
    // Same size, new bytes, written straight to the server.
    let new = vec![b'n'; len];
    assert_eq!(s3.request("PUT", "/chg/obj", &new), 200);
    std::thread::sleep(Duration::from_millis(2500));
    let seen = std::fs::read(m.path("s3/obj")).unwrap();
    assert_eq!(seen.len(), len);
    assert!(
        seen.iter().all(|b| *b == b'n'),
        "old cached blocks were mixed into the new object"
    );
}

#[test]
fn remount_rereads_a_file_with_zero_backend_reads_shown_by_stats() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("remount");
    let mut data = vec![0u8; 64 << 20];
    rand::rng().fill_bytes(&mut data);
    assert_eq!(s3.request("PUT", "/remount/f", &data), 200);
    let m = Mount::new(&s3.mount_toml("/s3", "remount"), "attr_timeout=1");
    assert_eq!(std::fs::read(m.path("s3/f")).unwrap(), data);
    let first = m.stats();
    assert!(
        first["cache"]["backend_fetches"].as_u64().unwrap() >= 64,
        "{first}"
    );
    assert!(m.unmount());
    m.mount("attr_timeout=1");
    assert_eq!(std::fs::read(m.path("s3/f")).unwrap(), data);
    let second = m.stats();
    assert_eq!(second["cache"]["backend_fetches"].as_u64(), Some(0), "{second}");
    assert!(
        second["cache"]["disk"]["hits"].as_u64().unwrap() >= 64,
        "{second}"
    );
}

async fn read_all(fs: &ipfs_kit_fuse::fs::Fs, mount: &str, name: &str) -> Vec<u8> {
    let dir = fs.lookup(ROOT_INO, mount).await.unwrap();
    let file = fs.lookup(dir.attr.ino, name).await.unwrap();
    let opened = fs.open(file.attr.ino, false, false).await.unwrap();
    let mut out = Vec::new();
    loop {
        let piece = fs.read(opened.fh, out.len() as u64, 1 << 20).await.unwrap();
        if piece.is_empty() {
            break;
        }
        out.extend_from_slice(&piece);
    }
    fs.release(opened.fh).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_blocks_survive_a_restart_with_zero_backend_reads_when_unchanged() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("warm");
    let mut data = vec![0u8; 64 << 20];
    rand::rng().fill_bytes(&mut data);
    assert_eq!(s3.request("PUT", "/warm/f", &data), 200);
    let home = tempfile::tempdir().unwrap();
    let mut config = Config::parse(&s3.mount_toml("/s3", "warm")).unwrap();
    // mount_toml's [cache] has no dir; keep the disk tier inside this test's home.
    config.cache.as_mut().unwrap().dir = home.path().join("cache");
    let spec = MountSpec {
        mountpoint: home.path().join("unused"),
        config,
        options: MountOptions::default(),
        home: home.path().to_path_buf(),
    };
    {
        let fs = build_fs(&spec).unwrap();
        assert_eq!(read_all(&fs, "s3", "f").await, data);
        let reader = fs.reader().unwrap();
        reader.cache().flush().await;
        assert!(reader.cache().stats().backend_fetches >= 64);
    }
    let fs = build_fs(&spec).unwrap();
    assert_eq!(read_all(&fs, "s3", "f").await, data);
    let st = fs.reader().unwrap().cache().stats();
    assert_eq!(
        st.backend_fetches, 0,
        "second read after restart went to the backend: {st:?}"
    );
    assert!(st.disk_hits >= 64, "{st:?}");
}
