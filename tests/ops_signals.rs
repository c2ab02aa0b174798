//! Operations against a real mount run by the binary: SIGTERM drains before
//! unmounting, staged data survives kill -9 and is uploaded at the next start,
//! sd_notify READY/STOPPING, SIGHUP reload, the Prometheus endpoint.

#[path = "ops_support/mod.rs"]
mod ops_support;

use ipfs_kit_fuse::control::protocol::MountsReply;
use ipfs_kit_fuse::control::Request;
use nix::sys::signal::Signal;
use ops_support::*;
use std::io::{Read, Write};
use std::os::fd::IntoRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Size of each file the writer writes: several FUSE writes per file.
const FILE_SIZE: usize = 4 << 20;

fn pattern(i: usize) -> Vec<u8> {
    (0..FILE_SIZE).map(|j| ((i * 31 + j * 7) % 251) as u8).collect()
}

/// Writes files into `dir` until told to stop or the mount goes away; returns
/// the files whose writes and close(2) all succeeded on the FUSE filesystem.
fn writer(dir: PathBuf, dev: u64, stop: Arc<AtomicBool>) -> Vec<usize> {
    let mut closed = Vec::new();
    for i in 0..200 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let path = dir.join(format!("f{i}.bin"));
        let Ok(mut f) = std::fs::File::create(&path) else {
            break;
        };
        // After a lazy detach the path leads to the bare directory below: stop there.
        if f.metadata().map(|m| m.dev()).ok() != Some(dev) {
            drop(f);
            let _ = std::fs::remove_file(&path);
            break;
        }
        if f.write_all(&pattern(i)).is_err() {
            break;
        }
        let fd = f.into_raw_fd();
        // SAFETY: `fd` was just taken from the File and is closed exactly once.
        if unsafe { libc::close(fd) } != 0 {
            break;
        }
        closed.push(i);
    }
    closed
}

#[test]
fn sigterm_during_large_writes_keeps_every_closed_file() {
    if !can_mount() {
        return;
    }
    let place = Place::new("");
    let mut d = place.start(&[]);
    let dir = d.mnt.join("local");
    let dev = std::fs::metadata(&dir).expect("mounted dir").dev();
    let stop = Arc::new(AtomicBool::new(false));
    let w = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || writer(dir, dev, stop))
    };
    assert!(
        eventually(Duration::from_secs(60), || place.backend.join("f2.bin").exists()),
        "writer made no progress"
    );
    d.signal(Signal::SIGTERM);
    let st = d.wait_exit(Duration::from_secs(120));
    stop.store(true, Ordering::Relaxed);
    let closed = w.join().expect("writer thread");
    assert!(st.success(), "{}; log:\n{}", describe(st), d.log_text());
    assert!(!is_mounted(&place.mnt));
    assert!(closed.len() >= 2, "closed {closed:?}");
    for i in closed {
        let got = std::fs::read(place.backend.join(format!("f{i}.bin"))).expect("closed file in backend");
        assert!(
            got == pattern(i),
            "f{i}.bin differs in the backend ({} bytes)",
            got.len()
        );
    }
}

#[test]
fn staged_write_survives_kill9_and_is_uploaded_before_the_next_ready() {
    if !can_mount() {
        return;
    }
    let place = Place::new("");
    let mut d = place.start(&[]);
    let data: Vec<u8> = (0..(2 << 20)).map(|i| (i % 253) as u8).collect();
    let mut f = std::fs::File::create(d.mnt.join("local/crash.bin")).expect("create");
    f.write_all(&data).expect("write");
    // Still open: nothing uploaded yet, the bytes are only staged.
    assert_ne!(
        std::fs::read(place.backend.join("crash.bin")).unwrap_or_default(),
        data
    );
    d.kill9();
    drop(f);
    drop(d);
    let staged = place.home.join("staging");
    assert!(
        walk(&staged)
            .iter()
            .any(|p| p.extension().is_some_and(|x| x == "data")),
        "no staged file left in {}",
        staged.display()
    );

    let d = place.start(&[]);
    // Recovery runs in the background once the mount is ready.
    assert!(
        eventually(Duration::from_secs(60), || d
            .log_text()
            .contains("crash recovery done")),
        "{}",
        d.log_text()
    );
    assert_eq!(
        std::fs::read(place.backend.join("crash.bin")).expect("recovered"),
        data
    );
    assert!(
        d.log_text().contains("recovered a staged write"),
        "{}",
        d.log_text()
    );
    assert!(
        !walk(&staged)
            .iter()
            .any(|p| p.extension().is_some_and(|x| x == "data")),
        "staged copy not cleaned up"
    );
}

/// An `fs` mount writes into its backing files directly by default: the
/// bytes are there before close, and a kill -9 loses nothing and leaves
/// nothing in staging.
#[test]
fn direct_writes_reach_the_backing_file_before_close_and_survive_kill9() {
    if !can_mount() {
        return;
    }
    let place = Place::new("");
    let direct = place.dir.path().join("direct");
    std::fs::create_dir_all(&direct).unwrap();
    place.write_config(&format!(
        "[[mount]]\npath = \"/direct\"\nscheme = \"fs\"\n[mount.options]\nroot = \"{}\"\n",
        direct.display()
    ));
    let mut d = place.start(&[]);
    let data: Vec<u8> = (0..(2 << 20)).map(|i| (i % 251) as u8).collect();
    let mut f = std::fs::File::create(d.mnt.join("direct/crash.bin")).expect("create");
    f.write_all(&data).expect("write");
    assert_eq!(
        std::fs::read(direct.join("crash.bin")).unwrap(),
        data,
        "not in the backing file before close"
    );
    d.kill9();
    drop(f);
    drop(d);
    assert_eq!(std::fs::read(direct.join("crash.bin")).unwrap(), data);
    let staged = place.home.join("staging");
    assert!(walk(&staged).is_empty(), "staging used: {:?}", walk(&staged));
    // A mount that asks for direct writes on a non-local scheme is refused.
    place.write_config("[[mount]]\npath = \"/m\"\nscheme = \"memory\"\nwrites = \"direct\"\n");
    let out = place
        .cmd()
        .arg("mount")
        .arg(&place.mnt)
        .arg("--config")
        .arg(&place.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("direct") && err.contains("/m"), "{err}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn sd_notify_ready_and_stopping_arrive_on_notify_socket() {
    if !can_mount() {
        return;
    }
    let place = Place::new("");
    let sock_path = place.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(START_TIMEOUT)).expect("timeout");
    let mut d = place.start_with(&[], |c| {
        c.env("NOTIFY_SOCKET", &sock_path);
    });
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("READY datagram");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    d.signal(Signal::SIGTERM);
    let n = sock.recv(&mut buf).expect("STOPPING datagram");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "STOPPING=1"), "{msg:?}");
    let st = d.wait_exit(Duration::from_secs(60));
    assert!(st.success(), "{}", describe(st));
}

#[test]
fn sighup_applies_the_edited_config() {
    if !can_mount() {
        return;
    }
    let place = Place::new("[[mount]]\npath = \"/a\"\nscheme = \"memory\"\n");
    let d = place.start(&[]);
    assert!(d.mnt.join("a").is_dir());
    place.write_config("[[mount]]\npath = \"/b\"\nuri = \"memory://\"\n");
    d.signal(Signal::SIGHUP);
    let listed = || -> Vec<String> {
        let r: MountsReply = d.client().call(&Request::MountsList).expect("list");
        r.mounts.into_iter().map(|m| m.path).collect()
    };
    assert!(
        eventually(Duration::from_secs(20), || listed() == vec!["/b", "/local"]),
        "table after reload: {:?}",
        listed()
    );
    assert!(d.mnt.join("b").is_dir());
    assert!(!d.mnt.join("a").exists());
}

#[test]
fn metrics_endpoint_serves_prometheus_text_when_asked() {
    if !can_mount() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let place = Place::new("");
    let d = place.start(&["--metrics", &addr]);
    std::fs::write(d.mnt.join("local/m.txt"), b"metrics").expect("write");
    let mut s = std::net::TcpStream::connect(&addr).expect("connect metrics");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("response");
    assert!(body.starts_with("HTTP/1.0 200"), "{body}");
    assert!(body.contains("ipfs_kit_fuse_in_flight"), "{body}");
    assert!(
        body.contains("ipfs_kit_fuse_op_duration_seconds_count{op=\"write\"}"),
        "{body}"
    );
    assert!(
        body.contains(
            "ipfs_kit_fuse_backend_bytes_total{mount=\"/local\",scheme=\"fs\",direction=\"written\"} 7"
        ),
        "{body}"
    );
}
