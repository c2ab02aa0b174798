//! Security and metadata fidelity on real mounts: who may reach what with
//! `allow_other` (tried as the user `nobody` through `setpriv`), and a local
//! backend that stores modes, owners, times, symlinks, hard links and
//! special files in its directory, so they survive a remount and match a
//! `stat` of the backing entries.

mod support;

use nix::sys::stat::{lstat, FileStat, SFlag};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::*;

/// `nobody` / `nogroup` on Debian.
const NOBODY: u32 = 65534;

/// The config of a `/local` backend on `backing`.
fn local_config(backing: &Path) -> String {
    format!(
        "[[mount]]\npath = \"/local\"\nscheme = \"fs\"\n[mount.options]\nroot = \"{}\"\n",
        backing.display()
    )
}

/// A backing directory that outlives each mount of it (for remounts).
fn backing_dir() -> (tempfile::TempDir, PathBuf) {
    let d = temp_dir();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = d.path().join("backing");
    std::fs::create_dir(&b).unwrap();
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o755)).unwrap();
    (d, b)
}

fn mount_on(backing: &Path, opts: &[&str]) -> Mounted {
    let cfg = local_config(backing);
    let m = Mounted::with_config(move |_| Some(cfg), opts);
    // Let other users reach the mount point inside the guard's temp dir.
    std::fs::set_permissions(m.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    m
}

/// Runs `sh -c script` as nobody:nogroup (no supplementary groups).
fn as_nobody(script: &str) -> Output {
    Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--",
            "sh",
            "-c",
            script,
        ])
        .output()
        .expect("setpriv")
}

/// One attempt as nobody, echoed into the test output (the transcript).
fn try_as_nobody(script: &str) -> (bool, String) {
    let out = as_nobody(script);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "nobody$ {script}\n{}[exit {}]",
        text,
        out.status.code().unwrap_or(-1)
    );
    (out.status.success(), text)
}

#[test]
fn with_allow_other_nobody_gets_only_what_the_modes_give() {
    let (_keep, backing) = backing_dir();
    let m = mount_on(&backing, &["allow_other"]);
    let local = m.path("local");
    std::fs::write(local.join("secret"), b"root only").unwrap();
    std::fs::set_permissions(local.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(local.join("public"), b"everyone reads").unwrap();
    std::fs::set_permissions(local.join("public"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::create_dir(local.join("rootdir")).unwrap();
    std::fs::set_permissions(local.join("rootdir"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(local.join("rootdir/kept"), b"k").unwrap();
    std::fs::create_dir(local.join("shared")).unwrap();
    std::fs::set_permissions(local.join("shared"), std::fs::Permissions::from_mode(0o1777)).unwrap();

    let l = local.display();
    let (ok, text) = try_as_nobody(&format!("cat {l}/secret"));
    assert!(!ok && text.contains("Permission denied"), "{text}");
    let (ok, text) = try_as_nobody(&format!("echo overwritten > {l}/public"));
    assert!(!ok && text.contains("Permission denied"), "{text}");
    let (ok, text) = try_as_nobody(&format!("rm -f {l}/rootdir/kept"));
    assert!(!ok && text.contains("Permission denied"), "{text}");
    let (ok, text) = try_as_nobody(&format!("rm -f {l}/secret"));
    assert!(!ok && text.contains("Permission denied"), "{text}");
    let (ok, text) = try_as_nobody(&format!("chmod 666 {l}/public"));
    assert!(!ok && text.contains("Operation not permitted"), "{text}");
    // Reading what everyone may read works.
    let (ok, text) = try_as_nobody(&format!("cat {l}/public"));
    assert!(ok && text.contains("everyone reads"), "{text}");
    // Nobody's own files work, and belong to nobody on the backing disk too.
    let (ok, text) = try_as_nobody(&format!(
        "echo mine > {l}/shared/own && chmod 600 {l}/shared/own && cat {l}/shared/own && mkdir {l}/shared/d"
    ));
    assert!(ok && text.contains("mine"), "{text}");
    let st = lstat(&backing.join("shared/own")).unwrap();
    assert_eq!(
        (st.st_uid, st.st_gid, st.st_mode & 0o7777),
        (NOBODY, NOBODY, 0o600)
    );
    assert_eq!(lstat(&backing.join("shared/d")).unwrap().st_uid, NOBODY);
    // ... and stay nobody's: root's file in the sticky directory cannot be removed by nobody.
    std::fs::write(local.join("shared/roots"), b"r").unwrap();
    let (ok, _) = try_as_nobody(&format!("rm -f {l}/shared/roots"));
    assert!(!ok);
    let (ok, text) = try_as_nobody(&format!("rm {l}/shared/own && rmdir {l}/shared/d"));
    assert!(ok, "{text}");

    // Nothing of root's changed.
    assert_eq!(std::fs::read(backing.join("secret")).unwrap(), b"root only");
    assert_eq!(std::fs::read(backing.join("public")).unwrap(), b"everyone reads");
    assert!(backing.join("rootdir/kept").exists() && backing.join("shared/roots").exists());
    let mode = std::fs::metadata(backing.join("public"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn a_symlink_out_of_the_backend_is_followed_by_the_kernel_as_the_user() {
    let (keep, backing) = backing_dir();
    // A root-only file outside the backend, reached through a symlink made
    // by hand in the backing directory.
    let outside = keep.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"outside").unwrap();
    std::fs::set_permissions(outside.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&outside, backing.join("esc")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), backing.join("esc_file")).unwrap();
    let m = mount_on(&backing, &["allow_other"]);
    let local = m.path("local");
    // Shown as the symlinks they are.
    let st = lstat(&local.join("esc")).unwrap();
    assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(std::fs::read_link(local.join("esc")).unwrap(), outside);
    let l = local.display();
    // The kernel follows them as nobody, who may not read the file.
    for p in ["esc/secret", "esc_file"] {
        let (ok, text) = try_as_nobody(&format!("cat {l}/{p}"));
        assert!(!ok && text.contains("Permission denied"), "{p}: {text}");
    }
    // Root, following them itself, reads the host file (not through the daemon).
    assert_eq!(std::fs::read(local.join("esc/secret")).unwrap(), b"outside");
}

/// What a remount must keep: the fields of an entry's stat we compare.
fn fields(st: &FileStat) -> (u32, u32, u32, u64, i64, i64, i64) {
    (
        st.st_mode,
        st.st_uid,
        st.st_gid,
        st.st_nlink,
        st.st_size,
        st.st_mtime,
        st.st_mtime_nsec,
    )
}

#[test]
fn local_modes_owners_times_and_links_are_stored_and_survive_a_remount() {
    let (_keep, backing) = backing_dir();
    let names = ["s.sh", "ln", "hard", "fifo", "sock", "d", "d/sub", "dangling"];
    {
        let m = mount_on(&backing, &[]);
        let local = m.path("local");
        let s = local.join("s.sh");
        std::fs::write(&s, b"#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o750)).unwrap();
        nix::unistd::chown(
            &s,
            Some(nix::unistd::Uid::from_raw(1234)),
            Some(nix::unistd::Gid::from_raw(5678)),
        )
        .unwrap();
        // utimensat with UTIME_OMIT for atime: only the mtime changes.
        let t2001 = nix::sys::time::TimeSpec::new(978_307_200, 123_456_789);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &s,
            &nix::sys::time::TimeSpec::UTIME_OMIT,
            &t2001,
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        )
        .unwrap();
        std::os::unix::fs::symlink("s.sh", local.join("ln")).unwrap();
        std::os::unix::fs::symlink("nowhere", local.join("dangling")).unwrap();
        std::fs::hard_link(&s, local.join("hard")).unwrap();
        nix::unistd::mkfifo(
            &local.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o640),
        )
        .unwrap();
        nix::sys::stat::mknod(
            &local.join("sock"),
            SFlag::S_IFSOCK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        std::fs::create_dir_all(local.join("d/sub")).unwrap();
        // Through the mount, as on the backing directory.
        for n in names {
            let inside = lstat(&local.join(n)).unwrap();
            let host = lstat(&backing.join(n)).unwrap();
            assert_eq!(fields(&inside), fields(&host), "{n}");
        }
        let st = lstat(&backing.join("s.sh")).unwrap();
        assert_eq!((st.st_mode & 0o7777, st.st_uid, st.st_gid), (0o750, 1234, 5678));
        assert_eq!(
            (st.st_mtime, st.st_mtime_nsec, st.st_nlink),
            (978_307_200, 123_456_789, 2)
        );
        assert_ne!(st.st_atime, 978_307_200, "atime was left alone (UTIME_OMIT)");
        assert_eq!(lstat(&backing.join("d")).unwrap().st_nlink, 3);
        assert_eq!(
            lstat(&backing.join("fifo")).unwrap().st_mode & libc::S_IFMT,
            libc::S_IFIFO
        );
        assert_eq!(std::fs::read_link(backing.join("ln")).unwrap(), Path::new("s.sh"));
        // statfs is the backing filesystem's.
        let inside = nix::sys::statvfs::statvfs(&local).unwrap();
        let host = nix::sys::statvfs::statvfs(&backing).unwrap();
        assert_eq!(
            (inside.blocks(), inside.fragment_size()),
            (host.blocks(), host.fragment_size())
        );
    }
    // A new daemon sees the same, and the script runs.
    let m = mount_on(&backing, &[]);
    let local = m.path("local");
    for n in names {
        let inside = lstat(&local.join(n)).unwrap();
        let host = lstat(&backing.join(n)).unwrap();
        assert_eq!(fields(&inside), fields(&host), "{n} after remount");
    }
    let out = Command::new(local.join("ln")).output().unwrap();
    assert!(out.status.success(), "the script runs through its symlink");
    // `ls` sees the types in the listing itself.
    let out = sh(Command::new("find")
        .arg(&local)
        .args(["-maxdepth", "1", "-type", "l"]));
    let mut links: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.rsplit('/').next().unwrap().to_string())
        .collect();
    links.sort();
    assert_eq!(links, ["dangling", "ln"]);
}

#[test]
fn rsync_a_twice_transfers_nothing_the_second_time() {
    let (_keep, backing) = backing_dir();
    let src = temp_dir();
    let s = src.path();
    std::fs::create_dir_all(s.join("a/b")).unwrap();
    std::fs::write(s.join("a/run.sh"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(s.join("a/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(s.join("a/b/data"), random_bytes(1, 100_000)).unwrap();
    std::os::unix::fs::symlink("b/data", s.join("a/link")).unwrap();
    let rsync = |dst: &Path| -> String {
        let out = sh(Command::new("rsync")
            .args(["-a", "--itemize-changes"])
            .arg(format!("{}/", s.display()))
            .arg(dst));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    {
        let m = mount_on(&backing, &[]);
        let first = rsync(&m.path("local/dst"));
        assert!(first.contains("a/b/data"), "{first}");
    }
    let m = mount_on(&backing, &[]);
    let second = rsync(&m.path("local/dst"));
    assert!(
        second.lines().all(|l| !l.starts_with('>') && !l.starts_with("c")),
        "the second run transferred or changed something:\n{second}"
    );
}

#[test]
fn a_git_checkout_copied_in_with_cp_a_is_clean_after_a_remount() {
    let (_keep, backing) = backing_dir();
    let src = temp_dir();
    let repo = src.path().join("repo");
    std::fs::create_dir_all(repo.join("bin")).unwrap();
    std::fs::write(repo.join("bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    std::fs::set_permissions(repo.join("bin/tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(repo.join("README"), b"hello\n").unwrap();
    std::os::unix::fs::symlink("bin/tool", repo.join("tool")).unwrap();
    let git = |dir: &Path, args: &[&str]| -> String {
        let out = sh(Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "safe.directory=*",
            ])
            .args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "init"]);
    {
        let m = mount_on(&backing, &[]);
        sh(Command::new("cp").arg("-a").arg(&repo).arg(m.path("local/repo")));
    }
    let m = mount_on(&backing, &[]);
    let inside = m.path("local/repo");
    assert_eq!(
        git(&inside, &["status", "--porcelain"]),
        "",
        "git status after a remount"
    );
    let out = sh(&mut Command::new(inside.join("tool")));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tool\n");
}

#[test]
fn memory_keeps_modes_owners_symlinks_and_fifos_and_refuses_hard_links() {
    let m = Mounted::new();
    let mem = m.path("memory");
    let f = mem.join("f");
    std::fs::write(&f, b"x").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o751)).unwrap();
    nix::unistd::chown(
        &f,
        Some(nix::unistd::Uid::from_raw(1234)),
        Some(nix::unistd::Gid::from_raw(5678)),
    )
    .unwrap();
    std::os::unix::fs::symlink("f", mem.join("ln")).unwrap();
    nix::unistd::mkfifo(&mem.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
    // Renamed, the attributes go along.
    std::fs::create_dir(mem.join("d")).unwrap();
    std::fs::rename(&f, mem.join("d/g")).unwrap();
    let st = lstat(&mem.join("d/g")).unwrap();
    assert_eq!((st.st_mode & 0o7777, st.st_uid, st.st_gid), (0o751, 1234, 5678));
    assert_eq!(
        lstat(&mem.join("ln")).unwrap().st_mode & libc::S_IFMT,
        libc::S_IFLNK
    );
    assert_eq!(std::fs::read_link(mem.join("ln")).unwrap(), Path::new("f"));
    let fifo = lstat(&mem.join("fifo")).unwrap();
    assert_eq!(fifo.st_mode & (libc::S_IFMT | 0o7777), libc::S_IFIFO | 0o640);
    let e = std::fs::hard_link(mem.join("d/g"), mem.join("h")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM));
}
