//! Uploads fed while a file is still being written: a file written from
//! start to end goes up in multipart parts as it grows, so `close` only
//! waits for the last part instead of for the whole file. The staged copy
//! stays the source of truth: the core falls back to a whole upload from it
//! whenever a stream cannot finish (a seek, a truncate, a failed part).

use super::{Backend, BackendError, UPLOAD_CHUNK, UPLOAD_CONCURRENCY};
use bytes::Bytes;

/// An upload in progress to one object.
pub struct StreamUpload {
    writer: opendal::Writer,
    sent: u64,
}

impl std::fmt::Debug for StreamUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamUpload").field("sent", &self.sent).finish()
    }
}

impl Backend {
    /// True where a stream pays: remote services that take multipart uploads
    /// (a local directory is written in place, memory has nothing to overlap).
    pub fn streams(&self) -> bool {
        self.fs_root.is_none() && self.multipart
    }

    /// Starts an upload of `path` (nothing is sent before the first full part).
    pub async fn start_stream(&self, path: &str) -> Result<StreamUpload, BackendError> {
        let mut w = self
            .op
            .writer_with(path)
            .chunk(UPLOAD_CHUNK)
            .concurrent(UPLOAD_CONCURRENCY);
        // The metadata is sent when the upload begins; a change made while
        // the file is written is applied again after it (see fs/write.rs).
        if let Some(user) = self.carried_meta(path).await? {
            w = w.user_metadata(user);
        }
        let writer = w.await?;
        Ok(StreamUpload { writer, sent: 0 })
    }
}

impl StreamUpload {
    /// Queues `data` (the next bytes of the file); waits while the parts in
    /// flight are at the concurrency limit.
    pub async fn write(&mut self, data: Bytes) -> Result<(), BackendError> {
        let n = data.len() as u64;
        self.writer.write(data).await?;
        self.sent += n;
        Ok(())
    }

    /// Sends what is left and completes the object; returns its size.
    pub async fn finish(mut self) -> Result<u64, BackendError> {
        self.writer.close().await?;
        Ok(self.sent)
    }

    /// Gives up: parts already sent are discarded on the server.
    pub async fn abort(mut self) {
        if let Err(e) = self.writer.abort().await {
            tracing::debug!(error = %e, "aborting a streamed upload");
        }
    }
}
