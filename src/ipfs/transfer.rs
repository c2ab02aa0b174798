//! Push and pull between a path and a Kubo RPC node.
//!
//! Push: the file or directory is packed into a temporary CAR with the `car`
//! module's walk (so its root is exactly what `ipfs-kit-fuse cid` prints for
//! the same bytes and profile), imported with `dag/import` (roots pinned;
//! the CAR is streamed from its file, never held in memory), and the node's
//! answer is checked to name the same root ([`import_car`],
//! also used for a bucket's prepared CAR). Pull:
//! `dag/export` of the CID is streamed into a temporary CAR, every block is
//! verified while it is indexed, the root must be the CID asked for, and the
//! UnixFS tree is written out at the target (which must not exist yet).
//! Both run on paths: the daemon gives paths under its own mount point
//! (`control/ipfs.rs`), so any mount in the table can be a source or a target.

use crate::car::{pack_file, walk_car, CarStore, Kind, Order, Profile, WalkOptions};
use cid::Cid;
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Errors of push and pull, with the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{0}")]
    Car(#[from] crate::car::CarError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("node at {api}: {message}")]
    Node { api: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Slowest average upload a push waits for, bytes per second: 1 MiB/s,
/// far below any node on a LAN, and a multi-GiB push over a slow link
/// still gets hours.
const MIN_UPLOAD_RATE: u64 = 1 << 20;
/// Bytes read from the CAR file per chunk of a push's body: large enough
/// that a multi-GiB CAR is a few thousand reads, small enough to be nothing
/// next to the daemon's caches.
const UPLOAD_CHUNK: usize = 1 << 20;

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub root: Cid,
    pub car_bytes: u64,
    pub blocks: u64,
}

/// What a pull wrote.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// A temporary CAR file in the system temp dir, removed on drop.
struct TempCar(PathBuf);

impl TempCar {
    fn new(what: &str) -> Self {
        TempCar(std::env::temp_dir().join(format!("ipfs-kit-{what}-{}.car", uuid::Uuid::new_v4().simple())))
    }
}

impl Drop for TempCar {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A client that gives up when the node sends nothing for `stall` (a
/// transfer that keeps moving may take as long as it needs), or does not
/// accept the connection within it.
fn client(stall: Duration) -> Result<reqwest::Client, TransferError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .read_timeout(stall)
        .connect_timeout(stall)
        .build()
        .map_err(|e| TransferError::Invalid(format!("HTTP client: {e}")))
}

/// How long a push of `len` CAR bytes may take in all: `stall`, plus the
/// upload at [`MIN_UPLOAD_RATE`] (no read timeout runs while the request
/// is sent, so a node that stops reading is caught by this bound).
fn push_deadline(stall: Duration, len: u64) -> Duration {
    stall.saturating_add(Duration::from_secs(len / MIN_UPLOAD_RATE))
}

fn node_err(api: &str, message: impl Into<String>) -> TransferError {
    TransferError::Node {
        api: api.to_string(),
        message: message.into(),
    }
}

/// Packs `path` with `profile` and imports it into the node at `api`, pinned.
/// `progress` gets the number of input bytes read as packing goes; `sent`
/// then gets the CAR bytes sent so far and the CAR's size (see [`import_car`]).
pub async fn push(
    api: &str,
    path: &Path,
    profile: Profile,
    hidden: bool,
    timeout: Duration,
    progress: impl Fn(u64) + Send + Sync + 'static,
    sent: impl FnMut(u64, u64) + Send + 'static,
) -> Result<Pushed, TransferError> {
    let tmp = TempCar::new("push");
    let car = tmp.0.clone();
    let src = path.to_path_buf();
    let packed = tokio::task::spawn_blocking(move || {
        let opts = WalkOptions { hidden, wrap: false };
        pack_file(profile, &src, &opts, &car, Order::RootLast, true, &progress)
    })
    .await
    .map_err(|e| TransferError::Invalid(format!("pack task: {e}")))??;
    import_car(api, &tmp.0, &packed.root, timeout, sent).await?;
    Ok(Pushed {
        root: packed.root,
        car_bytes: packed.bytes,
        blocks: packed.blocks,
    })
}

/// Imports the CAR file `car` into the node at `api` (`dag/import`, roots
/// pinned) and checks that the node names `want` as its root, pinned.
/// Gives up when the node sends nothing for `timeout` once the CAR is sent,
/// or after `push_deadline` in all (the stall time plus the upload at
/// 1 MiB/s).
/// `sent` gets the CAR bytes handed to the connection so far and the CAR's
/// size, after every chunk (the last call has both equal; the node's answer
/// comes once it has imported them).
pub async fn import_car(
    api: &str,
    car: &Path,
    want: &Cid,
    timeout: Duration,
    mut sent: impl FnMut(u64, u64) + Send + 'static,
) -> Result<(), TransferError> {
    let file = tokio::fs::File::open(car).await?;
    let len = file.metadata().await?.len();
    // One multipart part, the CAR streamed from its file: a push of any
    // size holds a read buffer's worth in memory, not the CAR.
    let boundary = format!("ipfs-kit-{}", uuid::Uuid::new_v4().simple());
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"push.car\"\r\nContent-Type: application/vnd.ipld.car\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let total = head.len() as u64 + len + tail.len() as u64;
    let mut done = 0u64;
    let car_part =
        tokio_util::io::ReaderStream::with_capacity(file.take(len), UPLOAD_CHUNK).map(move |chunk| {
            if let Ok(c) = &chunk {
                done += c.len() as u64;
                sent(done, len);
            }
            chunk
        });
    let body = futures::stream::once(async move { Ok(bytes::Bytes::from(head)) })
        .chain(car_part)
        .chain(futures::stream::once(async move { Ok(bytes::Bytes::from(tail)) }));
    let resp = client(timeout)?
        .post(format!(
            "{}/api/v0/dag/import?pin-roots=true",
            api.trim_end_matches('/')
        ))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("Content-Length", total)
        .timeout(push_deadline(timeout, len))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .map_err(|e| node_err(api, e.to_string()))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| node_err(api, e.to_string()))?;
    if !status.is_success() {
        return Err(node_err(
            api,
            format!("dag/import: HTTP {status}: {}", text.trim()),
        ));
    }
    // One JSON object per line; the root's line names it and any pin error.
    let want = want.to_string();
    let mut confirmed = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| node_err(api, format!("dag/import reply {line:?}: {e}")))?;
        if let Some(root) = v.get("Root") {
            let got = root["Cid"]["/"].as_str().unwrap_or_default();
            let got = Cid::try_from(got).map(|c| c.to_string()).unwrap_or_default();
            if got != want {
                return Err(node_err(api, format!("imported root {got}, expected {want}")));
            }
            if let Some(msg) = root["PinErrorMsg"].as_str().filter(|m| !m.is_empty()) {
                return Err(node_err(api, format!("pinning {want} failed: {msg}")));
            }
            confirmed = true;
        }
    }
    if !confirmed {
        return Err(node_err(
            api,
            format!("dag/import did not confirm root {want}: {}", text.trim()),
        ));
    }
    Ok(())
}

/// Fetches the DAG of `cid` from the node at `api`, verified, and writes its
/// UnixFS tree at `target` (a new file or directory). `progress` gets the
/// number of CAR bytes received as they arrive. Gives up when the node
/// sends nothing for `timeout`; an export that keeps coming takes as long
/// as it takes.
pub async fn pull(
    api: &str,
    cid: &Cid,
    target: &Path,
    timeout: Duration,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> Result<Pulled, TransferError> {
    if target.symlink_metadata().is_ok() {
        return Err(TransferError::Invalid(format!(
            "{} exists already",
            target.display()
        )));
    }
    let mut resp = client(timeout)?
        .post(format!(
            "{}/api/v0/dag/export?arg={cid}",
            api.trim_end_matches('/')
        ))
        .send()
        .await
        .map_err(|e| node_err(api, e.to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(node_err(
            api,
            format!("dag/export {cid}: HTTP {status}: {}", text.trim()),
        ));
    }
    let tmp = TempCar::new("pull");
    let mut file = tokio::fs::File::create(&tmp.0).await?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| node_err(api, e.to_string()))? {
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
        progress(chunk.len() as u64);
    }
    tokio::io::AsyncWriteExt::flush(&mut file).await?;
    drop(file);
    let (car, root, out) = (tmp.0.clone(), *cid, target.to_path_buf());
    let listed = tokio::task::spawn_blocking(move || {
        // Indexing reads and verifies every block; a section over the block
        // limit is refused before it is read.
        let mut store = CarStore::open(&car)?;
        if !store.roots().contains(&root) {
            return Err(TransferError::Invalid(format!(
                "the node exported roots {:?}, not {root}",
                store.roots().iter().map(Cid::to_string).collect::<Vec<_>>()
            )));
        }
        Ok(walk_car(&mut store, &root, Some(&out))?)
    })
    .await
    .map_err(|e| TransferError::Invalid(format!("unpack task: {e}")))??;
    let mut p = Pulled {
        files: 0,
        dirs: 0,
        bytes: 0,
    };
    for l in &listed {
        match l.kind {
            Kind::Dir => p.dirs += 1,
            Kind::File(n) => {
                p.files += 1;
                p.bytes += n;
            }
            Kind::Symlink(_) => p.files += 1,
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_gets_the_stall_time_plus_its_upload_at_the_slowest_rate() {
        let stall = Duration::from_secs(3600);
        assert_eq!(push_deadline(stall, 0), stall);
        // 2 GiB, the old cap: 2,048 s more at 1 MiB/s.
        assert_eq!(push_deadline(stall, 2 << 30), Duration::from_secs(3600 + 2048));
        // 300 GiB: days, not a failure at the first hour.
        assert!(push_deadline(stall, 300 << 30) > Duration::from_secs(3 * 86_400));
        assert_eq!(push_deadline(Duration::MAX, u64::MAX), Duration::MAX);
    }
}
