//! A [`Tree`] wrapper that counts the bytes a backend mount reads and
//! uploads, for `stats` and the Prometheus endpoint. It forwards every call
//! unchanged (every method of the trait, defaults included, so the wrapped
//! tree's own behaviour is kept); only successful transfers are counted.

use super::{Meta, SetMeta, SpaceInfo, Tree, UploadStream, VfsError};
use crate::metrics::BackendBytes;
use async_trait::async_trait;
use bytes::Bytes;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Counts bytes through `inner`.
pub struct MeteredTree {
    inner: Arc<dyn Tree>,
    bytes: Arc<BackendBytes>,
}

impl MeteredTree {
    pub fn new(inner: Arc<dyn Tree>, bytes: Arc<BackendBytes>) -> Self {
        Self { inner, bytes }
    }
}

#[async_trait]
impl Tree for MeteredTree {
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn identity(&self) -> String {
        self.inner.identity()
    }
    fn cache_blocks(&self) -> bool {
        self.inner.cache_blocks()
    }
    fn lists_full_meta(&self) -> bool {
        self.inner.lists_full_meta()
    }
    fn lists_every_name(&self, path: &str) -> bool {
        self.inner.lists_every_name(path)
    }
    fn remember_stats(&self) -> bool {
        self.inner.remember_stats()
    }
    fn content_addressed(&self) -> bool {
        self.inner.content_addressed()
    }
    async fn ipfs_cid(&self, path: &str) -> Option<super::IpfsCid> {
        self.inner.ipfs_cid(path).await
    }
    fn local_path(&self, path: &str) -> Option<std::path::PathBuf> {
        self.inner.local_path(path)
    }
    fn direct_write_path(&self, path: &str) -> Option<std::path::PathBuf> {
        self.inner.direct_write_path(path)
    }
    fn passthrough_open(&self, path: &str, write: bool) -> Option<Result<(std::fs::File, Meta), VfsError>> {
        self.inner.passthrough_open(path, write)
    }
    fn open_direct(&self, path: &str, truncate: bool) -> Option<Result<std::fs::File, VfsError>> {
        self.inner.open_direct(path, truncate)
    }
    async fn sync(&self, path: &str) -> Result<(), VfsError> {
        self.inner.sync(path).await
    }
    async fn stat(&self, path: &str) -> Result<Meta, VfsError> {
        self.inner.stat(path).await
    }
    async fn stat_peek(&self, path: &str, max: u64) -> Result<(Meta, Option<Bytes>), VfsError> {
        let (meta, data) = self.inner.stat_peek(path, max).await?;
        if let Some(d) = &data {
            self.bytes.read.fetch_add(d.len() as u64, Ordering::Relaxed);
        }
        Ok((meta, data))
    }
    async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, VfsError> {
        self.inner.list(path).await
    }
    async fn read(&self, path: &str, offset: u64, len: u64) -> Result<Bytes, VfsError> {
        let data = self.inner.read(path, offset, len).await?;
        self.bytes.read.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(data)
    }
    async fn read_version(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        version: Option<&str>,
    ) -> Result<Bytes, VfsError> {
        let data = self.inner.read_version(path, offset, len, version).await?;
        self.bytes.read.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(data)
    }
    async fn upload(&self, path: &str, staged: &Path) -> Result<u64, VfsError> {
        let n = self.inner.upload(path, staged).await?;
        self.bytes.written.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }
    async fn start_stream(&self, path: &str) -> Option<Box<dyn UploadStream>> {
        let inner = self.inner.start_stream(path).await?;
        Some(Box::new(MeteredStream {
            inner,
            bytes: self.bytes.clone(),
        }))
    }
    async fn create_file(&self, path: &str) -> Result<(), VfsError> {
        self.inner.create_file(path).await
    }
    async fn mkdir(&self, path: &str) -> Result<(), VfsError> {
        self.inner.mkdir(path).await
    }
    async fn remove_file(&self, path: &str) -> Result<(), VfsError> {
        self.inner.remove_file(path).await
    }
    async fn remove_dir(&self, path: &str) -> Result<(), VfsError> {
        self.inner.remove_dir(path).await
    }
    async fn rename(&self, from: &str, to: &str, is_dir: bool) -> Result<(), VfsError> {
        self.inner.rename(from, to, is_dir).await
    }
    async fn mkdir_mode(&self, path: &str, mode: u32) -> Result<(), VfsError> {
        self.inner.mkdir_mode(path, mode).await
    }
    fn stores_posix(&self) -> bool {
        self.inner.stores_posix()
    }
    async fn set_meta(&self, path: &str, set: &SetMeta) -> Result<(), VfsError> {
        self.inner.set_meta(path, set).await
    }
    async fn symlink(&self, path: &str, target: &str) -> Result<(), VfsError> {
        self.inner.symlink(path, target).await
    }
    async fn readlink(&self, path: &str) -> Result<Vec<u8>, VfsError> {
        self.inner.readlink(path).await
    }
    async fn link(&self, from: &str, to: &str) -> Result<(), VfsError> {
        self.inner.link(from, to).await
    }
    async fn mknod(&self, path: &str, mode: u32, rdev: u64) -> Result<(), VfsError> {
        self.inner.mknod(path, mode, rdev).await
    }
    fn space(&self) -> Option<SpaceInfo> {
        self.inner.space()
    }
}

/// Counts the bytes of a completed streamed upload (as uploaded and as streamed).
#[derive(Debug)]
struct MeteredStream {
    inner: Box<dyn UploadStream>,
    bytes: Arc<BackendBytes>,
}

#[async_trait]
impl UploadStream for MeteredStream {
    async fn write(&mut self, data: Bytes) -> Result<(), VfsError> {
        self.inner.write(data).await
    }
    async fn finish(self: Box<Self>) -> Result<u64, VfsError> {
        let n = self.inner.finish().await?;
        self.bytes.written.fetch_add(n, Ordering::Relaxed);
        self.bytes.streamed.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }
    async fn abort(self: Box<Self>) {
        self.inner.abort().await
    }
}
