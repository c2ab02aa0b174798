//! The write path of the core: staged copies, writes, truncation,
//! fallocate, and uploads on flush/fsync/release (see the module doc of
//! `fs` for the contract: nothing acknowledged is dropped).
//!
//! Every staged copy records the object version it replaces (its base, see
//! `staging::Base`): read when the copy is made, and again before the first
//! write after an upload. A failed upload seals the copy (bytes fsynced,
//! length and checksum in its marker); a successful one clears the marker.
//! A file state leaves the table only when nothing is left to upload
//! ([`Fs::settle`]), and its inode is kept while it is in the table.

use super::staging::Base;
use super::*;

impl Fs {
    pub(super) async fn truncate(&self, ino: u64, place: &Place, size: u64) -> Res<()> {
        let (state, mut st) = self.handles.lock_current(ino).await;
        stop_stream(&mut st, "truncated").await;
        if size == 0 {
            let base = self.base_of(place).await;
            if let Some(old) = st.staged.take() {
                old.discard();
            }
            st.staged = Some(self.new_staged(place, base)?);
        } else {
            self.materialize(&mut st, place).await?;
        }
        let file = st.staged.as_ref().expect("materialized").file();
        tokio::task::spawn_blocking(move || file.set_len(size))
            .await
            .map_err(std::io::Error::other)??;
        self.make_dirty(ino, &mut st).await?;
        st.mtime = Some(SystemTime::now());
        if st.opens == 0 {
            // Truncate by path: nobody will flush, so upload now. On failure
            // the state stays (dirty) for a drain or a later close.
            self.upload_locked(ino, &mut st).await?;
            self.settle(ino, &state, &mut st);
        }
        Ok(())
    }

    /// An empty staged copy for `place` replacing the object version `base`
    /// (on a direct-write mount: the backing file itself, emptied).
    pub(super) fn new_staged(&self, place: &Place, base: Base) -> Res<staging::Staged> {
        if let Some(file) = place.tree.open_direct(&place.rel, true) {
            let path = place.tree.direct_write_path(&place.rel).unwrap_or_default();
            return Ok(staging::Staged::in_place_file(file?, &path));
        }
        let target = Target {
            mount: place.mount.clone(),
            path: place.rel.clone(),
            backend: Some(place.tree.identity()),
            base,
        };
        Ok(self.staging.create(target)?)
    }

    /// The version of the object at `place` now, as a staged copy's base.
    pub(super) async fn base_of(&self, place: &Place) -> Base {
        if place.tree.direct_write_path(&place.rel).is_some() {
            return Base::Unknown;
        }
        match place.tree.stat(&place.rel).await {
            Ok(m) if !m.is_dir => Base::of(&m),
            Err(VfsError::NotFound) => Base::Absent,
            _ => Base::Unknown,
        }
    }

    /// Marks the file dirty (on disk too), first reading its base again if
    /// an upload replaced the object since the base was recorded.
    pub(super) async fn make_dirty(&self, ino: u64, st: &mut FileState) -> Res<()> {
        let stale = st.staged.as_ref().is_some_and(|s| s.base_is_stale());
        if stale && !st.dirty {
            let base = match self.inodes.path(ino).map(|p| self.place(&p)) {
                Some(Ok(place)) => self.base_of(&place).await,
                _ => Base::Unknown,
            };
            if let Some(s) = st.staged.as_mut() {
                s.set_base(base)?;
            }
        }
        st.set_dirty()?;
        Ok(())
    }

    /// Takes a file state that has nothing left to upload and no open
    /// handle out of the table (its staged copy deleted), and lets its
    /// inode go if the kernel forgot it meanwhile. The caller holds the lock.
    pub(super) fn settle(&self, ino: u64, state: &SharedState, st: &mut FileState) {
        if st.opens > 0 || (st.dirty && !st.unlinked) {
            return;
        }
        if let Some(s) = st.staged.take() {
            s.discard();
        }
        self.handles.drop_state(ino, state);
        self.reap(ino);
    }

    /// Drops `ino` if the kernel holds no lookup of it and it has no file state.
    pub(super) fn reap(&self, ino: u64) {
        self.inodes
            .forget_unless(ino, 0, |i| self.handles.state(i).is_some());
    }

    /// ESTALE for an inode whose mount was removed (`table.rs`): its staged
    /// copy must not take writes no upload can deliver.
    pub(super) fn check_live(&self, ino: u64) -> Res<()> {
        if self.inodes.exists(ino) {
            Ok(())
        } else {
            Err(FsError::StaleInode(ino))
        }
    }

    /// Copies the object into staging unless it is there already.
    pub(super) async fn materialize(&self, st: &mut FileState, place: &Place) -> Res<()> {
        if st.staged.is_some() {
            return Ok(());
        }
        if let Some(file) = place.tree.open_direct(&place.rel, false) {
            let path = place.tree.direct_write_path(&place.rel).unwrap_or_default();
            st.staged = Some(staging::Staged::in_place_file(file?, &path));
            return Ok(());
        }
        // The base is read before the bytes: if the object changes in
        // between, recovery sees a newer object and keeps a conflict copy.
        let base = self.base_of(place).await;
        let staged = self.new_staged(place, base)?;
        let file = staged.file();
        let mut offset = 0u64;
        loop {
            let piece = match place.tree.read(&place.rel, offset, COPY_CHUNK).await {
                Ok(p) => p,
                Err(VfsError::NotFound) if offset == 0 => Bytes::new(),
                Err(e) => {
                    staged.discard();
                    return Err(e.into());
                }
            };
            if piece.is_empty() {
                break;
            }
            let n = piece.len() as u64;
            let f = file.clone();
            let at = offset;
            tokio::task::spawn_blocking(move || staging::write_at(&f, at, &piece))
                .await
                .map_err(std::io::Error::other)??;
            offset += n;
            if n < COPY_CHUNK {
                break;
            }
        }
        st.staged = Some(staged);
        Ok(())
    }

    /// Uploads the staged copy of `ino` if it is dirty (the state is locked
    /// by the caller). On success the copy is clean (marker cleared); on
    /// failure it is sealed and stays dirty.
    pub(super) async fn upload_locked(&self, ino: u64, st: &mut FileState) -> Res<()> {
        let kernel_writes = st.kernel_writes && st.staged.is_some();
        if st.opens == 0 {
            st.kernel_writes = false;
        }
        if !(st.dirty || kernel_writes) || st.unlinked {
            stop_stream(st, "flushed with nothing dirty, or unlinked").await;
            return Ok(());
        }
        let vpath = self.inodes.path(ino).ok_or(FsError::StaleInode(ino))?;
        let staged = st.staged.as_mut().expect("dirty implies staged");
        if staged.is_in_place() {
            // Written into the backing file already; listings may hold the old size.
            st.dirty = false;
            self.dirs.invalidate_parent(&vpath);
            // Each flush (every close) and the release come here: the
            // observer (a bucket hashes the file) hears of the bytes once.
            let stamp = staged.file().metadata().ok().map(|m| {
                use std::os::unix::fs::MetadataExt;
                (m.len(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec())
            });
            if stamp.is_none() || stamp != st.notified {
                st.notified = stamp;
                self.notify_stored(&vpath, staged.file()).await;
            }
            return Ok(());
        }
        let mut timed_out = None;
        if let Some(s) = st.stream.take() {
            if staged.len()? == s.next {
                match s.upload.finish().await {
                    Ok(n) => {
                        tracing::debug!(path = %vpath, bytes = n, "streamed upload completed");
                        staged.uploaded();
                        st.dirty = false;
                        self.dirs.invalidate_parent(&vpath);
                        self.notify_stored(&vpath, staged.file()).await;
                        self.restore_attrs(&vpath, st).await;
                        return Ok(());
                    }
                    // A backend that let a call time out (io_timeout_secs,
                    // retries included) gets no second call now: the close
                    // fails within one bound, the copy stays staged.
                    Err(e) if is_timeout(&e) => timed_out = Some(e),
                    Err(e) => {
                        tracing::warn!(path = %vpath, error = %e, "streamed upload failed; uploading the staged copy")
                    }
                }
            } else {
                s.upload.abort().await;
            }
        }
        let uploaded = match timed_out {
            Some(e) => Err(e),
            None => {
                let place = self.place(&vpath)?;
                place.tree.upload(&place.rel, staged.data_path()).await
            }
        };
        match uploaded {
            Ok(_) => {
                staged.uploaded();
                st.dirty = false;
                self.dirs.invalidate_parent(&vpath);
                self.notify_stored(&vpath, staged.file()).await;
                self.restore_attrs(&vpath, st).await;
                Ok(())
            }
            Err(source) => {
                let path = staged.data_path().display().to_string();
                if let Err(e) = staged.seal() {
                    tracing::error!(staged = %path, error = %e, "cannot seal the staged copy (fsync or marker failed)");
                }
                tracing::error!(path = %vpath, staged = %path, error = %source, "upload failed; staged data kept");
                Err(FsError::Upload {
                    path: vpath,
                    staged: path,
                    source,
                })
            }
        }
    }

    /// Stores again the attributes set while the file was staged (the
    /// upload just replaced the object and, on S3, its metadata with what
    /// it had when the upload began). The data is up either way: a failure
    /// here is logged, and the file shows the attributes the object has.
    async fn restore_attrs(&self, vpath: &str, st: &mut FileState) {
        let Some(set) = st.attrs_pending.take() else {
            return;
        };
        let Ok(place) = self.place(vpath) else {
            return;
        };
        if !place.tree.stores_posix() {
            return;
        }
        if let Err(e) = place.tree.set_meta(&place.rel, &set).await {
            tracing::error!(path = %vpath, error = %e, "uploaded, but cannot store its attributes again");
        }
        self.dirs.invalidate_parent(vpath);
    }

    /// The shared state behind a handle opened for writing.
    pub(super) fn writable_state(&self, fh: u64) -> Res<SharedState> {
        match self.file_handle(fh)? {
            (_, true, state) => Ok(state),
            (_, false, _) => Err(FsError::BadHandle(fh)),
        }
    }

    /// The staged copy of the handle's file (made on first use), its state locked by the caller.
    pub(super) async fn staged_file(&self, fh: u64, st: &mut FileState) -> Res<Arc<std::fs::File>> {
        let (ino, _, _) = self.file_handle(fh)?;
        self.check_live(ino)?;
        if st.staged.is_none() {
            let vpath = self.vpath(ino)?;
            let place = self.place(&vpath)?;
            self.materialize(st, &place).await?;
        }
        Ok(st.staged.as_ref().expect("materialized").file())
    }

    /// `write`: into the staged copy.
    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Res<u32> {
        let state = self.writable_state(fh)?;
        let mut st = state.lock().await;
        let file = self.staged_file(fh, &mut st).await?;
        // On the calling FUSE thread: a write of at most `max_write` into a
        // local file's page cache is cheaper than a hand-off to the blocking pool.
        staging::write_at(&file, offset, data)?;
        let (ino, _, _) = self.file_handle(fh)?;
        self.make_dirty(ino, &mut st).await?;
        st.mtime = Some(SystemTime::now());
        if let Some(p) = st.attrs_pending.as_mut() {
            // A write after utimens: the file's time is the write's again.
            p.mtime = None;
        }
        self.feed_stream(&mut st, offset, data).await;
        Ok(data.len() as u32)
    }

    /// Passes a write on to the file's streamed upload while the file is
    /// written in order; any other write ends the stream (the staged copy
    /// then goes up whole at close).
    async fn feed_stream(&self, st: &mut FileState, offset: u64, data: &[u8]) {
        let Some(s) = st.stream.as_mut() else {
            return;
        };
        let why = if s.next == offset {
            match s.upload.write(Bytes::copy_from_slice(data)).await {
                Ok(()) => {
                    s.next += data.len() as u64;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "streamed upload failed; the file goes up whole at close");
                    "a part failed"
                }
            }
        } else {
            tracing::info!(
                expected = s.next,
                got = offset,
                "write out of order: streamed upload given up; the file goes up whole at close"
            );
            "a write out of order"
        };
        stop_stream(st, why).await;
    }

    /// Starts a streamed upload for a file that starts empty now (created or
    /// opened with O_TRUNC), where the tree has them.
    pub(super) async fn start_stream(&self, st: &mut FileState, place: &Place) {
        stop_stream(st, "opened empty again").await;
        st.stream = place
            .tree
            .start_stream(&place.rel)
            .await
            .map(|upload| handles::Streaming { upload, next: 0 });
    }

    /// `fallocate` with mode 0 or `FALLOC_FL_KEEP_SIZE`: backends have no
    /// preallocation, so this only grows the file (mode 0) like a truncate
    /// that never shrinks. Other modes (punch hole, zero range) are ENOTSUP.
    pub async fn fallocate(&self, fh: u64, offset: u64, len: u64, mode: i32) -> Res<()> {
        let state = self.writable_state(fh)?;
        if mode & !libc::FALLOC_FL_KEEP_SIZE != 0 {
            return Err(FsError::NotSupported);
        }
        let end = offset
            .checked_add(len)
            .ok_or(VfsError::Invalid("offset + length overflows"))?;
        if mode & libc::FALLOC_FL_KEEP_SIZE != 0 {
            return Ok(());
        }
        let mut st = state.lock().await;
        let file = self.staged_file(fh, &mut st).await?;
        let grew = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
            let grow = file.metadata()?.len() < end;
            if grow {
                file.set_len(end)?;
            }
            Ok(grow)
        })
        .await
        .map_err(std::io::Error::other)??;
        if grew {
            stop_stream(&mut st, "grown by fallocate").await;
            let (ino, _, _) = self.file_handle(fh)?;
            self.make_dirty(ino, &mut st).await?;
            st.mtime = Some(SystemTime::now());
        }
        Ok(())
    }

    /// Notes which process opened the handle `fh` for writing, from the
    /// calling thread `tid` of its open or create, for [`Fs::flush_from`]
    /// (read-only handles have nothing to upload: they need not be noted).
    pub fn opened_by(&self, fh: u64, tid: u32) {
        if let Some(pid) = caller::process_of(tid) {
            self.handles.set_opener(fh, pid);
        }
    }

    /// `flush` (each close of a descriptor), from the calling thread `tid`:
    /// uploads pending data of the handle's file, unless the close comes
    /// from another process than the one that opened the handle. That is a
    /// child that inherited the descriptor when its parent forked, closing
    /// it as it execs or exits while the parent still writes: uploading
    /// then would put a partial file on the backend for others to read and
    /// end the file's streamed upload. The opener's close, the last close
    /// (release) and fsync upload it. When either process cannot be told
    /// (see [`caller::process_of`]) the flush uploads, as it always did.
    pub async fn flush_from(&self, fh: u64, tid: u32) -> Res<()> {
        // A process's main thread has the process's id: no /proc read then.
        if let Some(opener) = self.handles.opener(fh).filter(|&opener| opener != tid) {
            let caller = caller::process_of(tid);
            if caller.is_some_and(|caller| caller != opener) {
                tracing::debug!(
                    fh,
                    opener,
                    caller,
                    "close by another process than the opener: no upload"
                );
                return Ok(());
            }
        }
        self.flush(fh).await
    }

    /// `fsync`, and a flush of the opener: uploads pending data of the
    /// handle's file.
    pub async fn flush(&self, fh: u64) -> Res<()> {
        let (ino, _, state) = self.file_handle(fh)?;
        let mut st = state.lock().await;
        self.upload_locked(ino, &mut st).await
    }

    /// `fsync`: uploads pending data and makes it durable on the backend.
    pub async fn fsync(&self, fh: u64) -> Res<()> {
        self.flush(fh).await?;
        let (ino, _, _) = self.file_handle(fh)?;
        let vpath = self.vpath(ino)?;
        let place = self.place(&vpath)?;
        Ok(place.tree.sync(&place.rel).await?)
    }

    /// `release`: the last close uploads what is left and frees the staged copy.
    pub async fn release(&self, fh: u64) -> Res<()> {
        let Some(Handle::File { ino, state, .. }) = self.handles.remove(fh) else {
            return Ok(());
        };
        let mut st = state.lock().await;
        st.opens = st.opens.saturating_sub(1);
        if st.opens > 0 {
            return Ok(());
        }
        let uploaded = self.upload_locked(ino, &mut st).await;
        // Out of the table while still locked: see `Handles::lock_current`.
        self.settle(ino, &state, &mut st);
        uploaded
    }

    /// Uploads every file with pending data; returns the failures.
    pub async fn flush_all(&self) -> Vec<FsError> {
        let mut errors = Vec::new();
        for (ino, state) in self.handles.all_states() {
            let mut st = state.lock().await;
            match self.upload_locked(ino, &mut st).await {
                Ok(()) => self.settle(ino, &state, &mut st),
                Err(e) => errors.push(e),
            }
        }
        errors
    }
}

/// True when a backend call failed by running out of time.
fn is_timeout(e: &VfsError) -> bool {
    matches!(e, VfsError::Backend(b) if b.kind == crate::backend::BackendErrorKind::TimedOut)
}

/// Ends the file's streamed upload, if any, discarding what it sent;
/// `why` goes into the debug log line.
pub(super) async fn stop_stream(st: &mut FileState, why: &str) {
    if let Some(s) = st.stream.take() {
        tracing::debug!(sent = s.next, why, "streamed upload given up");
        s.upload.abort().await;
    }
}
