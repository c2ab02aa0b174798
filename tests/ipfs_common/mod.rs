//! Shared helpers for tests/ipfs_*.rs: a Kubo-RPC node (js-ipfs, installed by
//! scripts/kubo-rpc.sh) started on 127.0.0.1 and stopped on drop, adding
//! trees and files to it, a trustless-gateway stand-in that serves blocks
//! from a map (so a test can serve a tampered one), and [`PyServer`], which
//! runs one of the Python servers under tests/gateway/ (the CAR gateway
//! stand-in, the fault proxy in front of the node).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// The repository root (scripts live there).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running js-ipfs daemon; stopped (by its pid, through the script) on drop.
pub struct KuboNode {
    pub api: String,
    repo: tempfile::TempDir,
    stopped: bool,
}

impl KuboNode {
    /// Starts a node, or returns None (skip) when the install is missing and
    /// IPFS_KIT_REQUIRE_KUBO_RPC is not 1 (then a missing install panics).
    pub fn start() -> Option<KuboNode> {
        let dir = std::env::var_os("IPFS_KIT_KUBO_RPC_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".cache/ipfs-kit-fuse/kubo-rpc")
            });
        if !dir.join(".ok-0.66.1").exists() {
            if std::env::var("IPFS_KIT_REQUIRE_KUBO_RPC").is_ok_and(|v| v == "1") {
                panic!(
                    "Kubo-RPC node missing in {} (run scripts/kubo-rpc.sh install)",
                    dir.display()
                );
            }
            eprintln!("skipped: Kubo-RPC node missing; run scripts/kubo-rpc.sh install");
            return None;
        }
        let repo = tempfile::Builder::new().prefix("ikf-kubo-").tempdir().unwrap();
        let port = free_port();
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/kubo-rpc.sh"))
            .arg("start")
            .arg(repo.path())
            .arg(port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "node start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(KuboNode {
            api: format!("http://127.0.0.1:{port}"),
            repo,
            stopped: false,
        })
    }

    /// Stops the daemon (the test may keep using the guard).
    pub fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let _ = Command::new("bash")
                .arg(repo_root().join("scripts/kubo-rpc.sh"))
                .arg("stop")
                .arg(self.repo.path())
                .status();
        }
    }

    /// `POST /api/v0/add` of a file or directory tree (hidden files and
    /// symlinks skipped) with the query `qs`; returns the root CID.
    pub fn add(&self, path: &Path, qs: &str) -> String {
        let out = Command::new("python3")
            .arg(repo_root().join("scripts/oracles/rpc_add_tree.py"))
            .arg(path)
            .arg(qs)
            .env("IPFS_API", &self.api)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        v["Hash"].as_str().unwrap().to_string()
    }

    /// The raw bytes of a block, from the node.
    pub fn block(&self, cid: &str) -> Vec<u8> {
        let out = Command::new("curl")
            .args(["-sf", "-X", "POST"])
            .arg(format!("{}/api/v0/block/get?arg={cid}", self.api))
            .output()
            .unwrap();
        assert!(out.status.success(), "block/get {cid} failed");
        out.stdout
    }

    /// Runs an RPC call (POST, no body) and returns its output.
    pub fn rpc(&self, path_and_query: &str) -> Vec<u8> {
        let out = Command::new("curl")
            .args(["-sf", "-X", "POST"])
            .arg(format!("{}/api/v0/{path_and_query}", self.api))
            .output()
            .unwrap();
        assert!(out.status.success(), "{path_and_query} failed");
        out.stdout
    }
}

impl Drop for KuboNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A trustless-gateway stand-in: answers `GET /ipfs/CID?format=raw` from a
/// map of blocks (keyed by the CID's text), 404 otherwise. Runs until the
/// test process ends.
pub struct GatewayStandIn {
    pub url: String,
    pub blocks: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl GatewayStandIn {
    pub fn start(blocks: HashMap<String, Vec<u8>>) -> GatewayStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let blocks = Arc::new(Mutex::new(blocks));
        let shared = blocks.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    loop {
                        let mut request = String::new();
                        if reader.read_line(&mut request).unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                                break;
                            }
                        }
                        let path = request.split(' ').nth(1).unwrap_or("");
                        let cid = path
                            .strip_prefix("/ipfs/")
                            .and_then(|p| p.split('?').next())
                            .unwrap_or("");
                        let body = shared.lock().unwrap().get(cid).cloned();
                        let ok = match body {
                            Some(b) => {
                                let head = format!(
                                    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ipld.raw\r\nContent-Length: {}\r\n\r\n",
                                    b.len()
                                );
                                conn.write_all(head.as_bytes()).and_then(|_| conn.write_all(&b))
                            }
                            None => conn
                                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"),
                        };
                        if ok.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        GatewayStandIn { url, blocks }
    }
}

/// Every block of a CAR file, keyed by CID text.
pub fn car_blocks(car: &Path) -> HashMap<String, Vec<u8>> {
    let f = std::fs::File::open(car).unwrap();
    let mut r = ipfs_kit_fuse::car::CarReader::new(BufReader::new(f)).unwrap();
    let mut out = HashMap::new();
    while let Some(b) = r.next_block().unwrap() {
        out.insert(b.cid.to_string(), b.data);
    }
    out
}

/// A Python server from tests/gateway/ that prints `listening PORT` and logs
/// one line per request to the file given with `--log`; killed on drop.
pub struct PyServer {
    child: Child,
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PyServer {
    /// Starts `tests/gateway/<script>` with `args` (and `--log`).
    pub fn start<S: AsRef<std::ffi::OsStr>>(script: &str, args: &[S]) -> PyServer {
        let dir = crate::support::temp_dir();
        let log = dir.path().join("requests.log");
        let mut child = Command::new("python3")
            .arg(repo_root().join("tests/gateway").join(script))
            .arg("--log")
            .arg(&log)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the server");
        let port = crate::support::announced_port(&mut child, script);
        PyServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        }
    }

    /// Requests served so far: (the line's first word, the rest of it).
    pub fn requests(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(k, r)| (k.to_string(), r.to_string()))
            .collect()
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
