//! Start-up under faults: SIGTERM at random moments while a mount starts
//! never leaves a dead mount behind (the stop signals are held back until
//! their handlers exist), and the process never dies by the signal once it
//! has blocked it.

#[path = "ops_support/mod.rs"]
mod ops_support;

use ops_support::*;
use rand::Rng;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

/// Rounds of start + SIGTERM (the issue asks for 100); `IKF_FAULT_ROUNDS` overrides.
const ROUNDS: usize = 100;
/// Latest moment a SIGTERM is sent after the spawn: a start took ~100 ms on
/// a loaded 2-core machine, so rounds fall before, during and after it.
const MAX_DELAY_MS: u64 = 250;

#[test]
fn sigterm_at_random_moments_during_start_up_never_leaves_a_dead_mount() {
    if !can_mount() {
        return;
    }
    let rounds = std::env::var("IKF_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS);
    let place = Place::new("");
    let mut rng = rand::rng();
    let (mut clean, mut by_signal, mut mounted_first) = (0, 0, 0);
    for round in 0..rounds {
        let log = place.dir.path().join("round.log");
        let mut c = place.cmd();
        c.arg("mount")
            .arg(&place.mnt)
            .arg("--foreground")
            .arg("--config")
            .arg(&place.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"));
        let mut child = c.spawn().expect("spawn");
        std::thread::sleep(Duration::from_millis(rng.random_range(0..MAX_DELAY_MS)));
        if is_mounted(&place.mnt) {
            mounted_first += 1;
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let st = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break st;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("round {round}: the daemon did not stop after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let left = is_mounted(&place.mnt);
        if left {
            lazy_unmount(&place.mnt);
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            !left,
            "round {round}: a mount was left behind ({st:?}); log:\n{text}"
        );
        match (st.code(), st.signal()) {
            (Some(0 | 1), _) => clean += 1,
            // Only before `mount` blocked the signal (argument parsing):
            // nothing was mounted yet, as asserted above.
            (_, Some(_)) => by_signal += 1,
            other => panic!("round {round}: unexpected end {other:?}; log:\n{text}"),
        }
    }
    eprintln!(
        "{rounds} rounds: {clean} clean stops, {by_signal} ended by the signal before start-up, \
         {mounted_first} signalled after the mount was live"
    );
}

/// A control client that sends requests and never reads the replies holds
/// up neither the daemon nor other clients.
#[test]
fn a_control_client_that_stops_reading_holds_up_no_one() {
    if !can_mount() {
        return;
    }
    let place = Place::new("");
    let d = place.start(&[]);
    let mut stuck = std::os::unix::net::UnixStream::connect(&d.socket).expect("connect");
    stuck
        .set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let line = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\n";
    // Until the socket buffers are full both ways (the write times out).
    let mut sent = 0;
    while sent < 100_000 && std::io::Write::write_all(&mut stuck, line).is_ok() {
        sent += 1;
    }
    assert!(sent > 10, "sent only {sent} requests");
    let t = std::time::Instant::now();
    let st: ipfs_kit_fuse::control::protocol::StatusReply = d
        .client()
        .call(&ipfs_kit_fuse::control::Request::Status)
        .expect("status from another client");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "status took {:?}",
        t.elapsed()
    );
    assert_eq!(st.mountpoint, d.mnt.display().to_string());
    std::fs::write(d.mnt.join("local/ok"), b"ok").expect("the mount serves on");
}
