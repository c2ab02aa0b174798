//! The MCP server (`ipfs-kit-fuse mcp`) against a real mount, driven by the
//! official MCP Python SDK (tests/mcp/client_test.py, installed by
//! scripts/mcp-client.sh): every tool called, results checked on disk,
//! refusals (escapes, read-only, bad arguments, the read cap) as tool
//! errors, client roots, progress, the HTTP transport, and the sync tools
//! against a real Kubo-RPC node (IPFS_KIT_REQUIRE_KUBO_RPC as in ipfs_*.rs).
//!
//! Without the SDK these tests print why and pass, unless
//! `IPFS_KIT_REQUIRE_MCP=1` (set by scripts/test.sh), where they fail.

#[path = "car_common/mod.rs"]
mod car_common;
#[path = "ipfs_common/mod.rs"]
mod ipfs_common;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{run_cli, Mounted};

/// The venv python with the MCP SDK, or None (after saying why).
fn mcp_python() -> Option<PathBuf> {
    let p = std::env::var_os("IKF_MCP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            home.join(".cache/ipfs-kit-fuse/mcp-client/bin/python")
        });
    if p.exists() {
        return Some(p);
    }
    let msg = format!(
        "the MCP Python SDK is not installed ({} missing): run bash scripts/mcp-client.sh",
        p.display()
    );
    if std::env::var("IPFS_KIT_REQUIRE_MCP").is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

/// A mount with /local (fs), /memory, /ro (fs, read-only) and /bkt (fs,
/// bucket "b1"), plus the
/// fixtures: a sparse 1 GiB file and a symlink out of /local's directory.
fn mount() -> Mounted {
    let m = Mounted::with_config(
        |root| {
            for d in ["local", "ro/keep", "bkt"] {
                std::fs::create_dir_all(root.join(d)).unwrap();
            }
            std::fs::write(root.join("ro/keep/f.txt"), b"keep").unwrap();
            Some(format!(
                r#"
[[mount]]
path = "/local"
scheme = "fs"
[mount.options]
root = "{root}/local"

[[mount]]
path = "/memory"
uri = "memory://"

[[mount]]
path = "/ro"
scheme = "fs"
read_only = true
[mount.options]
root = "{root}/ro"

[[mount]]
path = "/bkt"
scheme = "fs"
bucket = "b1"
[mount.options]
root = "{root}/bkt"
"#,
                root = root.display()
            ))
        },
        &[],
    );
    let local = m.root().join("local");
    let big = std::fs::File::create(local.join("big.bin")).unwrap();
    big.set_len(1 << 30).unwrap(); // sparse: 1 GiB that takes no disk
    std::os::unix::fs::symlink("/etc", local.join("escape")).unwrap();
    m
}

fn run_client(m: &Mounted, transport: &str) {
    run_client_with(m, transport, &[]);
}

fn run_client_with(m: &Mounted, transport: &str, env: &[(&str, String)]) {
    let Some(python) = mcp_python() else { return };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client_test.py");
    let socket = ipfs_kit_fuse::control::paths::socket_path(&m.mnt.canonicalize().unwrap());
    // `timeout`: a hung server fails the test instead of hanging it.
    let out = Command::new("timeout")
        .arg("600")
        .arg(&python)
        .arg(&script)
        .env("IKF_BIN", support::bin())
        .env("IKF_MNT", &m.mnt)
        .env("IKF_LOCAL", m.root().join("local"))
        .env("IKF_RO", m.root().join("ro"))
        .env("IKF_BKT", m.root().join("bkt"))
        .env(
            "IKF_IPFS_CAR",
            car_common::ipfs_car()
                .map(|p| p.into_os_string())
                .unwrap_or_default(),
        )
        .env("IKF_SOCKET", &socket)
        .env("IKF_TRANSPORT", transport)
        .env("IPFS_KIT_HOME", &m.home)
        .env_remove("RUST_LOG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run the MCP client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "MCP client checks failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

#[test]
fn every_tool_works_and_refuses_what_it_must_over_stdio() {
    let m = mount();
    run_client(&m, "stdio");
}

#[test]
fn tools_work_over_streamable_http() {
    let m = mount();
    run_client(&m, "http");
}

/// IPFS node CID options of the default profile (unixfs-v1-2025), as kubo's
/// `add` takes them: the node's own CID of the tree is the golden value.
const V1: &str = "cid-version=1&raw-leaves=true&chunker=size-1048576&cid-base=base32";

#[test]
fn sync_tools_push_to_and_pull_from_a_real_ipfs_node() {
    let Some(node) = ipfs_common::KuboNode::start() else {
        return;
    };
    let m = mount();
    let tree = m.root().join("local/tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), b"pushed by an agent\n").unwrap();
    std::fs::write(tree.join("sub/b.bin"), support::random_bytes(7, 3 << 20)).unwrap();
    // 36 MiB: the daemon reports push progress every 16 MiB packed.
    std::fs::write(tree.join("zeros.bin"), vec![0u8; 36 << 20]).unwrap();
    let want = node.add(&tree, &format!("{V1}&only-hash=true"));
    let want_file = node.add(&tree.join("sub/b.bin"), &format!("{V1}&only-hash=true"));
    run_client_with(
        &m,
        "ipfs",
        &[
            ("IKF_IPFS_API", node.api.clone()),
            ("IKF_WANT_ROOT", want),
            ("IKF_WANT_FILE_CID", want_file),
        ],
    );
}

#[test]
fn mcp_refuses_a_non_loopback_http_address() {
    let dir = support::temp_dir();
    let out = run_cli(
        dir.path(),
        &["mcp", "--http", "0.0.0.0:0", "--socket", "/nonexistent.sock"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("only a loopback address"), "{err}");
}

#[test]
fn mcp_without_a_running_daemon_says_so_in_one_line_and_exits_1() {
    let dir = support::temp_dir();
    let out = run_cli(
        dir.path(),
        &[
            "mcp",
            "--socket",
            &dir.path().join("none.sock").display().to_string(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("cannot reach the daemon"), "{err}");
    assert!(out.stdout.is_empty());
}
