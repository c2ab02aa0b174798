//! FUSE passthrough, on by default for `fs` mounts that take direct writes
//! or are read-only: the kernel reads and writes the backing file itself,
//! so the daemon sees no read or write requests, and everything seen
//! through the mount (bytes, sizes, times, a bucket's index) stays right.
//! Readers and writers of one file share the backing file (no EIO);
//! `-o nopassthrough` and mounts that stage writes have the daemon serve
//! reads and writes.

mod support;

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use support::{random_bytes, run_cli, sha256, Mounted};

/// How many `op` requests the daemon has served, from `stats --json`.
fn served(m: &Mounted, op: &str) -> u64 {
    m.cli_json("stats")["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["op"] == op)
        .and_then(|o| o["count"].as_u64())
        .unwrap_or(0)
}

/// Reads and writes served by the daemon.
fn io_served(m: &Mounted) -> (u64, u64) {
    (served(m, "read"), served(m, "write"))
}

fn rw(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

fn config(root: &Path, extra: &str) -> Option<String> {
    let dir = root.join("data");
    std::fs::create_dir_all(&dir).unwrap();
    Some(format!(
        "[[mount]]\npath = \"/d\"\nscheme = \"fs\"\n{extra}\n[mount.options]\nroot = \"{}\"\n",
        dir.display()
    ))
}

#[test]
fn kernel_reads_and_writes_local_files_itself_by_default() {
    let m = Mounted::new();
    let data = random_bytes(7, 8 << 20);
    std::fs::write(m.local_backing().join("f.bin"), &data).unwrap();
    let seen = std::fs::read(m.path("local/f.bin")).unwrap();
    assert_eq!(sha256(&seen), sha256(&data));
    let more = random_bytes(9, 3 << 20);
    std::fs::write(m.path("local/g.bin"), &more).unwrap();
    assert_eq!(std::fs::read(m.local_backing().join("g.bin")).unwrap(), more);
    assert_eq!(io_served(&m), (0, 0), "reads or writes reached the daemon");
}

#[test]
fn daemon_serves_reads_and_writes_with_nopassthrough() {
    let m = Mounted::with_config(|_| None, &["nopassthrough"]);
    let data = random_bytes(8, 2 << 20);
    std::fs::write(m.local_backing().join("f.bin"), &data).unwrap();
    assert_eq!(std::fs::read(m.path("local/f.bin")).unwrap(), data);
    std::fs::write(m.path("local/g"), b"written by the daemon").unwrap();
    assert_eq!(
        std::fs::read(m.local_backing().join("g")).unwrap(),
        b"written by the daemon"
    );
    let (reads, writes) = io_served(&m);
    assert!(reads > 0 && writes > 0, "reads {reads}, writes {writes}");
}

#[test]
fn staged_mounts_keep_the_daemon_path_and_read_only_mounts_pass_through() {
    let staged = Mounted::with_config(|r| config(r, "writes = \"staged\""), &[]);
    std::fs::write(staged.path("d/s"), b"staged bytes").unwrap();
    let mut reader = std::fs::File::open(staged.path("d/s")).unwrap();
    // A writer beside a reader: both through the daemon, no EIO.
    std::fs::write(staged.path("d/s"), b"staged again").unwrap();
    let mut got = Vec::new();
    reader.read_to_end(&mut got).unwrap();
    assert_eq!(std::fs::read(staged.path("d/s")).unwrap(), b"staged again");
    let (reads, writes) = io_served(&staged);
    assert!(reads > 0 && writes > 0, "reads {reads}, writes {writes}");

    let ro = Mounted::with_config(|r| config(r, "read_only = true"), &[]);
    let data = random_bytes(10, 1 << 20);
    std::fs::write(ro.root().join("data/r.bin"), &data).unwrap();
    assert_eq!(std::fs::read(ro.path("d/r.bin")).unwrap(), data);
    assert_eq!(io_served(&ro), (0, 0));
}

#[test]
fn a_writer_beside_readers_needs_no_daemon_and_readers_see_its_bytes() {
    let m = Mounted::new();
    std::fs::write(m.path("local/h"), b"one\n").unwrap();
    let mut r1 = std::fs::File::open(m.path("local/h")).unwrap();
    let mut r2 = std::fs::File::open(m.path("local/h")).unwrap();
    let mut w = std::fs::OpenOptions::new()
        .append(true)
        .open(m.path("local/h"))
        .expect("a writer opens beside passthrough readers");
    w.write_all(b"two\n").unwrap();
    let mut a = String::new();
    r1.read_to_string(&mut a).unwrap();
    assert_eq!(a, "one\ntwo\n");
    // A reader opened while the writer is open, and one opened before it.
    assert_eq!(std::fs::read(m.path("local/h")).unwrap(), b"one\ntwo\n");
    w.write_all(b"three\n").unwrap();
    let mut b = String::new();
    r2.read_to_string(&mut b).unwrap();
    assert_eq!(b, "one\ntwo\nthree\n");
    drop(w);
    assert_eq!(std::fs::read(m.path("local/h")).unwrap(), b"one\ntwo\nthree\n");
    assert_eq!(io_served(&m), (0, 0));
}

#[test]
fn append_from_two_handles_lands_at_the_end() {
    let m = Mounted::new();
    let p = m.path("local/log");
    std::fs::write(&p, b"start\n").unwrap();
    let open = || std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    let (mut a, mut b) = (open(), open());
    a.write_all(b"a1\n").unwrap();
    b.write_all(b"b1\n").unwrap();
    a.write_all(b"a2\n").unwrap();
    drop((a, b));
    assert_eq!(std::fs::read(&p).unwrap(), b"start\na1\nb1\na2\n");
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 15);
}

#[test]
fn mmap_reads_and_writes_go_to_the_backing_file() {
    let m = Mounted::new();
    let p = m.path("local/map");
    let data = random_bytes(11, 64 << 10);
    std::fs::write(&p, &data).unwrap();
    let f = rw(&p);
    let len = data.len();
    // SAFETY: a fresh shared mapping of a file we hold open, used within its
    // length and unmapped before the file is closed.
    unsafe {
        let ptr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
        );
        assert_ne!(ptr, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        let view = std::slice::from_raw_parts_mut(ptr as *mut u8, len);
        assert_eq!(sha256(view), sha256(&data), "mmap read");
        view[..5].copy_from_slice(b"HELLO");
        view[len - 3..].copy_from_slice(b"END");
        assert_eq!(libc::msync(ptr, len, libc::MS_SYNC), 0);
        assert_eq!(libc::munmap(ptr, len), 0);
    }
    drop(f);
    let mut want = data.clone();
    want[..5].copy_from_slice(b"HELLO");
    want[len - 3..].copy_from_slice(b"END");
    assert_eq!(std::fs::read(m.local_backing().join("map")).unwrap(), want);
    assert_eq!(std::fs::read(&p).unwrap(), want);
}

#[test]
fn truncate_while_read_and_fsync() {
    let m = Mounted::new();
    let p = m.path("local/t");
    std::fs::write(&p, random_bytes(12, 100_000)).unwrap();
    let mut reader = std::fs::File::open(&p).unwrap();
    let mut head = [0u8; 10];
    reader.read_exact(&mut head).unwrap();
    // Shrink by path while the reader is open: it then reads up to the new end.
    let w = rw(&p);
    w.set_len(20).unwrap();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len(), 10, "the reader sees the new end");
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 20);
    reader.seek(SeekFrom::Start(0)).unwrap();
    w.write_all_at(b"synced", 0).unwrap();
    w.sync_all().expect("fsync");
    w.sync_data().expect("fdatasync");
    assert_eq!(
        &std::fs::read(m.local_backing().join("t")).unwrap()[..6],
        b"synced"
    );
    let mut all = Vec::new();
    reader.read_to_end(&mut all).unwrap();
    assert_eq!((&all[..6], all.len()), (&b"synced"[..], 20));
    // Truncate to zero by opening with O_TRUNC while the reader is open.
    drop(std::fs::File::create(&p).unwrap());
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
    assert_eq!(std::fs::metadata(m.local_backing().join("t")).unwrap().len(), 0);
}

#[test]
fn sizes_and_times_follow_passthrough_writes_while_open_and_after_close() {
    let m = Mounted::new();
    let p = m.path("local/s");
    std::fs::write(&p, b"x").unwrap();
    let before = std::fs::metadata(&p).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let w = rw(&p);
    w.write_all_at(b"tail", 1 << 20).unwrap();
    let backing = m.local_backing().join("s");
    let check = |when: &str| {
        let ours = std::fs::metadata(&p).unwrap();
        let disk = std::fs::metadata(&backing).unwrap();
        assert_eq!(ours.len(), (1 << 20) + 4, "{when}: size");
        assert_eq!(
            (ours.mtime(), ours.mtime_nsec()),
            (disk.mtime(), disk.mtime_nsec()),
            "{when}: mtime"
        );
        assert!(
            ours.modified().unwrap() > before.modified().unwrap(),
            "{when}: mtime moved"
        );
    };
    check("while open");
    drop(w);
    check("after close");
    // A listing agrees too.
    let listed = std::fs::read_dir(m.path("local"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name() == "s")
        .unwrap();
    assert_eq!(listed.metadata().unwrap().len(), (1 << 20) + 4);
    assert_eq!(served(&m, "write"), 0);
}

#[test]
fn a_bucket_mount_indexes_a_file_written_through_passthrough_at_close() {
    let m = Mounted::with_config(|r| config(r, "bucket = \"pt\""), &[]);
    let p = m.path("d/file.bin");
    std::fs::write(&p, b"first").unwrap();
    // Rewrite in place (no O_TRUNC): only the kernel sees these bytes.
    let data = random_bytes(13, 300_000);
    let w = rw(&p);
    w.write_all_at(&data, 0).unwrap();
    drop(w);
    assert_eq!(served(&m, "write"), 0, "the writes were not passthrough");
    let out = run_cli(
        &m.home,
        &["bucket", "files", "pt", "--json", "-m", m.mnt.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "file.bin")
        .unwrap_or_else(|| panic!("not indexed: {v}"))
        .clone();
    assert_eq!(row["size"].as_u64(), Some(data.len() as u64));
    let backing = m.root().join("data/file.bin");
    let cid = run_cli(&m.home, &["cid", "-Q", backing.to_str().unwrap()]);
    let cid = String::from_utf8(cid.stdout).unwrap();
    assert_eq!(row["cid"].as_str(), cid.split_whitespace().next());
}

#[test]
fn a_file_removed_behind_the_mount_fails_its_open_only() {
    let m = Mounted::new();
    std::fs::write(m.path("local/gone"), b"soon gone").unwrap();
    std::fs::write(m.path("local/stays"), b"still here").unwrap();
    // The kernel still has the name cached; the backing file is gone.
    assert!(m.path("local/gone").exists());
    std::fs::remove_file(m.local_backing().join("gone")).unwrap();
    let err = std::fs::read(m.path("local/gone")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    // Passthrough is still on for the rest of the mount.
    assert_eq!(std::fs::read(m.path("local/stays")).unwrap(), b"still here");
    assert_eq!(io_served(&m), (0, 0));
}

#[test]
fn closing_a_read_only_handle_sends_no_flush_and_a_writer_s_close_still_does() {
    for opts in [&[][..], &["nopassthrough"][..]] {
        let m = Mounted::with_config(|_| None, opts);
        std::fs::write(m.local_backing().join("r.txt"), b"read me").unwrap();
        let before = served(&m, "flush");
        for _ in 0..20 {
            assert_eq!(std::fs::read(m.path("local/r.txt")).unwrap(), b"read me");
        }
        assert_eq!(served(&m, "flush"), before, "{opts:?}: read-only closes flushed");
        std::fs::write(m.path("local/w.txt"), b"written").unwrap();
        // An operation is counted when its handler ends, just after its
        // reply: on a loaded machine the count may lag the close a little.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while served(&m, "flush") == before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(
            served(&m, "flush") > before,
            "{opts:?}: a writer's close did not flush"
        );
        assert_eq!(
            std::fs::read(m.local_backing().join("w.txt")).unwrap(),
            b"written"
        );
    }
}
