//! Real mounts driven by ordinary tools (`cp`, `ls`, `mkdir -p`, `mv`, `rm -r`,
//! `>>`, `truncate`, `dd`, `rsync`) and by `std::fs`, on the fs-backed
//! `/local` and the `/memory` mount of the built-in default config.
//! Every expected value comes from the tool's input or from a plain local
//! directory, never from our own output.

mod support;

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::process::Command;
use support::{random_bytes, sh, sha256, sha256_file, snapshot, Mounted};

const MOUNTS: [&str; 2] = ["local", "memory"];

#[test]
fn large_random_file_round_trips_with_equal_sha256_when_copied_in_and_out() {
    let m = Mounted::new();
    let src = m.root().join("big.src");
    let data = random_bytes(64, 64 << 20);
    let want = sha256(&data);
    std::fs::write(&src, &data).unwrap();
    drop(data);
    for mount in MOUNTS {
        let inside = m.path(&format!("{mount}/big.bin"));
        sh(Command::new("cp").arg(&src).arg(&inside));
        assert_eq!(std::fs::metadata(&inside).unwrap().len(), 64 << 20, "{mount}");
        let out = m.root().join(format!("big.{mount}.out"));
        sh(Command::new("cp").arg(&inside).arg(&out));
        assert_eq!(sha256_file(&out), want, "copy out of /{mount}");
        assert_eq!(sha256_file(&inside), want, "read in place on /{mount}");
    }
    // The fs backend holds the very bytes.
    assert_eq!(sha256_file(&m.local_backing().join("big.bin")), want);
}

#[test]
fn ls_la_shows_mounts_and_file_sizes_when_listing() {
    let m = Mounted::new();
    std::fs::write(m.path("local/hello.txt"), b"hello world\n").unwrap();
    let root = sh(Command::new("ls").arg("-la").arg(&m.mnt));
    let root = String::from_utf8_lossy(&root.stdout);
    for name in ["local", "memory"] {
        let line = root
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("no {name} in:\n{root}"));
        assert!(line.starts_with('d'), "{line}");
    }
    let dir = sh(Command::new("ls").arg("-la").arg(m.path("local")));
    let dir = String::from_utf8_lossy(&dir.stdout);
    let line = dir
        .lines()
        .find(|l| l.ends_with(" hello.txt"))
        .unwrap_or_else(|| panic!("no hello.txt in:\n{dir}"));
    assert!(line.starts_with("-rw"), "{line}");
    assert!(
        line.split_whitespace().any(|f| f == "12"),
        "size 12 missing: {line}"
    );
}

#[test]
fn mkdir_p_creates_nested_directories_when_parents_are_missing() {
    let m = Mounted::new();
    for mount in MOUNTS {
        let top = m.path(mount);
        sh(Command::new("mkdir").arg("-p").arg(top.join("a/b/c")));
        assert!(top.join("a/b/c").is_dir(), "{mount}");
        std::fs::write(top.join("a/b/c/f"), b"x").unwrap();
        assert_eq!(std::fs::read(top.join("a/b/c/f")).unwrap(), b"x");
        // Again: -p tolerates existing directories.
        sh(Command::new("mkdir").arg("-p").arg(top.join("a/b/c")));
    }
    assert!(m.local_backing().join("a/b/c/f").is_file());
}

#[test]
fn mv_moves_files_and_directories_when_inside_one_mount() {
    let m = Mounted::new();
    for mount in MOUNTS {
        let top = m.path(mount);
        std::fs::write(top.join("f"), b"file data").unwrap();
        sh(Command::new("mv").arg(top.join("f")).arg(top.join("g")));
        assert!(!top.join("f").exists(), "{mount}: source still there");
        assert_eq!(std::fs::read(top.join("g")).unwrap(), b"file data");

        sh(Command::new("mkdir").arg("-p").arg(top.join("d/sub")));
        std::fs::write(top.join("d/sub/x"), b"deep").unwrap();
        std::fs::write(top.join("d/y"), b"shallow").unwrap();
        sh(Command::new("mv").arg(top.join("d")).arg(top.join("e")));
        assert!(!top.join("d").exists(), "{mount}");
        assert_eq!(std::fs::read(top.join("e/sub/x")).unwrap(), b"deep");
        assert_eq!(std::fs::read(top.join("e/y")).unwrap(), b"shallow");

        // Replacing an existing file.
        std::fs::write(top.join("h"), b"old").unwrap();
        sh(Command::new("mv").arg(top.join("g")).arg(top.join("h")));
        assert_eq!(std::fs::read(top.join("h")).unwrap(), b"file data");
        assert!(!top.join("g").exists());
    }
}

#[test]
fn mv_copies_and_removes_when_moving_across_mounts() {
    let m = Mounted::new();
    let data = random_bytes(7, 3 << 20);
    std::fs::write(m.path("local/x"), &data).unwrap();
    sh(Command::new("mkdir").arg("-p").arg(m.path("local/tree/sub")));
    std::fs::write(m.path("local/tree/sub/y"), b"yy").unwrap();

    sh(Command::new("mv").arg(m.path("local/x")).arg(m.path("memory/x")));
    assert!(!m.path("local/x").exists());
    assert_eq!(sha256_file(&m.path("memory/x")), sha256(&data));

    sh(Command::new("mv")
        .arg(m.path("local/tree"))
        .arg(m.path("memory/")));
    assert!(!m.path("local/tree").exists());
    assert_eq!(std::fs::read(m.path("memory/tree/sub/y")).unwrap(), b"yy");

    sh(Command::new("mv")
        .arg(m.path("memory/x"))
        .arg(m.path("local/back")));
    assert_eq!(sha256_file(&m.path("local/back")), sha256(&data));
    assert_eq!(sha256_file(&m.local_backing().join("back")), sha256(&data));
}

#[test]
fn whole_tree_is_gone_when_removed_with_rm_r() {
    let m = Mounted::new();
    for mount in MOUNTS {
        let top = m.path(mount);
        sh(Command::new("mkdir")
            .arg("-p")
            .arg(top.join("t/a/b"))
            .arg(top.join("t/c")));
        for f in ["t/1", "t/a/2", "t/a/b/3", "t/c/4"] {
            std::fs::write(top.join(f), f.as_bytes()).unwrap();
        }
        sh(Command::new("rm").arg("-r").arg(top.join("t")));
        assert!(!top.join("t").exists(), "{mount}");
        let left: Vec<_> = std::fs::read_dir(&top).unwrap().collect();
        assert!(left.is_empty(), "{mount}: {left:?}");
    }
    assert!(!m.local_backing().join("t").exists());
}

#[test]
fn shell_append_adds_to_the_end_when_redirected_with_double_angle() {
    let m = Mounted::new();
    for mount in MOUNTS {
        let f = m.path(&format!("{mount}/log"));
        let f = f.display().to_string();
        sh(Command::new("sh").arg("-c").arg(format!("echo one > '{f}'")));
        sh(Command::new("sh").arg("-c").arg(format!("echo two >> '{f}'")));
        sh(Command::new("sh").arg("-c").arg(format!("printf three >> '{f}'")));
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "one\ntwo\nthree", "{mount}");
        // O_APPEND through std::fs as well, with two handles open at once.
        let mut a = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
        let mut b = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
        a.write_all(b"-a").unwrap();
        b.write_all(b"-b").unwrap();
        drop((a, b));
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "one\ntwo\nthree-a-b",
            "{mount}"
        );
    }
}

/// close() does not wait for FUSE's release, so the next open races the
/// previous handle's last release. Each round opens two appenders at once
/// right after the previous round closed; every byte must be kept.
#[test]
fn every_append_is_kept_when_files_are_reopened_right_after_close() {
    let m = Mounted::new();
    const ROUNDS: usize = 150;
    for mount in MOUNTS {
        let f = m.path(&format!("{mount}/race.log"));
        std::fs::write(&f, b"start\n").unwrap();
        let mut want = b"start\n".to_vec();
        for i in 0..ROUNDS {
            let mut a = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
            let mut b = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
            let (la, lb) = (format!("a{i}\n"), format!("b{i}\n"));
            a.write_all(la.as_bytes()).unwrap();
            b.write_all(lb.as_bytes()).unwrap();
            drop((a, b));
            want.extend_from_slice(la.as_bytes());
            want.extend_from_slice(lb.as_bytes());
        }
        let got = std::fs::read(&f).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{mount}"
        );
    }
}

#[test]
fn file_shrinks_grows_and_empties_when_truncated() {
    let m = Mounted::new();
    for mount in MOUNTS {
        let f = m.path(&format!("{mount}/t"));
        std::fs::write(&f, b"0123456789").unwrap();
        sh(Command::new("truncate").arg("-s").arg("4").arg(&f));
        assert_eq!(std::fs::read(&f).unwrap(), b"0123", "{mount}");
        sh(Command::new("truncate").arg("-s").arg("8").arg(&f));
        assert_eq!(std::fs::read(&f).unwrap(), b"0123\0\0\0\0", "{mount}");
        sh(Command::new("truncate").arg("-s").arg("0").arg(&f));
        assert_eq!(std::fs::metadata(&f).unwrap().len(), 0, "{mount}");
        assert!(std::fs::read(&f).unwrap().is_empty());
        // truncate(2) by path on a file nobody has open.
        std::fs::write(&f, b"abcdef").unwrap();
        nix::unistd::truncate(&f, 2).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"ab", "{mount}");
    }
}

#[test]
fn only_the_sought_block_changes_when_dd_writes_with_notrunc() {
    let m = Mounted::new();
    let base = random_bytes(1, 64 * 1024);
    let patch = random_bytes(2, 4096);
    let mut want = base.clone();
    want[3 * 4096..4 * 4096].copy_from_slice(&patch);
    let patch_file = m.root().join("patch");
    std::fs::write(&patch_file, &patch).unwrap();
    for mount in MOUNTS {
        let f = m.path(&format!("{mount}/dd.bin"));
        std::fs::write(&f, &base).unwrap();
        sh(Command::new("dd")
            .arg(format!("if={}", patch_file.display()))
            .arg(format!("of={}", f.display()))
            .args(["bs=4096", "seek=3", "conv=notrunc", "status=none"]));
        let got = std::fs::read(&f).unwrap();
        assert_eq!(got.len(), want.len(), "{mount}");
        assert!(got == want, "{mount}: bytes differ after dd");
        // Past the end: dd extends the file with a hole.
        sh(Command::new("dd")
            .arg(format!("if={}", patch_file.display()))
            .arg(format!("of={}", f.display()))
            .args(["bs=4096", "seek=20", "conv=notrunc", "status=none"]));
        let got = std::fs::read(&f).unwrap();
        assert_eq!(got.len(), 21 * 4096, "{mount}");
        assert!(got[16 * 4096..20 * 4096].iter().all(|b| *b == 0));
        assert!(got[20 * 4096..] == patch[..]);
    }
}

#[test]
fn random_writes_at_offsets_match_a_local_file_when_using_pwrite() {
    let m = Mounted::new();
    let reference = m.root().join("ref");
    for mount in MOUNTS {
        let f = m.path(&format!("{mount}/pw"));
        let files = [&reference, &f];
        for p in files {
            std::fs::write(p, random_bytes(3, 100_000)).unwrap();
        }
        let handles: Vec<_> = files
            .iter()
            .map(|p| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(p)
                    .unwrap()
            })
            .collect();
        for (i, (off, len)) in [
            (0u64, 10usize),
            (99_990, 30),
            (50_000, 70_000),
            (5, 1),
            (300_000, 9),
        ]
        .into_iter()
        .enumerate()
        {
            let chunk = random_bytes(100 + i as u64, len);
            for h in &handles {
                h.write_all_at(&chunk, off).unwrap();
            }
            // Read back while still open.
            let mut a = vec![0u8; len];
            let mut b = vec![0u8; len];
            handles[0].read_exact_at(&mut a, off).unwrap();
            handles[1].read_exact_at(&mut b, off).unwrap();
            assert!(a == b, "{mount}: read back at {off}");
        }
        drop(handles);
        assert_eq!(sha256_file(&f), sha256_file(&reference), "{mount}");
    }
}

#[test]
fn parallel_writers_each_keep_their_own_file_when_eight_threads_write_at_once() {
    let m = Mounted::new();
    for mount in MOUNTS {
        let top = m.path(mount);
        let threads: Vec<_> = (0..8u64)
            .map(|i| {
                let p = top.join(format!("par{i}"));
                std::thread::spawn(move || {
                    let data = random_bytes(1000 + i, (2 << 20) + i as usize * 4099);
                    let mut f = std::fs::File::create(&p).unwrap();
                    for chunk in data.chunks(64 * 1024 + 17) {
                        f.write_all(chunk).unwrap();
                    }
                    f.sync_all().unwrap();
                    sha256(&data)
                })
            })
            .collect();
        let want: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        for (i, w) in want.iter().enumerate() {
            assert_eq!(&sha256_file(&top.join(format!("par{i}"))), w, "{mount} par{i}");
        }
    }
}

#[test]
fn tree_is_unchanged_when_rsynced_in_and_back_out() {
    let m = Mounted::new();
    let src = m.root().join("src");
    for d in ["a/b/c", "empty", "x"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    let files: [(&str, usize); 6] = [
        ("top.txt", 5),
        ("zero", 0),
        ("a/one", 4096),
        ("a/b/two", 1 << 20),
        ("a/b/c/three", 3 * 1024 * 1024 + 7),
        ("x/.hidden", 100),
    ];
    for (i, (f, len)) in files.iter().enumerate() {
        std::fs::write(src.join(f), random_bytes(i as u64, *len)).unwrap();
    }
    let want = snapshot(&src);
    for mount in MOUNTS {
        let inside = m.path(&format!("{mount}/copy"));
        let back = m.root().join(format!("back-{mount}"));
        sh(Command::new("rsync")
            .arg("-a")
            .arg(format!("{}/", src.display()))
            .arg(&inside));
        assert!(snapshot(&inside) == want, "{mount}: tree inside differs");
        sh(Command::new("rsync")
            .arg("-a")
            .arg(format!("{}/", inside.display()))
            .arg(&back));
        let got = snapshot(&back);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{mount}"
        );
        assert!(got == want, "{mount}: bytes differ after the round trip");
    }
}

#[test]
fn next_read_sees_the_new_size_when_truncated_right_after_close() {
    // close() does not wait for FUSE's release: the release (which uploads)
    // races the truncate and the getattr that follows it.
    let m = Mounted::new();
    for mount in MOUNTS {
        for i in 0..100 {
            let f = m.path(&format!("{mount}/t{i}"));
            std::fs::File::create(&f).unwrap();
            nix::unistd::truncate(&f, 14_736).unwrap();
            std::fs::create_dir(m.path(&format!("{mount}/d{i}"))).unwrap();
            assert_eq!(std::fs::read(&f).unwrap().len(), 14_736, "{mount} round {i}");
        }
    }
}

#[test]
fn files_created_by_another_user_are_owned_by_that_user_when_allow_other() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;
    let m = Mounted::with_config(|_| None, &["allow_other"]);
    // allow_other checks permissions: nobody needs a way to the mount and a
    // directory it may write in.
    for p in [m.root(), &m.home, &m.local_backing()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for mount in MOUNTS {
        let dir = m.path(&format!("{mount}/shared"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (f, d) = (dir.join("theirs"), dir.join("their-dir"));
        sh(Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c"])
            .arg(format!("echo hi > '{}' && mkdir '{}'", f.display(), d.display())));
        for p in [&f, &d] {
            let md = std::fs::metadata(p).unwrap();
            assert_eq!((md.uid(), md.gid()), (65534, 65534), "{}", p.display());
        }
        // What root (the mounting user) creates stays the mount owner's.
        std::fs::write(dir.join("mine"), b"x").unwrap();
        assert_eq!(std::fs::metadata(dir.join("mine")).unwrap().uid(), 0);
        assert_eq!(std::fs::read(&f).unwrap(), b"hi\n");
    }
}

#[test]
fn file_grows_with_zeros_when_fallocated_and_keep_size_is_a_no_op() {
    let m = Mounted::new();
    for mount in MOUNTS {
        let f = m.path(&format!("{mount}/fa"));
        std::fs::write(&f, b"abc").unwrap();
        sh(Command::new("fallocate").args(["-l", "10000"]).arg(&f));
        let got = std::fs::read(&f).unwrap();
        assert_eq!(got.len(), 10_000, "{mount}");
        assert!(
            got.starts_with(b"abc") && got[3..].iter().all(|b| *b == 0),
            "{mount}"
        );
        // Never shrinks.
        sh(Command::new("fallocate").args(["-l", "5"]).arg(&f));
        assert_eq!(std::fs::metadata(&f).unwrap().len(), 10_000, "{mount}");
        sh(Command::new("fallocate").args(["-n", "-l", "99999"]).arg(&f));
        assert_eq!(std::fs::metadata(&f).unwrap().len(), 10_000, "{mount}");
        // Punching holes is not supported, and says so.
        let out = Command::new("fallocate")
            .args(["-p", "-o", "0", "-l", "3"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{mount}: punch hole succeeded");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("support"),
            "{mount}: {out:?}"
        );
        assert!(std::fs::read(&f).unwrap().starts_with(b"abc"));
    }
}

#[test]
fn missing_names_are_cached_until_changed_when_inside_a_mount() {
    // A long TTL so the cached miss outlives any scheduling delay.
    let m = Mounted::with_config(|_| None, &["attr_timeout=30"]);
    let ghost = m.path("local/ghost");
    assert_eq!(support::errno(&std::fs::metadata(&ghost)), libc::ENOENT);
    // Created behind the mount's back: the cached miss hides it (for up to the TTL).
    std::fs::write(m.local_backing().join("ghost"), b"boo").unwrap();
    assert_eq!(support::errno(&std::fs::metadata(&ghost)), libc::ENOENT);
    // Changes through the mount replace the cached miss at once.
    for mount in MOUNTS {
        let p = m.path(&format!("{mount}/n"));
        assert_eq!(support::errno(&std::fs::metadata(&p)), libc::ENOENT);
        std::fs::write(&p, b"x").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"x", "{mount}");
        std::fs::remove_file(&p).unwrap();
        assert_eq!(support::errno(&std::fs::metadata(&p)), libc::ENOENT, "{mount}");
        std::fs::create_dir(&p).unwrap();
        assert!(p.is_dir(), "{mount}");
        let q = m.path(&format!("{mount}/q"));
        assert_eq!(support::errno(&std::fs::metadata(&q)), libc::ENOENT);
        std::fs::rename(&p, &q).unwrap();
        assert!(q.is_dir() && !p.exists(), "{mount}");
    }
}
