//! Namespace changes of the core: create, mkdir, unlink, rmdir, rename.
//! Each invalidates the listing cache entries it touches before answering.
//!
//! Staged data follows its name: unlink (and a rename over a file) retires
//! the file's staged copy under the file's lock, taken before the backend
//! call, so no upload can land after the delete and no leftover can bring
//! the old bytes back at the next start; a rename uploads what is pending
//! under the source first (else it fails and nothing moves), then points
//! every staged copy under it at the new name.

use super::staging::Base;
use super::*;

impl Fs {
    /// `create`: a new empty file, opened.
    pub async fn create(&self, parent: u64, name: &str, mode: u32, exclusive: bool) -> Res<(Entry, Opened)> {
        let vpath = self.child(parent, name)?;
        let place = self.place(&vpath)?;
        match place.tree.stat(&place.rel).await {
            Ok(m) if m.is_dir => return Err(VfsError::IsDir.into()),
            Ok(_) if exclusive => return Err(VfsError::Exists.into()),
            Ok(_) => {
                // The kernel thought the name was free (a negative entry made
                // stale by a change behind our back): open what is there,
                // never truncate it.
                self.dirs.invalidate_parent(&vpath);
                let entry = self.lookup(parent, name).await?;
                let opened = self.open(entry.attr.ino, true, false).await?;
                return Ok((entry, opened));
            }
            Err(VfsError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        // A direct-write mount creates the backing file by opening it.
        let mut direct = if place.tree.direct_write_path(&place.rel).is_some() {
            Some(self.new_staged(&place, Base::Unknown)?)
        } else {
            place.tree.create_file(&place.rel).await?;
            None
        };
        self.dirs.invalidate_parent(&vpath);
        let ino = self.inodes.lookup(&vpath, false);
        // The backend's own time, so the mtime seen now is the one seen after
        // close; and the empty object just made is the staged copy's base.
        let (created, base) = match &direct {
            Some(f) => (f.file().metadata().and_then(|m| m.modified()).ok(), Base::Unknown),
            None => match place.tree.stat(&place.rel).await {
                Ok(m) => (m.mtime, Base::of(&m)),
                Err(_) => (None, Base::Unknown),
            },
        };
        let stored = self.set_new_mode(&place, ino, mode, false).await?;
        let (state, backing) = {
            let (state, mut st) = self.handles.lock_current(ino).await;
            if let Some(old) = st.staged.take() {
                old.discard();
            }
            st.staged = Some(match direct.take() {
                Some(f) => f,
                None => self.new_staged(&place, base)?,
            });
            self.start_stream(&mut st, &place).await;
            st.dirty = false;
            st.unlinked = false;
            st.mtime = created;
            // See `Fs::open`: the kernel may write a direct file itself.
            st.kernel_writes = st.staged.as_ref().is_some_and(|s| s.is_in_place());
            st.opens += 1;
            // The new backing file itself, which the kernel may then write.
            let backing = st.staged.as_ref().filter(|s| s.is_in_place()).map(|s| s.file());
            (state, backing)
        };
        let fh = self.handles.insert(Handle::File {
            ino,
            writable: true,
            state,
            reader: None,
            opener: None,
        });
        let meta = stored.unwrap_or(Meta {
            mtime: created,
            ..Meta::default()
        });
        let attr = self.attr_of(ino, meta, true).await;
        Ok((
            self.entry(attr),
            Opened {
                fh,
                keep_cache: false,
                backing,
            },
        ))
    }

    /// `mkdir`.
    pub async fn mkdir(&self, parent: u64, name: &str, mode: u32) -> Res<Entry> {
        let vpath = self.child(parent, name)?;
        let place = self.place(&vpath)?;
        match place.tree.stat(&place.rel).await {
            Ok(_) => return Err(VfsError::Exists.into()),
            Err(VfsError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        place.tree.mkdir_mode(&place.rel, mode & 0o7777).await?;
        self.dirs.invalidate_parent(&vpath);
        let ino = self.inodes.lookup(&vpath, true);
        let meta = match self.set_new_mode(&place, ino, mode, true).await? {
            Some(m) => m,
            None => Meta {
                mtime: place.tree.stat(&place.rel).await.ok().and_then(|m| m.mtime),
                ..Meta::dir()
            },
        };
        Ok(self.entry(self.attr_of(ino, meta, true).await))
    }

    /// Gives a new entry the mode its creator asked for: stored where the
    /// tree stores modes (exactly, whatever the daemon's umask; a directory
    /// keeps the set-group-ID bit it inherits), else in the overlay.
    /// Returns the stored metadata afterwards, for a storing tree.
    pub(super) async fn set_new_mode(
        &self,
        place: &Place,
        ino: u64,
        mode: u32,
        dir: bool,
    ) -> Res<Option<Meta>> {
        if !place.tree.stores_posix() {
            self.inodes.update_overlay(ino, |o| {
                *o = inodes::Overlay {
                    mode: Some(mode & 0o7777),
                    ..Default::default()
                };
            });
            return Ok(None);
        }
        let mut mode = mode & 0o7777;
        if dir {
            let now = place.tree.stat(&place.rel).await?;
            mode |= now.mode.unwrap_or(0) & libc::S_ISGID;
        }
        let set = crate::vfs::SetMeta {
            mode: Some(mode),
            ..Default::default()
        };
        place.tree.set_meta(&place.rel, &set).await?;
        Ok(Some(place.tree.stat(&place.rel).await?))
    }

    /// `unlink`.
    pub async fn unlink(&self, parent: u64, name: &str) -> Res<()> {
        let vpath = self.child(parent, name)?;
        let place = self.place(&vpath)?;
        if place.rel.is_empty() {
            // A mount's root lives in the read-only synthetic directory.
            return Err(VfsError::ReadOnly.into());
        }
        if place.tree.stat(&place.rel).await?.is_dir {
            return Err(VfsError::IsDir.into());
        }
        // The file's lock across the delete: an upload in flight finishes
        // first (then the delete removes it), none starts after.
        let ino = self.inodes.peek(&vpath);
        let state = ino.and_then(|i| self.handles.state(i));
        let mut guard = match &state {
            Some(s) => Some(s.lock().await),
            None => None,
        };
        place.tree.remove_file(&place.rel).await?;
        self.dirs.invalidate_parent(&vpath);
        self.inodes.unlink(&vpath);
        // Another name (a hard link) may still lead to the file: then its
        // data lives on under that name.
        let last_name = ino.is_some_and(|i| self.inodes.path(i).is_none());
        if let (true, Some(ino), Some(state), Some(st)) = (last_name, ino, &state, guard.as_deref_mut()) {
            self.retire_locked(ino, state, st).await;
        }
        self.notify_removed(&vpath).await;
        Ok(())
    }

    /// The name of `ino` is gone (unlinked, or replaced by a rename): its
    /// staged data is retired (nothing to upload, nothing for recovery) and
    /// its state leaves the table once no handle is open. Locked by the caller.
    pub(super) async fn retire_locked(&self, ino: u64, state: &SharedState, st: &mut FileState) {
        st.unlinked = true;
        st.dirty = false;
        write::stop_stream(st, "unlinked or renamed over").await;
        if let Some(s) = st.staged.as_mut() {
            s.retire();
        }
        self.settle(ino, state, st);
    }

    /// `rmdir`.
    pub async fn rmdir(&self, parent: u64, name: &str) -> Res<()> {
        let vpath = self.child(parent, name)?;
        let place = self.place(&vpath)?;
        if place.rel.is_empty() {
            return Err(VfsError::ReadOnly.into());
        }
        if !place.tree.stat(&place.rel).await?.is_dir {
            return Err(VfsError::NotDir.into());
        }
        if !place.tree.list(&place.rel).await?.is_empty() {
            return Err(VfsError::NotEmpty.into());
        }
        place.tree.remove_dir(&place.rel).await?;
        self.dirs.invalidate_tree(&vpath);
        self.inodes.unlink(&vpath);
        Ok(())
    }

    /// `rename`; `noreplace` is RENAME_NOREPLACE.
    pub async fn rename(
        &self,
        parent: u64,
        name: &str,
        newparent: u64,
        newname: &str,
        noreplace: bool,
    ) -> Res<()> {
        let from = self.child(parent, name)?;
        let to = self.child(newparent, newname)?;
        let src = self.place(&from)?;
        let dst = self.place(&to)?;
        if src.rel.is_empty() || dst.rel.is_empty() {
            return Err(VfsError::ReadOnly.into());
        }
        if src.mount != dst.mount {
            return Err(VfsError::CrossDevice.into());
        }
        if from == to {
            return Ok(());
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(VfsError::Invalid("cannot move a directory into itself").into());
        }
        let smeta = src.tree.stat(&src.rel).await?;
        if smeta.is_dir {
            // Staged children go up first: an object store renames a
            // directory object by object, and a child must arrive whole.
            if let Some(e) = self.flush_under(&from).await.into_iter().next() {
                return Err(e);
            }
        }
        match dst.tree.stat(&dst.rel).await {
            Ok(_) if noreplace => return Err(VfsError::Exists.into()),
            Ok(d) if d.is_dir && !smeta.is_dir => return Err(VfsError::IsDir.into()),
            Ok(d) if !d.is_dir && smeta.is_dir => return Err(VfsError::NotDir.into()),
            Ok(d) if d.is_dir => {
                if !dst.tree.list(&dst.rel).await?.is_empty() {
                    return Err(VfsError::NotEmpty.into());
                }
                dst.tree.remove_dir(&dst.rel).await?;
                self.dirs.invalidate_tree(&to);
            }
            Ok(_) => {}
            Err(VfsError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        // A file with data not yet uploaded goes up first, under its lock, so
        // no flush can race the rename.
        let src_ino = self.inodes.peek(&from);
        let state = src_ino.and_then(|i| self.handles.state(i));
        let mut guard = match &state {
            Some(s) => Some(s.lock().await),
            None => None,
        };
        if let (Some(st), Some(ino)) = (guard.as_deref_mut(), src_ino) {
            self.upload_locked(ino, st).await?;
        }
        let renamed = src.tree.rename(&src.rel, &dst.rel, smeta.is_dir).await;
        // Even a failed rename may have done part of its work (emulated renames).
        self.dirs.invalidate_tree(&from);
        self.dirs.invalidate_tree(&to);
        renamed?;
        self.notify_renamed(&from, &to).await;
        if let Some(victim) = self.inodes.peek(&to) {
            if let Some(vs) = self.handles.state(victim) {
                if !state.as_ref().is_some_and(|s| Arc::ptr_eq(s, &vs)) {
                    let mut g = vs.lock().await;
                    self.retire_locked(victim, &vs, &mut g).await;
                }
            }
        }
        self.inodes.rename(&from, &to);
        if let Some(st) = guard.as_deref_mut() {
            retarget(st, &dst.mount, &dst.rel);
        }
        drop(guard);
        if smeta.is_dir {
            self.retarget_under(&to, &dst.mount).await;
        }
        if let Some(ino) = src_ino {
            self.inodes
                .update_overlay(ino, |o| o.ctime = Some(SystemTime::now()));
        }
        Ok(())
    }
}

impl Fs {
    /// Points the staged copies of every file state now under the virtual
    /// directory `dir` (in the mount at `mount`) at their current names.
    async fn retarget_under(&self, dir: &str, mount: &str) {
        let under = format!("{dir}/");
        for (ino, state) in self.handles.all_states() {
            let Some(path) = self.inodes.path(ino).filter(|p| p.starts_with(&under)) else {
                continue;
            };
            let rel = path[mount.len()..].trim_start_matches('/').to_string();
            let mut st = state.lock().await;
            retarget(&mut st, mount, &rel);
        }
    }
}

/// Re-records where a state's staged copy must go.
fn retarget(st: &mut FileState, mount: &str, rel: &str) {
    if let Some(s) = st.staged.as_mut() {
        if let Err(e) = s.set_target(mount, rel) {
            tracing::warn!(error = %e, "could not update the staging sidecar after a rename");
        }
    }
}
