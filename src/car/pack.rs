//! Packing a path into one CAR file on disk, in either block order; the
//! glue between the walk (`walk.rs`) and the writers (`writer.rs`), shared
//! by the CLI and the product. The CAR is written by the thread that walks:
//! large files are read by reader threads (`preader.rs`) and hashed by the
//! hashing pool, so that thread only hands chunks on and writes blocks (a
//! writer thread of its own was tried: the copy it needs made packing slower).

use super::error::{CarError, Result};
use super::profile::Profile;
use super::walk::{add_path, WalkOptions};
use super::writer::{patch_header, placeholder_root, CarWriter, DfsSpool};
use cid::Cid;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// Output buffer for CAR files: 1 MiB, one chunk, so a leaf is one write.
const OUT_BUF: usize = 1 << 20;

/// Block order in a packed CAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Order {
    /// Leaves first, root last (ipfs-car, Storacha); streamed, nothing buffered.
    #[default]
    RootLast,
    /// Root first, depth-first pre-order (`ipfs dag export`); spools blocks.
    Dfs,
}

/// What [`pack_file`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packed {
    /// Root CID (the CAR's only root).
    pub root: Cid,
    /// CAR size in bytes.
    pub bytes: u64,
    /// Sections written.
    pub blocks: u64,
}

/// Pack `path` into the CAR file `out`.
pub fn pack_file(
    profile: Profile,
    path: &Path,
    opts: &WalkOptions,
    out: &Path,
    order: Order,
    dedup: bool,
    progress: &dyn Fn(u64),
) -> Result<Packed> {
    match order {
        Order::RootLast => {
            let file = File::create(out).map_err(CarError::path(out))?;
            let placeholder = placeholder_root(profile.root_cid_len());
            let mut car = CarWriter::new(BufWriter::with_capacity(OUT_BUF, file), &[placeholder], dedup)?;
            let built = add_path(profile, path, opts, &mut car, progress)?;
            let (bytes, blocks) = (car.written(), car.blocks());
            let mut file = car
                .into_inner()?
                .into_inner()
                .map_err(|e| CarError::Io(e.into_error()))?;
            patch_header(&mut file, &[placeholder], &[built.cid])?;
            Ok(Packed {
                root: built.cid,
                bytes,
                blocks,
            })
        }
        Order::Dfs => {
            let mut spool_name = out.as_os_str().to_owned();
            spool_name.push(".spool");
            let mut spool = DfsSpool::create(Path::new(&spool_name))?;
            let built = add_path(profile, path, opts, &mut spool, progress)?;
            let file = File::create(out).map_err(CarError::path(out))?;
            let car = spool.write_to(&built.cid, BufWriter::with_capacity(OUT_BUF, file), dedup)?;
            let (bytes, blocks) = (car.written(), car.blocks());
            car.into_inner()?;
            Ok(Packed {
                root: built.cid,
                bytes,
                blocks,
            })
        }
    }
}
