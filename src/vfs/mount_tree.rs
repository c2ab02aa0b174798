//! A backend mount as a [`Tree`]: every call goes to the [`Backend`], and a
//! read-only entry refuses every mutation before any backend call.

use super::{Meta, SetMeta, SpaceInfo, Tree, VfsError};
use crate::backend::{Backend, BackendErrorKind};
use async_trait::async_trait;
use bytes::Bytes;
use std::path::Path;

/// One `[[mount]]` entry, live.
pub struct MountTree {
    backend: Backend,
    read_only: bool,
    direct_writes: bool,
    /// See [`Tree::identity`]; the scheme unless set.
    identity: Option<String>,
}

impl MountTree {
    pub fn new(backend: Backend, read_only: bool) -> Self {
        Self {
            backend,
            read_only,
            direct_writes: false,
            identity: None,
        }
    }

    /// Names the storage behind this tree (see [`Tree::identity`]).
    pub fn with_identity(mut self, identity: String) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Writes go into the backing files themselves (only takes effect on a
    /// local backend; see `config::WriteMode`).
    pub fn with_direct_writes(mut self, on: bool) -> Self {
        self.direct_writes = on;
        self
    }

    fn writable(&self) -> Result<&Backend, VfsError> {
        if self.read_only {
            Err(VfsError::ReadOnly)
        } else {
            Ok(&self.backend)
        }
    }
}

fn not_found_to_vfs(e: crate::backend::BackendError) -> VfsError {
    if e.errno.is_some()
        && matches!(
            e.kind,
            BackendErrorKind::Other | BackendErrorKind::PermissionDenied
        )
    {
        // A local directory's own errno says it best (ELOOP, EPERM, EACCES, ...).
        return VfsError::Backend(e);
    }
    match e.kind {
        BackendErrorKind::NotFound => VfsError::NotFound,
        BackendErrorKind::AlreadyExists => VfsError::Exists,
        BackendErrorKind::IsDir => VfsError::IsDir,
        BackendErrorKind::NotDir => VfsError::NotDir,
        BackendErrorKind::Changed => VfsError::Changed,
        // The backing path (root + path) outgrew PATH_MAX on the host.
        BackendErrorKind::NameTooLong => VfsError::NameTooLong,
        _ => VfsError::Backend(e),
    }
}

#[async_trait]
impl Tree for MountTree {
    fn read_only(&self) -> bool {
        self.read_only
    }

    fn describe(&self) -> String {
        self.backend.scheme().to_string()
    }

    fn identity(&self) -> String {
        self.identity
            .clone()
            .unwrap_or_else(|| self.backend.scheme().to_string())
    }

    fn local_path(&self, path: &str) -> Option<std::path::PathBuf> {
        self.backend.local_path(path)
    }

    fn direct_write_path(&self, path: &str) -> Option<std::path::PathBuf> {
        if self.direct_writes && !self.read_only {
            self.backend.local_path(path)
        } else {
            None
        }
    }

    fn passthrough_open(&self, path: &str, write: bool) -> Option<Result<(std::fs::File, Meta), VfsError>> {
        if self.direct_writes || self.read_only {
            self.backend
                .open_local(path, write)
                .map(|r| r.map_err(not_found_to_vfs))
        } else {
            None
        }
    }

    fn open_direct(&self, path: &str, truncate: bool) -> Option<Result<std::fs::File, VfsError>> {
        if self.direct_writes && !self.read_only {
            self.backend
                .open_local_rw(path, truncate)
                .map(|r| r.map_err(not_found_to_vfs))
        } else {
            None
        }
    }

    fn cache_blocks(&self) -> bool {
        !self.backend.is_local()
    }

    fn lists_full_meta(&self) -> bool {
        self.backend.lists_full_meta()
    }

    fn remember_stats(&self) -> bool {
        !self.backend.is_local() && !self.backend.lists_full_meta()
    }

    async fn stat(&self, path: &str) -> Result<Meta, VfsError> {
        self.backend.stat(path).await.map_err(not_found_to_vfs)
    }

    async fn stat_peek(&self, path: &str, max: u64) -> Result<(Meta, Option<Bytes>), VfsError> {
        self.backend.stat_peek(path, max).await.map_err(not_found_to_vfs)
    }

    async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, VfsError> {
        self.backend.list(path).await.map_err(not_found_to_vfs)
    }

    async fn read(&self, path: &str, offset: u64, len: u64) -> Result<Bytes, VfsError> {
        self.backend
            .read(path, offset, len)
            .await
            .map_err(not_found_to_vfs)
    }

    async fn read_version(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        version: Option<&str>,
    ) -> Result<Bytes, VfsError> {
        self.backend
            .read_if_match(path, offset, len, version)
            .await
            .map_err(not_found_to_vfs)
    }

    async fn upload(&self, path: &str, staged: &Path) -> Result<u64, VfsError> {
        self.writable()?
            .upload(path, staged)
            .await
            .map_err(not_found_to_vfs)
    }

    async fn start_stream(&self, path: &str) -> Option<Box<dyn super::UploadStream>> {
        let backend = self.writable().ok().filter(|b| b.streams())?;
        match backend.start_stream(path).await {
            Ok(s) => Some(Box::new(s)),
            Err(e) => {
                tracing::debug!(path, error = %e, "no streamed upload; uploading at close");
                None
            }
        }
    }

    async fn sync(&self, path: &str) -> Result<(), VfsError> {
        self.writable()?.sync(path).await.map_err(not_found_to_vfs)
    }

    async fn create_file(&self, path: &str) -> Result<(), VfsError> {
        self.writable()?.write_empty(path).await.map_err(not_found_to_vfs)
    }

    async fn mkdir(&self, path: &str) -> Result<(), VfsError> {
        self.writable()?.create_dir(path).await.map_err(not_found_to_vfs)
    }

    async fn remove_file(&self, path: &str) -> Result<(), VfsError> {
        self.writable()?.delete_file(path).await.map_err(not_found_to_vfs)
    }

    async fn remove_dir(&self, path: &str) -> Result<(), VfsError> {
        self.writable()?.delete_dir(path).await.map_err(not_found_to_vfs)
    }

    async fn rename(&self, from: &str, to: &str, is_dir: bool) -> Result<(), VfsError> {
        let b = self.writable()?;
        if is_dir {
            b.rename_dir(from, to).await.map_err(not_found_to_vfs)
        } else {
            b.rename_file(from, to).await.map_err(not_found_to_vfs)
        }
    }

    async fn mkdir_mode(&self, path: &str, mode: u32) -> Result<(), VfsError> {
        self.writable()?
            .create_dir_mode(path, mode)
            .await
            .map_err(not_found_to_vfs)
    }

    fn stores_posix(&self) -> bool {
        self.backend.stores_posix()
    }

    async fn set_meta(&self, path: &str, set: &SetMeta) -> Result<(), VfsError> {
        self.writable()?
            .set_meta(path, set)
            .await
            .map_err(not_found_to_vfs)
    }

    async fn symlink(&self, path: &str, target: &str) -> Result<(), VfsError> {
        self.writable()?
            .symlink(path, target)
            .await
            .map_err(not_found_to_vfs)
    }

    async fn readlink(&self, path: &str) -> Result<Vec<u8>, VfsError> {
        self.backend.readlink(path).await.map_err(not_found_to_vfs)
    }

    async fn link(&self, from: &str, to: &str) -> Result<(), VfsError> {
        self.writable()?.link(from, to).await.map_err(not_found_to_vfs)
    }

    async fn mknod(&self, path: &str, mode: u32, rdev: u64) -> Result<(), VfsError> {
        self.writable()?
            .mknod(path, mode, rdev)
            .await
            .map_err(not_found_to_vfs)
    }

    fn space(&self) -> Option<SpaceInfo> {
        self.backend.space()
    }
}
