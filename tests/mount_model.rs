//! Reference-model property test: random sequences of create, write at an
//! offset, truncate, rename, unlink, mkdir, rmdir and read are applied to a
//! real mount (`/local` on the fs backend, `/memory`) and to a plain local
//! directory, which is the model. Every operation must fail with the same
//! errno (or succeed on both) and reads must return the same bytes; after
//! each sequence the two trees must hold the same names, kinds and bytes.
//! `IKF_MODEL_CASES=N` runs more sequences than the default 32.

mod support;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::os::unix::fs::FileExt;
use std::path::Path;
use support::{errno, random_bytes, snapshot, Mounted};

/// A small name space so operations collide often (same names, nesting,
/// files where directories are expected and the other way round).
const PATHS: &[&str] = &["a", "b", "d", "d/a", "d/b", "e", "e/a", "d/e", "d/e/a"];

#[derive(Debug, Clone)]
enum Op {
    Create(usize),
    Write {
        path: usize,
        offset: u64,
        len: usize,
        seed: u64,
    },
    Truncate(usize, u64),
    Rename(usize, usize),
    Unlink(usize),
    Mkdir(usize),
    Rmdir(usize),
    Read(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let p = || 0..PATHS.len();
    prop_oneof![
        2 => p().prop_map(Op::Create),
        3 => (p(), 0u64..20_000, 1usize..5_000, any::<u64>())
            .prop_map(|(path, offset, len, seed)| Op::Write { path, offset, len, seed }),
        1 => (p(), 0u64..30_000).prop_map(|(a, n)| Op::Truncate(a, n)),
        2 => (p(), p()).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => p().prop_map(Op::Unlink),
        3 => p().prop_map(Op::Mkdir),
        1 => p().prop_map(Op::Rmdir),
        1 => p().prop_map(Op::Read),
    ]
}

/// Applies `op` under `root`: the errno (0 on success) and the bytes read, if any.
fn apply(root: &Path, op: &Op) -> (i32, Option<Vec<u8>>) {
    use std::fs;
    let at = |i: usize| root.join(PATHS[i]);
    match op {
        Op::Create(p) => (errno(&fs::File::create(at(*p))), None),
        Op::Write {
            path,
            offset,
            len,
            seed,
        } => {
            let r = fs::OpenOptions::new()
                .write(true)
                .open(at(*path))
                .and_then(|f| f.write_all_at(&random_bytes(*seed, *len), *offset));
            (errno(&r), None)
        }
        Op::Truncate(p, n) => {
            let r = nix::unistd::truncate(&at(*p), *n as i64).map_err(std::io::Error::from);
            (errno(&r), None)
        }
        Op::Rename(a, b) => (errno(&fs::rename(at(*a), at(*b))), None),
        Op::Unlink(p) => (errno(&fs::remove_file(at(*p))), None),
        Op::Mkdir(p) => (errno(&fs::create_dir(at(*p))), None),
        Op::Rmdir(p) => (errno(&fs::remove_dir(at(*p))), None),
        Op::Read(p) => {
            let r = fs::read(at(*p));
            (errno(&r), r.ok())
        }
    }
}

fn check_against_model(mount: &str) {
    let m = Mounted::new();
    let model_root = m.root().join("model");
    let case = std::sync::atomic::AtomicU32::new(0);
    let mut runner = TestRunner::new(Config {
        // Modest by default so `cargo test` stays quick; IKF_MODEL_CASES=N digs deeper.
        cases: std::env::var("IKF_MODEL_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(32),
        // Shrinking re-runs sequences on the mount; keep it bounded.
        max_shrink_iters: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..=20), |ops| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let real = m.path(&format!("{mount}/case{case}"));
        let model = model_root.join(format!("case{case}"));
        std::fs::create_dir_all(&real).unwrap();
        std::fs::create_dir_all(&model).unwrap();
        for (i, op) in ops.iter().enumerate() {
            let want = apply(&model, op);
            let got = apply(&real, op);
            prop_assert_eq!(
                got.0,
                want.0,
                "op #{} {:?}: errno {} on /{}, {} on the model",
                i,
                op,
                got.0,
                mount,
                want.0
            );
            if got.1 != want.1 {
                return Err(TestCaseError::fail(format!(
                    "op #{i} {op:?}: read returned other bytes"
                )));
            }
        }
        let (got, want) = (snapshot(&real), snapshot(&model));
        if got != want {
            let kinds = |s: &std::collections::BTreeMap<String, support::Node>| {
                s.iter()
                    .map(|(k, v)| match v {
                        support::Node::Dir => format!("{k}/"),
                        support::Node::File(b) => format!("{k} ({} bytes, {})", b.len(), support::sha256(b)),
                    })
                    .collect::<Vec<_>>()
            };
            return Err(TestCaseError::fail(format!(
                "trees differ after {ops:?}\n/{mount}: {:#?}\nmodel: {:#?}",
                kinds(&got),
                kinds(&want)
            )));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("/{mount} differs from a plain directory: {e}");
    }
}

#[test]
fn errnos_and_trees_match_a_plain_directory_when_random_ops_run_on_local() {
    check_against_model("local");
}

#[test]
fn errnos_and_trees_match_a_plain_directory_when_random_ops_run_on_memory() {
    check_against_model("memory");
}
