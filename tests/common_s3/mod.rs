//! Test support for the S3 backend: a real S3-compatible server (moto,
//! installed by `scripts/moto.sh`) started on 127.0.0.1 for the test and
//! stopped on drop, plus raw HTTP calls to change objects behind our back.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// What a raw request got back.
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request moto's recorder kept.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, e.g. `/bucket/key?list-type=2`.
    pub path: String,
    pub range: Option<String>,
}

/// A running moto server.
pub struct S3Server {
    child: Child,
    pub port: u16,
    recording: PathBuf,
}

/// Where `scripts/moto.sh` installs moto.
fn moto_path() -> PathBuf {
    if let Ok(d) = std::env::var("IPFS_KIT_MOTO_DIR") {
        return PathBuf::from(d).join("bin/moto_server");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/ipfs-kit-fuse/moto/bin/moto_server")
}

impl S3Server {
    /// Starts moto, or returns None (after saying why) when it is not
    /// installed and `IPFS_KIT_REQUIRE_S3` is unset; panics when it is required.
    pub fn start() -> Option<S3Server> {
        let bin = moto_path();
        if !bin.exists() {
            if std::env::var_os("IPFS_KIT_REQUIRE_S3").is_some() {
                panic!("moto not installed at {} (run scripts/moto.sh)", bin.display());
            }
            eprintln!(
                "skipped: moto not installed at {} (run scripts/moto.sh)",
                bin.display()
            );
            return None;
        }
        // Moto binds port 0 itself and announces the port it got: choosing a
        // free port here and handing it over would race with every other
        // test doing the same (a moto that lost the race exits, and the
        // test talks to the winner until that one stops).
        let recording = recording_file();
        let mut child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            // The request recorder's file, one per server: by default every
            // moto started in the same directory shares one.
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto");
        let port = announced_port(&mut child);
        Some(S3Server {
            child,
            port,
            recording,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends a raw HTTP request as the test account (moto reads the access key
    /// from the header but does not check signatures); returns the status code.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> u16 {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
             SignedHeaders=host, Signature=00\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let text = String::from_utf8_lossy(&resp[..resp.len().min(64)]).to_string();
        text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
    }

    /// Sends a raw HTTP request with extra `headers` (as [`S3Server::request`]
    /// does); returns the status, the response headers (names lower case)
    /// and the body.
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
             SignedHeaders=host, Signature=00\r\nConnection: close\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let split = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer");
        let text = String::from_utf8_lossy(&resp[..split]).to_string();
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        RawResponse {
            status,
            headers,
            body: resp[split + 4..].to_vec(),
        }
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) {
        let code = self.request("PUT", &format!("/{name}"), b"");
        assert_eq!(code, 200, "create bucket {name}");
    }

    /// Starts (or restarts, forgetting what was recorded) moto's request
    /// recorder: from now on the server keeps every request it answers.
    pub fn start_recording(&self) {
        for what in ["stop-recording", "reset-recording", "start-recording"] {
            let r = self.raw("POST", &format!("/moto-api/recorder/{what}"), &[], b"");
            assert_eq!(r.status, 200, "moto recorder {what}");
        }
    }

    /// The requests recorded since [`S3Server::start_recording`], as the
    /// server saw them: (method, path with query, Range header).
    pub fn recording(&self) -> Vec<Recorded> {
        let r = self.raw("GET", "/moto-api/recorder/download-recording", &[], b"");
        assert_eq!(r.status, 200, "moto recorder download");
        String::from_utf8_lossy(&r.body)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a recorded request");
                let url = v["url"].as_str().unwrap_or_default();
                let path = url
                    .splitn(4, '/')
                    .nth(3)
                    .map(|p| format!("/{p}"))
                    .unwrap_or_default();
                Recorded {
                    method: v["method"].as_str().unwrap_or_default().to_string(),
                    path,
                    range: v["headers"]["Range"].as_str().map(str::to_string),
                }
            })
            .filter(|r| !r.path.starts_with("/moto-api/"))
            .collect()
    }

    /// A `[[mount]]` TOML entry for `bucket` at `vpath`.
    pub fn mount_toml(&self, vpath: &str, bucket: &str) -> String {
        format!(
            "[[mount]]\npath = \"{vpath}\"\nscheme = \"s3\"\n[mount.options]\nbucket = \"{bucket}\"\n\
             endpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\n\
             secret_access_key = \"test\"\ndisable_config_load = \"true\"\n\
             [cache]\nmin_free = \"64MiB\"\n",
            self.endpoint()
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.recording);
    }
}

/// A file of its own for one moto server's request recorder.
fn recording_file() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("ikf-moto-recording-{}-{n}", std::process::id()))
}

/// Reads moto's stderr up to its "Running on http://127.0.0.1:PORT" line and
/// returns PORT; a thread then drains the rest (moto logs every request
/// there, and a full pipe would stall it). Panics if moto exits first or
/// says nothing within [`START_WAIT`].
fn announced_port(child: &mut Child) -> u16 {
    let stderr = child.stderr.take().expect("moto stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            let port = line
                .split_once("Running on http://127.0.0.1:")
                .and_then(|(_, rest)| rest.trim_end_matches('/').trim().parse::<u16>().ok());
            if let Some(port) = port {
                let _ = tx.send(port);
                break;
            }
        }
        lines.for_each(drop);
    });
    match rx.recv_timeout(START_WAIT) {
        Ok(port) => port,
        Err(_) => {
            let _ = child.kill();
            let status = child.wait();
            panic!("moto exited or did not announce its port within {START_WAIT:?} (exit: {status:?})");
        }
    }
}

/// How long moto may take to start: it imports all of its AWS services
/// first, a few seconds on a loaded 2-core machine.
const START_WAIT: Duration = Duration::from_secs(60);
