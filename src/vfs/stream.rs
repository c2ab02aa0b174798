//! Uploads fed while a file is being written (the tree-level face of
//! `backend::StreamUpload`), so the core can overlap a sequential write with
//! its upload without knowing the backend.

use super::VfsError;
use async_trait::async_trait;
use bytes::Bytes;

/// An upload in progress, fed with the file's bytes in order.
#[async_trait]
pub trait UploadStream: Send + Sync + std::fmt::Debug {
    /// Sends the next bytes of the file (may wait for parts in flight).
    async fn write(&mut self, data: Bytes) -> Result<(), VfsError>;
    /// Completes the object; returns the bytes sent.
    async fn finish(self: Box<Self>) -> Result<u64, VfsError>;
    /// Gives up, discarding what was sent.
    async fn abort(self: Box<Self>);
}

#[async_trait]
impl UploadStream for crate::backend::StreamUpload {
    async fn write(&mut self, data: Bytes) -> Result<(), VfsError> {
        crate::backend::StreamUpload::write(self, data)
            .await
            .map_err(VfsError::Backend)
    }
    async fn finish(self: Box<Self>) -> Result<u64, VfsError> {
        crate::backend::StreamUpload::finish(*self)
            .await
            .map_err(VfsError::Backend)
    }
    async fn abort(self: Box<Self>) {
        crate::backend::StreamUpload::abort(*self).await
    }
}
