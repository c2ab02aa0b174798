//! Listings on real mounts carry attributes (READDIRPLUS): `ls -l`, `ls -lR`
//! and `read_dir` + `lstat` show the sizes and times the files have, with no
//! LOOKUP per name; an open file shows its unflushed size; names deleted and
//! made again after a listing stat right; and the inodes a listing hands the
//! kernel are freed when the kernel forgets them (the lookup counts match).
//! Expected values come from the test's own inputs or the backing directory.

mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};
use support::{sh, wait_until, Mounted};

/// `/local` on `ROOT/local` and `/memory`, with a TTL long enough that a
/// slow test machine still stats names before the listing's attributes expire.
fn long_ttl(root: &Path) -> Option<String> {
    Some(format!(
        "[vfs]\nattr_ttl_secs = 60.0\n\n[[mount]]\npath = \"/local\"\nscheme = \"fs\"\n\
         [mount.options]\nroot = \"{}\"\n\n[[mount]]\npath = \"/memory\"\nscheme = \"memory\"\n",
        root.join("local").display()
    ))
}

/// How many times the daemon ran FUSE operation `op`.
fn op_count(m: &Mounted, op: &str) -> u64 {
    m.cli_json("stats")["ops"]
        .as_array()
        .expect("ops")
        .iter()
        .find(|o| o["op"] == op)
        .and_then(|o| o["count"].as_u64())
        .unwrap_or(0)
}

/// Live inodes in the daemon's table.
fn inodes(m: &Mounted) -> u64 {
    m.cli_json("status")["inodes"].as_u64().expect("inodes")
}

/// A fixed time with a nanosecond part, distinct per `i`.
fn time(i: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(1_600_000_000 + i * 61, (i * 7_919) as u32 % 1_000_000_000)
}

/// Writes `len` bytes to `path` and sets its modification time.
fn make(path: &Path, len: usize, mtime: SystemTime) {
    let f = File::create(path).unwrap();
    f.set_len(len as u64).unwrap();
    f.set_modified(mtime).unwrap();
}

/// `ls -lnR --time-style=+%s.%N DIR`: relative path -> (size, "secs.nanos").
fn ls_lr(dir: &Path) -> BTreeMap<String, (u64, String)> {
    let out = sh(Command::new("ls").arg("-lnR").arg("--time-style=+%s.%N").arg(dir));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut cur = String::new();
    let mut got = BTreeMap::new();
    for line in text.lines() {
        if let Some(d) = line.strip_suffix(':') {
            let rel = Path::new(d).strip_prefix(dir).unwrap();
            cur = rel.to_string_lossy().into_owned();
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 || !line.starts_with('-') {
            continue;
        }
        let name = f[6..].join(" ");
        let rel = if cur.is_empty() {
            name
        } else {
            format!("{cur}/{name}")
        };
        got.insert(rel, (f[4].parse().unwrap(), f[5].to_string()));
    }
    got
}

fn secs_nanos(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

#[test]
fn listed_sizes_and_times_are_the_files_without_a_lookup_per_name_when_read_with_read_dir_and_lstat() {
    let m = Mounted::with_config(long_ttl, &[]);
    const N: u64 = 200;
    let backing = m.root().join("local/d");
    std::fs::create_dir_all(backing.join("sub")).unwrap();
    for i in 0..N {
        make(
            &backing.join(format!("f{i:03}")),
            (i * 523 % 9_000) as usize,
            time(i),
        );
    }
    for i in 0..N {
        std::fs::write(m.path(&format!("memory/m{i:03}")), vec![1u8; (i * 31) as usize]).unwrap();
    }
    let lookups = op_count(&m, "lookup");
    for (dir, n) in [("local/d", N + 1), ("memory", N)] {
        let mut seen = 0;
        for e in std::fs::read_dir(m.path(dir)).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            // lstat through the entry, as `ls -l` does.
            let md = e.metadata().unwrap();
            if let Some(i) = name.strip_prefix('f').map(|i| i.parse::<u64>().unwrap()) {
                assert!(md.is_file(), "{name}");
                assert_eq!(md.len(), i * 523 % 9_000, "{name}");
                assert_eq!(md.modified().unwrap(), time(i), "{name}");
            } else if let Some(i) = name.strip_prefix('m').map(|i| i.parse::<u64>().unwrap()) {
                assert_eq!(md.len(), i * 31, "{name}");
            } else {
                assert_eq!(name, "sub");
                assert!(md.is_dir());
                let want = std::fs::metadata(backing.join("sub")).unwrap();
                assert_eq!(md.modified().unwrap(), want.modified().unwrap());
            }
            seen += 1;
        }
        assert_eq!(seen, n, "{dir}");
    }
    // The listing brought the attributes: the kernel asked for almost no name.
    let asked = op_count(&m, "lookup") - lookups;
    assert!(asked < 10, "{asked} lookups for {} listed names", 2 * N + 1);
    assert!(op_count(&m, "readdirplus") > 0);
    // The synthetic root's names are directories.
    for e in std::fs::read_dir(&m.mnt).unwrap() {
        assert!(e.unwrap().metadata().unwrap().is_dir());
    }
}

#[test]
fn ls_lr_shows_every_size_and_time_when_listing_2000_files() {
    let m = Mounted::new();
    let top = m.local_backing().join("tree");
    let mut want = BTreeMap::new();
    for d in 0..20u64 {
        let dir = top.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100u64 {
            let i = d * 100 + f;
            let size = (i * 37 % 9_001) as usize;
            make(&dir.join(format!("f{f:03}")), size, time(i));
            want.insert(format!("d{d:02}/f{f:03}"), (size as u64, secs_nanos(time(i))));
        }
    }
    assert_eq!(ls_lr(&m.path("local/tree")), want);
    // Again, now answered from the kernel's and the listing cache.
    assert_eq!(ls_lr(&m.path("local/tree")), want);
}

#[test]
fn an_open_file_shows_its_unflushed_size_when_its_directory_is_listed() {
    let m = Mounted::new();
    for mount in ["local", "memory"] {
        let path = m.path(&format!("{mount}/open"));
        std::fs::write(&path, b"old").unwrap();
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all(&[5u8; 10_000]).unwrap();
        // Not flushed or closed: the bytes are in the staged copy only. (No
        // child process either: its exec closes the inherited descriptor,
        // which flushes.)
        let e = std::fs::read_dir(m.path(mount))
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.file_name() == "open")
            .unwrap();
        assert_eq!(e.metadata().unwrap().len(), 10_000, "{mount}");
        drop(f);
        assert_eq!(ls_lr(&m.path(mount))["open"].0, 10_000, "{mount}");
    }
    assert_eq!(
        std::fs::read(m.local_backing().join("open")).unwrap(),
        [5u8; 10_000]
    );
}

#[test]
fn stats_stay_right_when_listed_names_are_deleted_and_made_again() {
    let m = Mounted::new();
    for mount in ["local", "memory"] {
        let dir = m.path(&format!("{mount}/churn"));
        std::fs::create_dir(&dir).unwrap();
        for i in 0..50 {
            std::fs::write(dir.join(format!("f{i}")), vec![1u8; i]).unwrap();
        }
        sh(Command::new("ls").arg("-l").arg(&dir));
        for round in 1..=3usize {
            for i in 0..50 {
                let p = dir.join(format!("f{i}"));
                std::fs::remove_file(&p).unwrap();
                std::fs::write(&p, vec![round as u8; i + round * 100]).unwrap();
            }
            let listed = ls_lr(&dir);
            for i in 0..50 {
                let name = format!("f{i}");
                assert_eq!(
                    listed[&name].0,
                    (i + round * 100) as u64,
                    "{mount} {name} round {round}"
                );
                let p = dir.join(&name);
                assert_eq!(std::fs::metadata(&p).unwrap().len(), (i + round * 100) as u64);
                assert_eq!(std::fs::read(&p).unwrap(), vec![round as u8; i + round * 100]);
            }
        }
    }
    // Changed behind the mount's back: seen once the TTL (1 s) has passed.
    let backing = m.local_backing().join("churn");
    for i in 0..50 {
        std::fs::remove_file(backing.join(format!("f{i}"))).unwrap();
        std::fs::write(backing.join(format!("f{i}")), vec![9u8; i + 7]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1_500));
    let listed = ls_lr(&m.path("local/churn"));
    for i in 0..50 {
        let p = m.path(&format!("local/churn/f{i}"));
        assert_eq!(listed[&format!("f{i}")].0, (i + 7) as u64);
        assert_eq!(std::fs::read(&p).unwrap(), vec![9u8; i + 7]);
    }
}

#[test]
fn listed_inodes_are_freed_when_the_kernel_forgets_them() {
    let m = Mounted::with_config(long_ttl, &[]);
    let backing = m.root().join("local/many");
    std::fs::create_dir_all(&backing).unwrap();
    for i in 0..300 {
        std::fs::write(backing.join(format!("f{i}")), vec![0u8; i]).unwrap();
    }
    let base = inodes(&m);
    let lookups = op_count(&m, "lookup");
    for _ in 0..3 {
        sh(Command::new("ls").arg("-l").arg(m.path("local/many")));
    }
    let listed = inodes(&m);
    assert!(listed >= base + 300, "{base} -> {listed}");
    // An inode counted less often than the kernel counts it would be gone
    // from the table while the kernel still uses it: the kernel then finds
    // it stale and looks the name up again.
    let asked = op_count(&m, "lookup") - lookups;
    assert!(asked < 10, "{asked} lookups while listing 300 names three times");
    // Dropping the kernel's dentries sends FORGETs: an inode counted more
    // often than the kernel counts it would stay in the table. The drop is
    // machine-wide (every other test's mounts lose their dentries too), so
    // it is done once, and again only every few seconds while the FORGETs
    // arrive, not on every poll.
    let mut last_drop: Option<std::time::Instant> = None;
    let mut free = |m: &Mounted| {
        if last_drop.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
            std::fs::write("/proc/sys/vm/drop_caches", "2").unwrap();
            last_drop = Some(std::time::Instant::now());
        }
        inodes(m) <= base + 2
    };
    assert!(
        wait_until(Duration::from_secs(20), || free(&m)),
        "{base} -> {listed} -> {} after the kernel forgot",
        inodes(&m)
    );
    // And nothing was forgotten too early: the names stat right afterwards.
    let listed = ls_lr(&m.path("local/many"));
    for i in 0..300usize {
        assert_eq!(listed[&format!("f{i}")].0, i as u64);
    }
}
