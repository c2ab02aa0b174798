//! IPFS content as read-only, verified trees.
//!
//! Owns `scheme = "ipfs"` (blocks from a Kubo RPC node and/or a trustless
//! gateway over HTTP), `scheme = "car"` (blocks from CAR files), and
//! `scheme = "ipfs-mfs"` (a node's MFS, read-write: `mfs.rs`). Both are a
//! [`DagTree`] over a [`Store`]: every block is hashed against its CID before
//! use, and UnixFS is read with the `car` module's codecs. Long sequential
//! reads get their blocks in bulk, checked the same way: CAR ranges from a
//! gateway (`store.rs`), `cat` spans from an RPC node (`stream.rs`).
//! opendal plays no part here: its IPFS services read path gateways and
//! check no hash.
//!
//! Options (strings, as every `[mount.options]` value):
//! - ipfs: `api = URL` (Kubo RPC), `gateway = URL` (trustless gateway), at
//!   least one; asked in that order, the first that answers wins.
//! - car: `paths = "a.car,b.car"` (comma-separated; a set's shards together).
//! - both: `root = CID` mounts that DAG at the mount path; otherwise
//!   `roots = "CID,CID"` (ipfs) or the CARs' header roots are listed at the top
//!   and any `<CID>/` can be looked up (a CAR set with one root mounts it at
//!   the mount path).

mod carfile;
mod error;
mod mfs;
mod runbuf;
mod source;
mod store;
mod stream;
mod transfer;
mod tree;
mod unixfs;

pub use carfile::CarFiles;
pub use error::IpfsError;
pub use mfs::MfsTree;
pub use source::{BlockSource, HttpKind, HttpSource, SourceError, MAX_BLOCK};
pub use store::Store;
pub use transfer::{import_car, pull, push, Pulled, Pushed, TransferError};
pub use tree::{DagTree, Layout};
pub use unixfs::{DirEntry, Kind};

use crate::cache::BlockCache;
use cid::Cid;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The schemes this module serves.
pub const SCHEMES: &[&str] = &["ipfs", "car", "ipfs-mfs"];

fn list_option(options: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    options
        .get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn parse_cid(text: &str) -> Result<Cid, IpfsError> {
    Cid::try_from(text).map_err(|e| IpfsError::Config(format!("bad CID {text:?}: {e}")))
}

fn layout(options: &BTreeMap<String, String>, mut roots: Vec<Cid>) -> Result<Layout, IpfsError> {
    if let Some(root) = options.get("root").filter(|r| !r.is_empty()) {
        return Ok(Layout::Root(parse_cid(root)?));
    }
    for r in list_option(options, "roots") {
        roots.push(parse_cid(&r)?);
    }
    Ok(Layout::ByCid(RwLock::new(
        roots.into_iter().collect::<BTreeSet<_>>(),
    )))
}

/// Opens `scheme = "ipfs"`: HTTP sources, no I/O until the first lookup.
pub fn open_ipfs(
    options: &BTreeMap<String, String>,
    io_timeout: Duration,
    cache: Option<Arc<BlockCache>>,
) -> Result<DagTree, IpfsError> {
    let mut sources: Vec<Arc<dyn BlockSource>> = Vec::new();
    for (key, kind) in [("api", HttpKind::Rpc), ("gateway", HttpKind::Gateway)] {
        for url in list_option(options, key) {
            let s = HttpSource::new(kind, &url, io_timeout).map_err(IpfsError::Config)?;
            sources.push(Arc::new(s));
        }
    }
    if sources.is_empty() {
        return Err(IpfsError::Config(
            "scheme \"ipfs\" needs option \"api\" (Kubo RPC URL) or \"gateway\" (trustless gateway URL)"
                .into(),
        ));
    }
    let layout = layout(options, Vec::new())?;
    Ok(DagTree::new(
        "ipfs",
        Arc::new(Store::new(sources).with_cache(cache)),
        layout,
    ))
}

/// Opens `scheme = "car"`: indexes the CAR files (blocking; reads each once).
pub fn open_car(options: &BTreeMap<String, String>) -> Result<DagTree, IpfsError> {
    let paths: Vec<PathBuf> = list_option(options, "paths")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if paths.is_empty() {
        return Err(IpfsError::Config(
            "scheme \"car\" needs option \"paths\" (CAR files, comma-separated)".into(),
        ));
    }
    let cars = CarFiles::open(&paths).map_err(IpfsError::Config)?;
    let roots = cars.roots().to_vec();
    tracing::info!(blocks = cars.len(), roots = roots.len(), "CAR files indexed");
    let layout = match (
        options.get("root").filter(|r| !r.is_empty()),
        options.get("roots"),
        &roots[..],
    ) {
        (None, None, [only]) => Layout::Root(*only),
        _ => layout(options, roots)?,
    };
    Ok(DagTree::new(
        "car",
        Arc::new(Store::new(vec![Arc::new(cars)])),
        layout,
    ))
}

/// Opens the tree of an IPFS `scheme` (one of [`SCHEMES`]); an `ipfs`
/// tree keeps its DAG nodes in `cache` too (see `store.rs`).
pub fn open(
    scheme: &str,
    options: &BTreeMap<String, String>,
    read_only: bool,
    io_timeout: Duration,
    cache: Option<Arc<BlockCache>>,
) -> Result<Arc<dyn crate::vfs::Tree>, IpfsError> {
    Ok(match scheme {
        "ipfs" => Arc::new(open_ipfs(options, io_timeout, cache)?),
        "car" => Arc::new(open_car(options)?),
        "ipfs-mfs" => {
            let api = options.get("api").map(String::as_str).unwrap_or_default();
            let root = options.get("root").map(String::as_str);
            Arc::new(MfsTree::new(api, root, read_only, io_timeout).map_err(IpfsError::Config)?)
        }
        other => return Err(IpfsError::Config(format!("{other:?} is not an IPFS scheme"))),
    })
}
