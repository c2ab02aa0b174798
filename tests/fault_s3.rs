//! Fault injection on real mounts over the S3 test server (moto) behind a
//! TCP proxy the test takes down, stalls and brings back: nothing written is
//! lost, nothing deleted comes back, waits are bounded, exit codes tell.
//! Each test asserts the bytes on the server (read directly, not through
//! the mount) and in the mount afterwards.

#[path = "common_s3/mod.rs"]
mod common_s3;
#[path = "fault_support/mod.rs"]
mod fault_support;
#[path = "ops_support/mod.rs"]
mod ops_support;

use common_s3::S3Server;
use fault_support::Proxy;
use ipfs_kit_fuse::control::protocol::StatusReply;
use ipfs_kit_fuse::control::Request;
use nix::sys::signal::Signal;
use ops_support::*;
use std::io::{Read, Write};
use std::os::fd::IntoRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The exit code of a stop that left data staged (`daemon::EXIT_LEFT_STAGED`).
const LEFT_STAGED: i32 = 3;
/// Generous bound for a daemon to drain and exit on a loaded machine.
const EXIT_WAIT: Duration = Duration::from_secs(120);

/// A moto server, a proxy in front of it, and a place whose config mounts
/// bucket `b` through the proxy at `/s3`.
struct Rig {
    s3: S3Server,
    proxy: Proxy,
    place: Place,
}

impl Rig {
    fn new() -> Option<Rig> {
        Rig::with("")
    }

    /// A rig whose config ends with `extra` (TOML tables).
    fn with(extra: &str) -> Option<Rig> {
        if !can_mount() {
            return None;
        }
        let s3 = S3Server::start()?;
        // moto may take connections before it answers them on a loaded
        // machine: retry the first request instead of failing the test.
        let made = (0..50).any(|_| {
            let ok = try_http(s3.port, "PUT", "/faults", b"").is_ok_and(|(code, _)| code == 200);
            if !ok {
                std::thread::sleep(Duration::from_millis(200));
            }
            ok
        });
        assert!(made, "moto did not create the bucket");
        let proxy = Proxy::start(s3.port);
        let place = Place::new("");
        // io_timeout 10 s: every backend call (retries included) fails
        // within it, so an outage costs a close seconds, not minutes.
        let text = format!(
            "[vfs]\nattr_ttl_secs = 1.0\nio_timeout_secs = 10\ndrain_timeout_secs = 30\n\n\
             [[mount]]\npath = \"/s3\"\nscheme = \"s3\"\n[mount.options]\nbucket = \"faults\"\n\
             endpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\n\
             secret_access_key = \"test\"\ndisable_config_load = \"true\"\n\n{extra}",
            proxy.endpoint()
        );
        std::fs::write(&place.config, text).expect("config");
        Some(Rig { s3, proxy, place })
    }

    fn file(&self, d: &Daemon, name: &str) -> PathBuf {
        d.mnt.join("s3").join(name)
    }

    /// The object `key` of bucket `b` as the server holds it (None: absent).
    fn object(&self, key: &str) -> Option<Vec<u8>> {
        let (code, body) = http(self.s3.port, "GET", &format!("/faults/{key}"), b"");
        match code {
            200 => Some(body),
            404 => None,
            c => panic!("GET {key}: HTTP {c}"),
        }
    }

    /// The keys of bucket `b` (from the server).
    fn keys(&self) -> String {
        let (code, body) = http(self.s3.port, "GET", "/faults?list-type=2", b"");
        assert_eq!(code, 200);
        String::from_utf8_lossy(&body).into_owned()
    }
}

/// One HTTP/1.1 request to moto, returning status and body.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    try_http(port, method, path, body).expect("HTTP request to moto")
}

/// [`http`], with I/O errors returned.
fn try_http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
         SignedHeaders=host, Signature=00\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP head"))?;
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((code, resp[split + 4..].to_vec()))
}

/// close(2) of `f`, returning its errno (None: success). Rust's `drop`
/// ignores the result of close, which is where a failed upload shows.
fn close(f: std::fs::File) -> Option<i32> {
    let fd = f.into_raw_fd();
    // SAFETY: `fd` was just taken out of a File, which no longer owns it.
    let rc = unsafe { libc::close(fd) };
    (rc != 0).then(|| std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// Creates `path` while the server is up, writes `data` while it is down,
/// and returns close's errno (expected: EIO, the data stays staged).
fn write_during_outage(rig: &Rig, path: &std::path::Path, data: &[u8]) -> Option<i32> {
    let mut f = std::fs::File::create(path).expect("create while up");
    rig.proxy.down();
    f.write_all(data).expect("write is local");
    close(f)
}

/// Starts the daemon again after `d` died without unmounting (kill -9):
/// a plain start, no manual clean-up of the dead mount.
fn kill9_and_restart(rig: &Rig, mut d: Daemon) -> Daemon {
    d.signal(Signal::SIGKILL);
    d.wait_exit(EXIT_WAIT);
    // Not dropped: its drop would detach the mount this test wants left dead.
    std::mem::forget(d);
    assert!(
        is_mounted(&rig.place.mnt),
        "a killed daemon leaves its mount behind"
    );
    let d2 = rig.place.start(&[]);
    assert!(
        d2.log_text().contains("dead ipfs-kit-fuse mount"),
        "the restart does not say it detached the dead mount:\n{}",
        d2.log_text()
    );
    d2
}

#[test]
fn unlink_after_a_failed_close_keeps_the_newer_file_across_restarts() {
    let Some(rig) = Rig::new() else { return };
    let d = rig.place.start(&[]);
    let f = rig.file(&d, "f");
    assert_eq!(write_during_outage(&rig, &f, b"v1 stale"), Some(libc::EIO));
    rig.proxy.up();
    std::fs::remove_file(&f).expect("rm once the server is back");
    std::fs::write(&f, b"v2 fresh").expect("write v2");
    assert_eq!(rig.object("f").as_deref(), Some(&b"v2 fresh"[..]));

    // kill -9, then a plain start: the dead mount is detached and nothing
    // staged for the old file is uploaded over v2.
    let mut d = kill9_and_restart(&rig, d);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(rig.object("f").as_deref(), Some(&b"v2 fresh"[..]));
    assert_eq!(std::fs::read(rig.file(&d, "f")).expect("read"), b"v2 fresh");
    assert!(!rig.keys().contains("ipfs-kit-conflict"), "{}", rig.keys());

    // A clean stop with nothing staged exits 0; the next start changes nothing.
    d.signal(Signal::SIGTERM);
    let st = d.wait_exit(EXIT_WAIT);
    assert_eq!(st.code(), Some(0), "{}; log:\n{}", describe(st), d.log_text());
    let d = rig.place.start(&[]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(rig.object("f").as_deref(), Some(&b"v2 fresh"[..]));
    assert_eq!(std::fs::read(rig.file(&d, "f")).expect("read"), b"v2 fresh");
}

#[test]
fn directory_rename_after_an_outage_carries_the_staged_child() {
    let Some(rig) = Rig::new() else { return };
    let d = rig.place.start(&[]);
    std::fs::create_dir(rig.file(&d, "d")).expect("mkdir");
    let f = rig.file(&d, "d/f");
    assert_eq!(write_during_outage(&rig, &f, b"child data"), Some(libc::EIO));
    rig.proxy.up();
    std::fs::rename(rig.file(&d, "d"), rig.file(&d, "e")).expect("mv d e");
    assert_eq!(rig.object("e/f").as_deref(), Some(&b"child data"[..]));
    assert_eq!(rig.object("d/f"), None);
    assert_eq!(std::fs::read(rig.file(&d, "e/f")).expect("read"), b"child data");

    let d = kill9_and_restart(&rig, d);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(rig.object("e/f").as_deref(), Some(&b"child data"[..]));
    assert_eq!(rig.object("d/f"), None, "{}", d.log_text());
}

#[test]
fn a_stop_with_data_left_staged_exits_3_and_the_next_start_uploads_it() {
    let Some(rig) = Rig::new() else { return };
    let mut d = rig.place.start(&[]);
    let f = rig.file(&d, "kept");
    assert_eq!(write_during_outage(&rig, &f, b"kept bytes"), Some(libc::EIO));
    d.signal(Signal::SIGTERM);
    let st = d.wait_exit(EXIT_WAIT);
    assert_eq!(
        st.code(),
        Some(LEFT_STAGED),
        "{}; log:\n{}",
        describe(st),
        d.log_text()
    );
    let log = d.log_text();
    assert!(
        log.contains("1 file(s), 10 byte(s) could not be uploaded"),
        "{log}"
    );
    assert!(!is_mounted(&rig.place.mnt), "unmounted even so");

    rig.proxy.up();
    let d = rig.place.start(&[]);
    assert!(
        eventually(Duration::from_secs(60), || rig.object("kept").as_deref()
            == Some(&b"kept bytes"[..])),
        "not recovered; log:\n{}",
        d.log_text()
    );
    assert_eq!(std::fs::read(rig.file(&d, "kept")).expect("read"), b"kept bytes");
    assert!(!rig.keys().contains("ipfs-kit-conflict"), "{}", rig.keys());
}

#[test]
fn recovery_keeps_a_conflict_copy_when_the_object_changed_meanwhile() {
    let Some(rig) = Rig::new() else { return };
    assert_eq!(http(rig.s3.port, "PUT", "/faults/doc", b"original").0, 200);
    let mut d = rig.place.start(&[]);
    let path = rig.file(&d, "doc");
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
        // The first write copies the object in (the server is needed for that).
        f.write_all(b"E").expect("write while up");
        rig.proxy.down();
        f.write_all(b"DITED").expect("write while down");
        assert_eq!(close(f), Some(libc::EIO));
    }
    // The `shutdown` request stops like SIGTERM, and exits 3 just the same.
    let _: ipfs_kit_fuse::control::protocol::ShutdownReply =
        d.client().call(&Request::Shutdown).expect("shutdown");
    assert_eq!(
        d.wait_exit(EXIT_WAIT).code(),
        Some(LEFT_STAGED),
        "{}",
        d.log_text()
    );
    // Someone else writes the object while we are down.
    assert_eq!(http(rig.s3.port, "PUT", "/faults/doc", b"theirs, newer").0, 200);
    rig.proxy.up();
    let d = rig.place.start(&[]);
    assert!(
        eventually(Duration::from_secs(60), || rig
            .keys()
            .contains("doc.ipfs-kit-conflict-")),
        "no conflict copy; log:\n{}",
        d.log_text()
    );
    assert_eq!(rig.object("doc").as_deref(), Some(&b"theirs, newer"[..]));
    let keys = rig.keys();
    let start = keys.find("doc.ipfs-kit-conflict-").unwrap();
    let key = &keys[start..start + keys[start..].find('<').unwrap()];
    assert_eq!(rig.object(key).as_deref(), Some(&b"EDITEDal"[..]));
    assert!(d.log_text().contains("conflict"), "{}", d.log_text());
}

#[test]
fn writes_after_backend_remove_fail_at_write() {
    let Some(rig) = Rig::new() else { return };
    let d = rig.place.start(&[]);
    let path = rig.file(&d, "w");
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(b"ab").expect("first write");
    f.flush().expect("flush");
    let out = std::process::Command::new(BIN)
        .env("IPFS_KIT_HOME", &rig.place.home)
        .env("RUNTIME_DIRECTORY", &rig.place.run)
        .args(["backend", "remove", "/s3", "--socket"])
        .arg(&d.socket)
        .output()
        .expect("backend remove");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = f.write_all(b"cd").expect_err("a write after the removal");
    assert!(
        matches!(err.raw_os_error(), Some(libc::ESTALE) | Some(libc::EIO)),
        "{err}"
    );
    drop(f);
    // What was written before the removal is on the server, nothing after.
    assert_eq!(rig.object("w").as_deref(), Some(&b"ab"[..]));
}

#[test]
fn status_answers_while_an_upload_hangs_on_a_stalled_server() {
    let Some(rig) = Rig::with("[[mount]]\npath = \"/mem\"\nuri = \"memory://\"\n") else {
        return;
    };
    let mut d = rig.place.start(&[]);
    let path = rig.file(&d, "slow");
    let f = std::fs::File::create(&path).expect("create");
    rig.proxy.stall();
    let writer = std::thread::spawn(move || {
        let mut f = f;
        f.write_all(b"stalled upload").expect("write");
        close(f)
    });
    // Let the close reach the upload, which now hangs on the server.
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..3 {
        let t = Instant::now();
        let st: StatusReply = d.client().call(&Request::Status).expect("status");
        // Not a timing test: a status that waits on the upload takes the
        // whole io_timeout (10 s); a bounded one answers well within 5 s.
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "status took {:?}",
            t.elapsed()
        );
        assert!(st.staged_files >= 1, "{st:?}");
    }
    assert!(std::fs::read_dir(&d.mnt).is_ok(), "the root lists while S3 hangs");
    // Another mount works on meanwhile.
    std::fs::write(d.mnt.join("mem/other"), b"unaffected").expect("write to /mem");
    assert_eq!(
        std::fs::read(d.mnt.join("mem/other")).expect("read /mem"),
        b"unaffected"
    );
    assert!(
        std::fs::read_dir(d.mnt.join("mem")).is_ok(),
        "ls /mem while S3 hangs"
    );
    let t = Instant::now();
    let _: ipfs_kit_fuse::control::protocol::StatsReply = d.client().call(&Request::Stats).expect("stats");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stats took {:?}",
        t.elapsed()
    );
    // The close fails (EIO) within the io_timeout bound, not never.
    let t = Instant::now();
    assert_eq!(writer.join().expect("writer"), Some(libc::EIO));
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "close took {:?} more",
        t.elapsed()
    );
    rig.proxy.up();
    d.signal(Signal::SIGTERM);
    let st = d.wait_exit(EXIT_WAIT);
    assert_eq!(st.code(), Some(0), "{}; log:\n{}", describe(st), d.log_text());
    assert_eq!(rig.object("slow").as_deref(), Some(&b"stalled upload"[..]));
}

#[test]
fn unmount_exits_3_and_names_what_is_left_staged() {
    let Some(rig) = Rig::new() else { return };
    let mut d = rig.place.start(&[]);
    let f = rig.file(&d, "left");
    assert_eq!(write_during_outage(&rig, &f, b"12345"), Some(libc::EIO));
    let out = output(
        rig.place
            .cmd()
            .arg("unmount")
            .arg(&d.mnt)
            .args(["--timeout", "120"]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(LEFT_STAGED), "{err}");
    assert!(err.contains("1 file(s), 5 byte(s)"), "{err}");
    assert!(
        err.contains(&rig.place.home.join("staging").display().to_string()),
        "{err}"
    );
    assert_eq!(
        d.wait_exit(EXIT_WAIT).code(),
        Some(LEFT_STAGED),
        "{}",
        d.log_text()
    );
    assert!(!is_mounted(&rig.place.mnt));
}

/// A tmpfs mounted over a directory for the test, detached on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size}").as_str()),
        )
        .expect("mount tmpfs");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn a_full_staging_disk_answers_enospc_and_the_mount_keeps_working() {
    let cache = tempfile::tempdir().unwrap();
    let extra = format!("[cache]\ndir = \"{}\"\n", cache.path().display());
    let Some(rig) = Rig::with(&extra) else { return };
    // The data home (staging included) on a 2 MiB disk.
    let _disk = Tmpfs::mount(&rig.place.home, "2m");
    let d = rig.place.start(&[]);
    let path = rig.file(&d, "big");
    let chunk = vec![0x5au8; 256 << 10];
    let err = {
        let mut f = std::fs::File::create(&path).expect("create");
        let mut written = 0usize;
        let err = loop {
            match f.write_all(&chunk) {
                Ok(()) => written += chunk.len(),
                Err(e) => break e,
            }
            assert!(written < 16 << 20, "16 MiB written into a 2 MiB staging disk");
        };
        drop(f);
        err
    };
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    // Space comes back once the file is gone; the mount works on.
    let _ = std::fs::remove_file(&path);
    assert!(
        eventually(Duration::from_secs(30), || std::fs::write(
            rig.file(&d, "small"),
            b"fits"
        )
        .is_ok()),
        "no write works after the disk-full file was removed; log:\n{}",
        d.log_text()
    );
    assert_eq!(rig.object("small").as_deref(), Some(&b"fits"[..]));
    assert_eq!(std::fs::read(rig.file(&d, "small")).expect("read"), b"fits");
}
