//! S3 keeps modes, owners, times and symlinks as object user metadata in
//! s3fs's names and formats, against a real S3-compatible server (moto on
//! 127.0.0.1): set through a mount, still there after a remount, visible
//! to a raw HEAD; objects written by an s3fs-style writer (headers set by
//! a raw PUT) show their attributes; `rsync -a` a second time sends nothing.

mod common_s3;
mod support;

use common_s3::S3Server;
use nix::sys::stat::{lstat, FileStat};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use support::*;

const BUCKET: &str = "meta";
/// 2001-01-01T00:00:00Z, the time `touch -d` sets below.
const Y2001: i64 = 978_307_200;

fn start() -> Option<S3Server> {
    let s3 = S3Server::start()?;
    s3.create_bucket(BUCKET);
    Some(s3)
}

fn mount(s3: &S3Server) -> Mounted {
    let cfg = s3.mount_toml("/s3", BUCKET);
    Mounted::with_config(move |_| Some(cfg), &[])
}

fn run(script: &str) -> String {
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn st(p: &Path) -> FileStat {
    lstat(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()))
}

fn perm(s: &FileStat) -> u32 {
    s.st_mode & 0o7777
}

/// What a raw HEAD of `key` answers: (status, header lookup).
fn head(s3: &S3Server, key: &str) -> common_s3::RawResponse {
    s3.raw("HEAD", &format!("/{BUCKET}/{key}"), &[], b"")
}

#[test]
fn chmod_chown_touch_and_symlinks_survive_a_remount_and_show_in_a_raw_head() {
    let Some(s3) = start() else { return };
    let mut m = mount(&s3);
    let dir = m.path("s3");
    let d = dir.display();
    run(&format!(
        "set -e; cd {d}; printf '#!/bin/sh\\necho hi\\n' > s.sh; chmod +x s.sh; \
         chown 1234:5678 s.sh; echo data > old.txt; touch -d '2001-01-01 00:00:00 UTC' old.txt; \
         ln -s s.sh link; mkdir priv; chmod 700 priv; mkfifo fifo"
    ));
    let check = |dir: &Path, when: &str| {
        let s = st(&dir.join("s.sh"));
        assert_eq!(perm(&s), 0o755, "{when}: s.sh mode");
        assert_eq!((s.st_uid, s.st_gid), (1234, 5678), "{when}: s.sh owner");
        assert_eq!(st(&dir.join("old.txt")).st_mtime, Y2001, "{when}: old.txt mtime");
        let l = std::fs::symlink_metadata(dir.join("link")).unwrap();
        assert!(l.file_type().is_symlink(), "{when}: link is a symlink");
        assert_eq!(
            std::fs::read_link(dir.join("link")).unwrap(),
            Path::new("s.sh"),
            "{when}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("link")).unwrap(),
            "#!/bin/sh\necho hi\n"
        );
        assert_eq!(perm(&st(&dir.join("priv"))), 0o700, "{when}: priv mode");
        assert!(
            std::fs::symlink_metadata(dir.join("fifo"))
                .unwrap()
                .file_type()
                .is_fifo(),
            "{when}"
        );
        let out = Command::new(dir.join("s.sh")).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hi\n",
            "{when}: the script runs"
        );
    };
    check(&dir, "mounted");

    // The server holds them, in s3fs's names and formats.
    let h = head(&s3, "s.sh");
    assert_eq!(h.status, 200);
    assert_eq!(
        h.header("x-amz-meta-mode"),
        Some("33261"),
        "S_IFREG|0755 in decimal"
    );
    assert_eq!(h.header("x-amz-meta-uid"), Some("1234"));
    assert_eq!(h.header("x-amz-meta-gid"), Some("5678"));
    assert_eq!(head(&s3, "old.txt").header("x-amz-meta-mtime"), Some("978307200"));
    let link = s3.raw("GET", &format!("/{BUCKET}/link"), &[], b"");
    assert_eq!(link.header("x-amz-meta-mode"), Some("41471"), "S_IFLNK|0777");
    assert_eq!(link.body, b"s.sh", "a symlink's body is its target");
    assert_eq!(
        head(&s3, "priv/").header("x-amz-meta-mode"),
        Some("16832"),
        "S_IFDIR|0700"
    );
    assert_eq!(
        head(&s3, "fifo").header("x-amz-meta-mode"),
        Some(&*(libc::S_IFIFO | 0o644).to_string())
    );

    // A metadata change is a copy onto itself: the bytes stay.
    assert_eq!(
        s3.raw("GET", &format!("/{BUCKET}/s.sh"), &[], b"").body,
        b"#!/bin/sh\necho hi\n"
    );

    let out = m.unmount();
    assert!(
        out.status.success(),
        "unmount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m2 = mount(&s3);
    check(&m2.path("s3"), "remounted");
}

#[test]
fn objects_an_s3fs_style_writer_made_show_their_attributes() {
    let Some(s3) = start() else { return };
    let put = |key: &str, headers: &[(&str, &str)], body: &[u8]| {
        let r = s3.raw("PUT", &format!("/{BUCKET}/{key}"), headers, body);
        assert_eq!(r.status, 200, "PUT {key}");
    };
    // What s3fs sends: mode, uid, gid decimal; mtime seconds (with nanoseconds).
    put(
        "tool.bin",
        &[
            ("x-amz-meta-mode", "33216"),
            ("x-amz-meta-uid", "42"),
            ("x-amz-meta-gid", "43"),
            ("x-amz-meta-mtime", "1000000000.250000000"),
        ],
        b"binary",
    );
    put(
        "sym",
        &[("x-amz-meta-mode", "41471"), ("x-amz-meta-mtime", "1000000000")],
        b"tool.bin",
    );
    put(
        "sub/",
        &[("x-amz-meta-mode", "16877"), ("x-amz-meta-uid", "7")],
        b"",
    );
    put("plain.txt", &[], b"no headers");
    // rclone writes mtime as seconds with a trimmed fraction.
    put("rclone.txt", &[("x-amz-meta-mtime", "1500000000.5")], b"r");
    let m = mount(&s3);
    let dir = m.path("s3");
    let s = st(&dir.join("tool.bin"));
    assert_eq!(perm(&s), 0o700);
    assert_eq!((s.st_uid, s.st_gid), (42, 43));
    assert_eq!((s.st_mtime, s.st_mtime_nsec), (1_000_000_000, 250_000_000));
    assert_eq!(
        std::fs::read_link(dir.join("sym")).unwrap(),
        Path::new("tool.bin")
    );
    assert_eq!(st(&dir.join("sym")).st_mtime, 1_000_000_000);
    let sub = st(&dir.join("sub"));
    assert_eq!(
        (sub.st_mode & libc::S_IFMT, perm(&sub), sub.st_uid),
        (libc::S_IFDIR, 0o755, 7)
    );
    // Without headers: today's defaults (0644, the mount's owner, the object's time).
    let plain = st(&dir.join("plain.txt"));
    assert_eq!(
        (perm(&plain), plain.st_uid),
        (0o644, nix::unistd::geteuid().as_raw())
    );
    let r = st(&dir.join("rclone.txt"));
    assert_eq!((r.st_mtime, r.st_mtime_nsec), (1_500_000_000, 500_000_000));
    // A listing shows the same attributes as a lookup.
    let ls = run(&format!("ls -ln --time-style=+%s {}", dir.display()));
    let want = ["-rwx------", "1", "42", "43", "6", "1000000000", "tool.bin"];
    assert!(
        ls.lines().any(|l| l.split_whitespace().eq(want.iter().copied())),
        "{ls}"
    );
    // Changing one attribute keeps the others and the bytes.
    run(&format!("chmod 750 {}", dir.join("tool.bin").display()));
    let h = head(&s3, "tool.bin");
    assert_eq!(
        h.header("x-amz-meta-mode"),
        Some(&*(libc::S_IFREG | 0o750).to_string())
    );
    assert_eq!(h.header("x-amz-meta-uid"), Some("42"));
    assert_eq!(h.header("x-amz-meta-mtime"), Some("1000000000.250000000"));
    assert_eq!(std::fs::read(dir.join("tool.bin")).unwrap(), b"binary");
}

#[test]
fn rsync_a_twice_to_s3_transfers_nothing_the_second_time() {
    let Some(s3) = start() else { return };
    let src = temp_dir();
    let s = src.path();
    run(&format!(
        "set -e; cd {}; mkdir -p tree/sub; printf x > tree/a; printf yy > tree/sub/b; \
         printf '#!/bin/sh\\n' > tree/run.sh; chmod 755 tree/run.sh; chmod 600 tree/sub/b; \
         ln -s sub/b tree/l; touch -d '2010-05-05 05:05:05.123456789' tree/a",
        s.display()
    ));
    let mut m = mount(&s3);
    let dst = m.path("s3/dst");
    let rsync = |dst: &Path| {
        run(&format!(
            "rsync -a --stats {}/tree/ {}/",
            s.display(),
            dst.display()
        ))
    };
    let first = rsync(&dst);
    assert!(
        first.contains("Number of regular files transferred: 3"),
        "{first}"
    );
    let out = m.unmount();
    assert!(
        out.status.success(),
        "unmount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Remounted: nothing is cached, every attribute comes from the server.
    let m2 = mount(&s3);
    let dst = m2.path("s3/dst");
    let second = rsync(&dst);
    assert!(
        second.contains("Number of regular files transferred: 0"),
        "{second}"
    );
    let itemized = run(&format!(
        "rsync -a --itemize-changes --dry-run {}/tree/ {}/",
        s.display(),
        dst.display()
    ));
    assert!(itemized.trim().is_empty(), "rsync sees differences: {itemized}");
    let a = st(&dst.join("a"));
    assert_eq!(a.st_mtime_nsec, 123_456_789, "nanoseconds are kept");
    assert_eq!(
        std::fs::metadata(dst.join("run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
}
