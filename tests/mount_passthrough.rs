//! FUSE passthrough on local backends (`-o passthrough`): a read-only open
//! of an unmodified local file is served by the kernel from the backing
//! file, so the daemon sees no read requests, and the bytes are the file's;
//! without the option the daemon serves the reads itself.

mod support;

use support::{random_bytes, run_cli, sha256, Mounted};

/// How many `read` requests the daemon has served, from `stats --json`.
fn reads_served(m: &Mounted) -> u64 {
    let out = run_cli(&m.home, &["stats", "--json", "--mount", m.mnt.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "stats: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["op"] == "read")
        .and_then(|o| o["count"].as_u64())
        .unwrap_or(0)
}

#[test]
fn kernel_reads_local_files_itself_when_passthrough_is_on() {
    let m = Mounted::with_config(|_| None, &["passthrough"]);
    let data = random_bytes(7, 8 << 20);
    std::fs::write(m.local_backing().join("f.bin"), &data).unwrap();
    let seen = std::fs::read(m.path("local/f.bin")).unwrap();
    assert_eq!(sha256(&seen), sha256(&data));
    assert_eq!(
        reads_served(&m),
        0,
        "reads reached the daemon; passthrough was not used"
    );
}

#[test]
fn daemon_serves_reads_when_passthrough_is_off() {
    let m = Mounted::new();
    let data = random_bytes(8, 2 << 20);
    std::fs::write(m.local_backing().join("f.bin"), &data).unwrap();
    assert_eq!(std::fs::read(m.path("local/f.bin")).unwrap(), data);
    assert!(reads_served(&m) > 0);
}

#[test]
fn reader_sees_new_bytes_when_a_writer_replaced_the_file_before_it_opened() {
    let m = Mounted::with_config(|_| None, &["passthrough"]);
    std::fs::write(m.path("local/g"), b"first version").unwrap();
    assert_eq!(std::fs::read(m.path("local/g")).unwrap(), b"first version");
    std::fs::write(m.path("local/g"), b"second, longer version").unwrap();
    assert_eq!(
        std::fs::read(m.path("local/g")).unwrap(),
        b"second, longer version"
    );
}

#[test]
fn reader_opens_while_a_writer_holds_the_file_when_passthrough_is_on() {
    use std::io::Write;
    let m = Mounted::with_config(|_| None, &["passthrough"]);
    std::fs::write(m.path("local/h"), b"one\n").unwrap();
    let mut w = std::fs::OpenOptions::new()
        .append(true)
        .open(m.path("local/h"))
        .unwrap();
    w.write_all(b"two\n").unwrap();
    // The writer's handle is page-cached, so this reader must not ask for passthrough.
    assert_eq!(std::fs::read(m.path("local/h")).unwrap(), b"one\ntwo\n");
    drop(w);
    assert_eq!(std::fs::read(m.path("local/h")).unwrap(), b"one\ntwo\n");
}
