//! The virtual tree: one [`Tree`] trait ("a tree of names") and the root
//! router that places trees at mount paths.
//!
//! Paths inside a tree are relative, without a leading slash (`""` is the
//! tree's root). Virtual paths seen by the core are absolute (`/local/a`).

mod error;
mod metered;
mod mount_tree;
mod router;
mod stream;

pub use crate::backend::{Meta, SetMeta, SpaceInfo};
pub use error::VfsError;
pub use metered::MeteredTree;
pub use mount_tree::MountTree;
pub use router::{Resolved, Router};
pub use stream::UploadStream;

use async_trait::async_trait;
use bytes::Bytes;
use std::path::Path;

/// A CID an entry is known by, and the profile (IPIP-0499 name) it was
/// computed with where that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpfsCid {
    pub cid: String,
    pub profile: Option<&'static str>,
}

/// A tree of names: lookup, list and read, plus the mutations a writable
/// tree supports. Read-only trees keep the default mutation bodies, which
/// answer [`VfsError::ReadOnly`].
#[async_trait]
pub trait Tree: Send + Sync + 'static {
    /// True when every mutation must answer EROFS.
    fn read_only(&self) -> bool;
    /// A short description for logs and status (e.g. the scheme).
    fn describe(&self) -> String;
    /// What names the storage behind this tree (scheme and non-secret
    /// options), the same across restarts: staged data is recovered only
    /// into a tree with the identity it was written for.
    fn identity(&self) -> String {
        self.describe()
    }
    /// Whether reads should go through the block cache (false for trees
    /// that are local already: caching them would only copy bytes twice).
    fn cache_blocks(&self) -> bool {
        true
    }
    /// Whether [`Tree::list`] gives each entry the metadata [`Tree::stat`]
    /// would (size and times), so a listing may answer lookups and carry
    /// attributes to the kernel. False unless a tree knows it is so.
    fn lists_full_meta(&self) -> bool {
        false
    }
    /// Whether a stat is a request to a remote store worth remembering for
    /// the attribute TTL: the core then answers the open after a lookup
    /// from it, and forgets it at every change made through the mount.
    /// False unless a tree knows its stats are slow and change only through
    /// the mount or from outside (never by the core's own side effects).
    fn remember_stats(&self) -> bool {
        false
    }
    /// Whether [`Tree::list`] of the directory `path` names every entry that
    /// exists, so a name missing from a fresh listing is absent. False for
    /// directories where names can be looked up that no listing shows (the
    /// top of an IPFS mount: any CID).
    fn lists_every_name(&self, _path: &str) -> bool {
        true
    }
    /// Whether `Meta::version` of a file is its CID, naming its bytes
    /// wherever they are (immutable content), so the block cache keys them
    /// by CID alone and shares them between mounts. False unless so.
    fn content_addressed(&self) -> bool {
        false
    }
    /// The IPFS CID of the file or directory `path`, where the tree knows it
    /// without reading bytes (the `user.ipfs.cid` xattr). By default the
    /// version of a content-addressed tree's entry, which is its CID.
    async fn ipfs_cid(&self, path: &str) -> Option<IpfsCid> {
        if !self.content_addressed() {
            return None;
        }
        let cid = self.stat(path).await.ok()?.version?;
        Some(IpfsCid { cid, profile: None })
    }
    /// Metadata of `path`.
    async fn stat(&self, path: &str) -> Result<Meta, VfsError>;
    /// [`Tree::stat`] of `path`, with the whole file when it is at most
    /// `max` bytes and the tree gets both for the price of the stat (S3: a
    /// ranged GET in place of the HEAD). By default a stat and no bytes.
    async fn stat_peek(&self, path: &str, _max: u64) -> Result<(Meta, Option<Bytes>), VfsError> {
        Ok((self.stat(path).await?, None))
    }
    /// Direct children of the directory `path`, sorted by name.
    async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, VfsError>;
    /// Up to `len` bytes at `offset`.
    async fn read(&self, path: &str, offset: u64, len: u64) -> Result<Bytes, VfsError>;
    /// Like [`Tree::read`], but fails with [`VfsError::Changed`] if the object
    /// is no longer at `version` (where the tree can tell), so blocks of two
    /// versions are never mixed.
    async fn read_version(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        _version: Option<&str>,
    ) -> Result<Bytes, VfsError> {
        self.read(path, offset, len).await
    }
    /// Replaces the file `path` with the contents of a local staged file.
    async fn upload(&self, _path: &str, _staged: &Path) -> Result<u64, VfsError> {
        Err(VfsError::ReadOnly)
    }
    /// The local file that holds `path`, for trees that are a local
    /// directory (the kernel may then read it directly).
    fn local_path(&self, _path: &str) -> Option<std::path::PathBuf> {
        None
    }
    /// The local file that writes to `path` go into directly, for trees
    /// whose writes skip staging (a local directory with direct writes).
    fn direct_write_path(&self, _path: &str) -> Option<std::path::PathBuf> {
        None
    }
    /// Opens the local file the kernel may serve every open of `path` from
    /// (FUSE passthrough, readers and writers alike), with its metadata (a
    /// stat): only where that file always holds the bytes, i.e. a local
    /// directory that is read-only or takes direct writes (never one that
    /// stages writes). `write`: opened for reading and writing.
    fn passthrough_open(&self, _path: &str, _write: bool) -> Option<Result<(std::fs::File, Meta), VfsError>> {
        None
    }
    /// Opens the local file that writes to `path` go into directly (see
    /// [`Tree::direct_write_path`]), created if missing, emptied when
    /// `truncate`.
    fn open_direct(&self, _path: &str, _truncate: bool) -> Option<Result<std::fs::File, VfsError>> {
        None
    }
    /// Starts an upload of `path` fed as the file is written, where the tree
    /// gains from one (see [`UploadStream`]); `None`: upload whole at close.
    async fn start_stream(&self, _path: &str) -> Option<Box<dyn UploadStream>> {
        None
    }
    /// Makes an uploaded file durable (fsync); a no-op where uploads are.
    async fn sync(&self, _path: &str) -> Result<(), VfsError> {
        Ok(())
    }
    /// Creates an empty file.
    async fn create_file(&self, _path: &str) -> Result<(), VfsError> {
        Err(VfsError::ReadOnly)
    }
    /// Creates a directory.
    async fn mkdir(&self, _path: &str) -> Result<(), VfsError> {
        Err(VfsError::ReadOnly)
    }
    /// Removes a file.
    async fn remove_file(&self, _path: &str) -> Result<(), VfsError> {
        Err(VfsError::ReadOnly)
    }
    /// Removes an empty directory.
    async fn remove_dir(&self, _path: &str) -> Result<(), VfsError> {
        Err(VfsError::ReadOnly)
    }
    /// Renames a file or directory inside this tree. A file replaces an
    /// existing file at `to`; a directory's target is free (the core removed
    /// an empty one first, and refuses a non-empty one).
    async fn rename(&self, _from: &str, _to: &str, _is_dir: bool) -> Result<(), VfsError> {
        Err(VfsError::ReadOnly)
    }
    /// Creates a directory with `mode` where the tree stores modes.
    async fn mkdir_mode(&self, path: &str, _mode: u32) -> Result<(), VfsError> {
        self.mkdir(path).await
    }
    /// Whether the tree stores modes, owners and times itself and holds
    /// symlinks, hard links and special files ([`Tree::set_meta`],
    /// [`Tree::symlink`], [`Tree::link`], [`Tree::mknod`] work). Where it
    /// does not, the core keeps attribute changes in memory.
    fn stores_posix(&self) -> bool {
        false
    }
    /// Stores mode, owner and times of `path` itself.
    async fn set_meta(&self, _path: &str, _set: &SetMeta) -> Result<(), VfsError> {
        Err(VfsError::ReadOnly)
    }
    /// Creates the symlink `path` pointing at `target`.
    async fn symlink(&self, _path: &str, _target: &str) -> Result<(), VfsError> {
        Err(VfsError::ReadOnly)
    }
    /// The target of the symlink `path`.
    async fn readlink(&self, _path: &str) -> Result<Vec<u8>, VfsError> {
        Err(VfsError::Invalid("not a symlink"))
    }
    /// A second name `to` for the file `from`.
    async fn link(&self, _from: &str, _to: &str) -> Result<(), VfsError> {
        Err(VfsError::ReadOnly)
    }
    /// Creates a FIFO, socket or device node (`mode` carries the type).
    async fn mknod(&self, _path: &str, _mode: u32, _rdev: u64) -> Result<(), VfsError> {
        Err(VfsError::ReadOnly)
    }
    /// Size and free space of the storage under the tree, where known.
    fn space(&self) -> Option<SpaceInfo> {
        None
    }
}

/// Joins a relative tree path and a child name (`""` is the tree's root).
pub fn join_rel(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// Joins an absolute virtual path and a child name.
pub fn join_abs(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}
