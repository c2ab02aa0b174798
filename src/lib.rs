//! ipfs-kit-fuse: a table of storage backends mounted under one FUSE directory.
//!
//! Layout (see DESIGN.md): `fuse/` is the only fuser code, `fs/` the fuser-free
//! async core, `vfs/` the `Tree` trait and root router, `mount/` the mount table,
//! `backend/` the only opendal code, `car/` UnixFS DAGs, CIDs and CAR files.

pub mod car;
pub mod cli;
