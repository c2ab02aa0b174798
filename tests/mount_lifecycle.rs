//! The life of a mount through the real binary: `mount` returns only once
//! the mount is live, `unmount` leaves no mount and no daemon behind, bad
//! configs and bad mount points fail with a non-zero exit and one clear line,
//! and read-only places (a `read_only` mount, `-o ro`, the synthetic root)
//! answer EROFS to every mutation while reads keep working.

mod support;

use std::path::Path;
use std::time::Duration;
use support::{alive, errno, mount_entry, run_cli, temp_dir, wait_until, Mounted};

/// Asserts a failed CLI run with exactly one stderr line containing `needle`.
fn assert_one_line_failure(out: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one line, got: {err}");
    assert!(lines[0].starts_with("ipfs-kit-fuse: "), "{err}");
    assert!(lines[0].contains(needle), "{needle:?} not in: {err}");
}

#[test]
fn mount_returns_only_when_the_mount_is_live() {
    let m = Mounted::new();
    // No sleep, no retry: the moment `mount` has returned, the kernel mount
    // and both backends must answer.
    let (fstype, source) = mount_entry(&m.mnt).expect("mounted right after mount returned");
    assert!(fstype.starts_with("fuse"), "{fstype}");
    assert_eq!(source, "ipfs-kit-fuse");
    let mut names: Vec<String> = std::fs::read_dir(&m.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["local", "memory"]);
    let pid = m.pid().expect("pid file");
    assert!(alive(pid));
}

#[test]
fn unmount_leaves_no_mount_and_no_daemon_when_files_were_written() {
    let mut m = Mounted::new();
    std::fs::write(m.path("local/kept"), b"persisted").unwrap();
    std::fs::write(m.path("memory/gone"), b"ram").unwrap();
    let pid = m.pid().expect("pid file");
    let mnt = m.mnt.clone();
    let backing = m.local_backing();
    let out = m.unmount();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        mount_entry(&mnt),
        None,
        "mount still listed in /proc/self/mountinfo"
    );
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "daemon {pid} still running"
    );
    assert_eq!(std::fs::read(backing.join("kept")).unwrap(), b"persisted");
    // The mount point is a plain empty directory again.
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0);
}

#[test]
fn unmount_fails_clearly_when_nothing_is_mounted() {
    let t = temp_dir();
    let out = run_cli(t.path(), &["unmount", &t.path().display().to_string()]);
    assert_one_line_failure(&out, "not mounted");
}

#[test]
fn mount_fails_with_one_line_when_the_mount_point_is_missing() {
    let t = temp_dir();
    let mp = t.path().join("nope");
    let out = run_cli(t.path(), &["mount", &mp.display().to_string()]);
    assert_one_line_failure(&out, "does not exist");
    assert_eq!(mount_entry(&mp), None);
}

#[test]
fn mount_fails_with_one_line_when_the_mount_point_is_a_file() {
    let t = temp_dir();
    let mp = t.path().join("file");
    std::fs::write(&mp, b"").unwrap();
    let out = run_cli(t.path(), &["mount", &mp.display().to_string()]);
    assert_one_line_failure(&out, "not a directory");
}

#[test]
fn mount_fails_with_one_line_when_already_mounted() {
    let m = Mounted::new();
    let out = run_cli(&m.home, &["mount", &m.mnt.display().to_string()]);
    assert_one_line_failure(&out, "already");
    // The first mount is untouched.
    std::fs::write(m.path("memory/still"), b"ok").unwrap();
    assert_eq!(std::fs::read(m.path("memory/still")).unwrap(), b"ok");
}

fn mount_with_config_text(text: &str) -> std::process::Output {
    let t = temp_dir();
    let mp = t.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let cfg = t.path().join("config.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = run_cli(
        t.path(),
        &[
            "mount",
            &mp.display().to_string(),
            "--config",
            &cfg.display().to_string(),
        ],
    );
    assert_eq!(mount_entry(&mp), None, "a failed mount left a mount behind");
    out
}

#[test]
fn mount_fails_with_one_line_when_the_config_is_not_toml() {
    let out = mount_with_config_text("[[mount]\npath = ");
    assert_one_line_failure(&out, "config.toml");
}

#[test]
fn mount_fails_with_one_line_naming_the_entry_when_the_scheme_is_unknown() {
    let out = mount_with_config_text("[[mount]]\npath = \"/x\"\nscheme = \"nosuch\"\n");
    assert_one_line_failure(&out, "nosuch");
}

#[test]
fn mount_fails_with_one_line_when_a_key_is_misspelt() {
    let out = mount_with_config_text("[[mount]]\npath = \"/x\"\nschem = \"fs\"\n");
    assert_one_line_failure(&out, "schem");
}

#[test]
fn mount_fails_with_one_line_when_the_config_file_is_missing() {
    let t = temp_dir();
    let out = run_cli(
        t.path(),
        &[
            "mount",
            &t.path().display().to_string(),
            "--config",
            "/nonexistent/ikf.toml",
        ],
    );
    assert_one_line_failure(&out, "/nonexistent/ikf.toml");
}

#[test]
fn mount_fails_with_one_line_when_an_option_is_unknown() {
    let t = temp_dir();
    let out = run_cli(
        t.path(),
        &["mount", &t.path().display().to_string(), "-o", "frobnicate"],
    );
    assert_one_line_failure(&out, "frobnicate");
}

fn erofs<T: std::fmt::Debug>(r: std::io::Result<T>, what: &str) {
    assert_eq!(errno(&r), libc::EROFS, "{what}: {r:?}");
}

/// Every mutation of `dir` (which holds the file `f` and the directory `d`) is EROFS.
fn assert_read_only(dir: &Path) {
    use std::fs;
    erofs(fs::write(dir.join("new"), b"x"), "create");
    erofs(
        fs::OpenOptions::new().write(true).open(dir.join("f")),
        "open for write",
    );
    erofs(
        fs::OpenOptions::new().append(true).open(dir.join("f")),
        "open for append",
    );
    erofs(fs::create_dir(dir.join("nd")), "mkdir");
    erofs(fs::remove_file(dir.join("f")), "unlink");
    erofs(fs::remove_dir(dir.join("d")), "rmdir");
    erofs(fs::rename(dir.join("f"), dir.join("g")), "rename");
    erofs(
        nix::unistd::truncate(&dir.join("f"), 0).map_err(std::io::Error::from),
        "truncate",
    );
}

#[test]
fn mutations_are_erofs_and_reads_work_when_the_mount_is_read_only() {
    let m = Mounted::with_config(
        |root| {
            let ro = root.join("ro-backing");
            std::fs::create_dir_all(ro.join("d")).unwrap();
            std::fs::write(ro.join("f"), b"read me").unwrap();
            Some(format!(
                "[[mount]]\npath = \"/ro\"\nscheme = \"fs\"\nread_only = true\n[mount.options]\nroot = \"{}\"\n\n\
                 [[mount]]\npath = \"/rw\"\nuri = \"memory://\"\n",
                ro.display()
            ))
        },
        &[],
    );
    assert_eq!(std::fs::read(m.path("ro/f")).unwrap(), b"read me");
    assert!(m.path("ro/d").is_dir());
    assert_read_only(&m.path("ro"));
    // Nothing changed underneath.
    assert_eq!(std::fs::read(m.root().join("ro-backing/f")).unwrap(), b"read me");
    assert!(!m.root().join("ro-backing/new").exists());
    // Moving into or out of it crosses mounts and is refused before any copy.
    std::fs::write(m.path("rw/x"), b"x").unwrap();
    let r = std::fs::rename(m.path("rw/x"), m.path("ro/x"));
    assert!(matches!(errno(&r), libc::EXDEV | libc::EROFS), "{r:?}");
    // Permissions show no write bits.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(m.path("ro/f")).unwrap().permissions().mode();
    assert_eq!(mode & 0o222, 0, "{mode:o}");
}

#[test]
fn mutations_are_erofs_when_mounted_with_the_ro_option() {
    let m = Mounted::with_config(
        |root| {
            let b = root.join("backing");
            std::fs::create_dir_all(b.join("d")).unwrap();
            std::fs::write(b.join("f"), b"data").unwrap();
            Some(format!(
                "[[mount]]\npath = \"/local\"\nuri = \"fs://{}\"\n",
                b.display()
            ))
        },
        &["ro"],
    );
    assert_eq!(std::fs::read(m.path("local/f")).unwrap(), b"data");
    assert_read_only(&m.path("local"));
}

#[test]
fn mutations_are_erofs_when_aimed_at_the_synthetic_root() {
    let m = Mounted::new();
    use std::fs;
    erofs(fs::write(m.path("new"), b"x"), "create in root");
    erofs(fs::create_dir(m.path("nd")), "mkdir in root");
    erofs(fs::remove_dir(m.path("local")), "rmdir a mount");
    erofs(fs::rename(m.path("local"), m.path("other")), "rename a mount");
    erofs(
        fs::rename(m.path("memory"), m.path("local")),
        "rename a mount over another",
    );
    fs::write(m.path("memory/f"), b"x").unwrap();
    erofs(
        fs::rename(m.path("memory/f"), m.path("f")),
        "move a file into the root",
    );
    assert!(m.path("local").is_dir() && m.path("memory").is_dir());
}

#[test]
fn intermediate_directories_are_read_only_when_mount_paths_are_nested() {
    let m = Mounted::with_config(
        |_| Some("[[mount]]\npath = \"/a/b\"\nuri = \"memory://\"\n".into()),
        &[],
    );
    assert!(m.path("a").is_dir());
    std::fs::write(m.path("a/b/f"), b"deep").unwrap();
    assert_eq!(std::fs::read(m.path("a/b/f")).unwrap(), b"deep");
    erofs(std::fs::write(m.path("a/x"), b""), "create in synthetic dir");
    erofs(std::fs::create_dir(m.path("a/c")), "mkdir in synthetic dir");
}
