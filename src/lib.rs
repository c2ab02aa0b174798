//! ipfs-kit-fuse: a table of storage backends mounted under one FUSE directory.
//!
//! Layout (see docs/ARCHITECTURE.md): `fuse/` is the only fuser code, `fs/` the fuser-free
//! async core, `vfs/` the `Tree` trait and root router, `backend/` the only
//! opendal code, `cache/` the block cache and readahead, `car/` UnixFS DAGs,
//! CIDs and CAR files, `ipfs` verified read-only IPFS and CAR trees, `config` the TOML configuration, `control` the control
//! socket, `metrics` operation counters, `daemon` the composition root, `cli`
//! the command line, `mcp` the MCP server (tools over the socket and the mount).

pub mod backend;
pub mod bucket;
pub mod cache;
pub mod car;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod fs;
pub mod fuse;
pub mod ipfs;
pub mod mcp;
pub mod metrics;
pub mod vfs;
