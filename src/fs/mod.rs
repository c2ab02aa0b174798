//! The filesystem core: every FUSE operation as an async method on [`Fs`],
//! free of fuser types so it is tested without a kernel.
//!
//! The core owns the inode table, the handle table and staging. It resolves
//! inodes to virtual paths, virtual paths to trees through the [`Router`],
//! and answers with small structs named after the FUSE replies ([`Entry`],
//! [`Attr`], [`Opened`], [`DirEntry`], [`StatFs`]). Errors are [`FsError`],
//! mapped to errno in one table (`errno.rs`).
//!
//! Write path: the first write (or truncate) of a file copies it into a
//! staging file; writes go there; flush/fsync/release upload it. A failed
//! upload is an error to close/fsync and the staged data stays on disk.

mod attr;
mod dircache;
mod drain;
mod errno;
mod handles;
mod inodes;
pub mod invalidate;
mod reader;
mod recover;
pub mod staging;
mod table;

pub use attr::{Attr, Kind, Owner, BLKSIZE};
pub use drain::{Pending, PendingFile};
pub use errno::FsError;
pub use handles::DirEntry;
pub use inodes::ROOT_INO;
pub use invalidate::Invalidator;
pub use reader::Reader;
pub use recover::Recovery;
pub use table::TableError;

use crate::vfs::{join_abs, Meta, Resolved, Router, Tree, VfsError};
use bytes::Bytes;
use dircache::{parent_of, DirCache, Listing};
use handles::{FileState, Handle, Handles, SharedState};
use inodes::Inodes;
use reader::ReadCtx;
use staging::{StagingDir, Target};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Longest file name accepted (Linux NAME_MAX).
const NAME_MAX: usize = 255;
/// Piece size when copying an object into staging: bounds memory per copy.
const COPY_CHUNK: u64 = 8 << 20;

/// A looked-up name.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub attr: Attr,
    pub ttl: Duration,
}

/// An opened file or directory.
#[derive(Debug, Clone)]
pub struct Opened {
    pub fh: u64,
    /// Let the kernel keep cached pages from earlier opens.
    pub keep_cache: bool,
    /// A local file holding exactly these bytes, which the kernel may read
    /// directly (FUSE passthrough); only for read-only opens of unmodified
    /// files on local backends.
    pub local: Option<std::path::PathBuf>,
}

/// What `statfs` reports.
#[derive(Debug, Clone, Copy)]
pub struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

/// Attribute changes asked by `setattr`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
    pub fh: Option<u64>,
}

/// Settings of the core.
#[derive(Debug, Clone, Copy)]
pub struct FsOptions {
    pub owner: Owner,
    pub ttl: Duration,
}

/// The filesystem core.
pub struct Fs {
    router: Arc<Router>,
    inodes: Inodes,
    handles: Handles,
    staging: StagingDir,
    opts: FsOptions,
    reader: Option<Reader>,
    dirs: DirCache,
    /// The object each inode was last opened at, to keep the kernel's page
    /// cache across opens of an unchanged object.
    last_seen: std::sync::Mutex<HashMap<u64, crate::cache::ObjectId>>,
}

type Res<T> = Result<T, FsError>;

/// Where a path resolves to, for mutations.
struct Place {
    mount: String,
    tree: Arc<dyn Tree>,
    rel: String,
}

impl Fs {
    pub fn new(router: Arc<Router>, staging: StagingDir, opts: FsOptions) -> Self {
        Self {
            router,
            inodes: Inodes::new(),
            handles: Handles::new(),
            staging,
            opts,
            dirs: DirCache::new(opts.ttl),
            reader: None,
            last_seen: Default::default(),
        }
    }

    /// Reads of unmodified files go through `reader` (block cache + readahead).
    pub fn with_reader(mut self, reader: Reader) -> Self {
        self.reader = Some(reader);
        self
    }

    /// The cached read path, if configured.
    pub fn reader(&self) -> Option<&Reader> {
        self.reader.as_ref()
    }

    /// The mount table.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// How long the kernel may cache attributes and entries.
    pub fn ttl(&self) -> Duration {
        self.opts.ttl
    }

    /// The staging directory.
    pub fn staging(&self) -> &StagingDir {
        &self.staging
    }

    fn vpath(&self, ino: u64) -> Res<String> {
        self.inodes.path(ino).ok_or(if self.inodes.exists(ino) {
            FsError::Vfs(VfsError::NotFound)
        } else {
            FsError::StaleInode(ino)
        })
    }

    fn child(&self, parent: u64, name: &str) -> Res<String> {
        if name.len() > NAME_MAX {
            return Err(VfsError::NameTooLong.into());
        }
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(VfsError::Invalid("bad name").into());
        }
        Ok(join_abs(&self.vpath(parent)?, name))
    }

    /// A writable place for `vpath` (EROFS for synthetic directories and read-only mounts).
    fn place(&self, vpath: &str) -> Res<Place> {
        match self.router.resolve(vpath) {
            Resolved::Tree { mount, tree, rel } => {
                if tree.read_only() {
                    return Err(VfsError::ReadOnly.into());
                }
                Ok(Place { mount, tree, rel })
            }
            Resolved::Synthetic(_) => Err(VfsError::ReadOnly.into()),
            Resolved::Missing => {
                // A new name directly in a synthetic directory is read-only too.
                Err(VfsError::ReadOnly.into())
            }
        }
    }

    async fn meta(&self, vpath: &str) -> Res<(Meta, bool)> {
        match self.router.resolve(vpath) {
            Resolved::Synthetic(_) => Ok((Meta::dir(), false)),
            Resolved::Tree { tree, rel, .. } => {
                let writable = !tree.read_only();
                if let (false, Some(parent)) = (rel.is_empty(), parent_of(vpath)) {
                    let name = vpath.rsplit('/').next().unwrap_or(vpath);
                    match self.dirs.child(parent, name) {
                        Some(Some(meta)) => return Ok((meta, writable)),
                        Some(None) => return Err(VfsError::NotFound.into()),
                        None => {}
                    }
                }
                Ok((tree.stat(&rel).await?, writable))
            }
            Resolved::Missing => Err(VfsError::NotFound.into()),
        }
    }

    /// The listing of a directory in a tree, from the listing cache when fresh.
    async fn listing(&self, vpath: &str, tree: &Arc<dyn Tree>, rel: &str) -> Res<Listing> {
        if let Some(l) = self.dirs.get(vpath) {
            return Ok(l);
        }
        let meta = tree.stat(rel).await?;
        if !meta.is_dir {
            return Err(VfsError::NotDir.into());
        }
        let l: Listing = Arc::new(tree.list(rel).await?);
        self.dirs.put(vpath, l.clone());
        Ok(l)
    }

    async fn attr_of(&self, ino: u64, meta: Meta, writable: bool) -> Attr {
        match self.handles.state(ino) {
            Some(st) => self.attr_with(ino, meta, writable, Some(&*st.lock().await)),
            None => self.attr_with(ino, meta, writable, None),
        }
    }

    /// Attributes from backend metadata, corrected by the staged copy of an open file.
    fn attr_with(&self, ino: u64, mut meta: Meta, writable: bool, st: Option<&FileState>) -> Attr {
        if let Some(st) = st {
            if let Some(s) = &st.staged {
                if let Ok(len) = s.len() {
                    meta.size = len;
                }
                meta.mtime = st.mtime.or(meta.mtime);
            }
        }
        attr::build(ino, &meta, &self.inodes.overlay(ino), &self.opts.owner, writable)
    }

    /// Stats `vpath` and builds the attributes of `ino`. The state of an open
    /// file is locked across the backend stat: otherwise a release could
    /// upload and drop its staged copy in between, and the answer would carry
    /// the size from before the upload (which the kernel then caches).
    async fn stat_attr(&self, ino: Option<u64>, vpath: &str) -> Res<(Meta, Attr)> {
        let state = ino.and_then(|i| self.handles.state(i));
        let guard = match &state {
            Some(s) => Some(s.lock().await),
            None => None,
        };
        let (meta, writable) = self.meta(vpath).await?;
        let attr = match (ino, guard) {
            (Some(ino), Some(st)) => self.attr_with(ino, meta.clone(), writable, Some(&*st)),
            (ino, _) => {
                let ino = ino.unwrap_or_else(|| self.inodes.lookup(vpath, meta.is_dir));
                self.attr_of(ino, meta.clone(), writable).await
            }
        };
        Ok((meta, attr))
    }

    fn entry(&self, attr: Attr) -> Entry {
        Entry {
            attr,
            ttl: self.opts.ttl,
        }
    }

    /// `lookup`: a name in a directory.
    pub async fn lookup(&self, parent: u64, name: &str) -> Res<Entry> {
        let vpath = self.child(parent, name)?;
        let known = self.inodes.peek(&vpath);
        let (meta, attr) = self.stat_attr(known, &vpath).await?;
        if known.is_some() {
            // Count the kernel's lookup (stat_attr only does for a new inode).
            let ino = self.inodes.lookup(&vpath, meta.is_dir);
            if ino != attr.ino {
                let (_, attr) = self.stat_attr(Some(ino), &vpath).await?;
                return Ok(self.entry(attr));
            }
        }
        Ok(self.entry(attr))
    }

    /// How long the kernel may remember that a name is missing from `parent`:
    /// the attribute TTL inside a mounted tree; never in synthetic directories,
    /// whose names change with the mount table.
    pub fn negative_ttl(&self, parent: u64) -> Option<Duration> {
        let vpath = self.inodes.path(parent)?;
        let in_tree = matches!(self.router.resolve(&vpath), Resolved::Tree { .. });
        (in_tree && !self.opts.ttl.is_zero()).then_some(self.opts.ttl)
    }

    /// `forget`: the kernel dropped `n` references.
    pub fn forget(&self, ino: u64, n: u64) {
        self.inodes.forget(ino, n);
    }

    /// `getattr`.
    pub async fn getattr(&self, ino: u64) -> Res<Attr> {
        match self.inodes.path(ino) {
            Some(vpath) => Ok(self.stat_attr(Some(ino), &vpath).await?.1),
            None => self.unlinked_attr(ino).await,
        }
    }

    /// Attributes of an open file whose name is gone.
    async fn unlinked_attr(&self, ino: u64) -> Res<Attr> {
        if !self.inodes.exists(ino) {
            // Forgotten with its mount (see `table.rs`): stale, not unlinked.
            return Err(FsError::StaleInode(ino));
        }
        let st = self.handles.state(ino).ok_or(FsError::StaleInode(ino))?;
        let size = {
            let st = st.lock().await;
            st.staged.as_ref().and_then(|s| s.len().ok()).unwrap_or(0)
        };
        let meta = Meta {
            is_dir: false,
            size,
            mtime: None,
            version: None,
        };
        let mut a = self.attr_of(ino, meta, true).await;
        a.nlink = 0;
        Ok(a)
    }

    /// `setattr`: truncate, chmod, chown, utimens.
    pub async fn setattr(&self, ino: u64, set: SetAttr) -> Res<Attr> {
        let vpath = self.vpath(ino)?;
        let place = self.place(&vpath)?;
        if let Some(size) = set.size {
            let (meta, _) = self.meta(&vpath).await?;
            if meta.is_dir {
                return Err(VfsError::IsDir.into());
            }
            self.truncate(ino, &place, size).await?;
        }
        let now = SystemTime::now();
        self.inodes.update_overlay(ino, |o| {
            if let Some(m) = set.mode {
                o.mode = Some(m);
            }
            if let Some(u) = set.uid {
                o.uid = Some(u);
            }
            if let Some(g) = set.gid {
                o.gid = Some(g);
            }
            if let Some(t) = set.atime {
                o.atime = Some(t);
            }
            if let Some(t) = set.mtime {
                o.mtime = Some(t);
            } else if set.size.is_some() {
                o.mtime = Some(now);
            }
            o.ctime = Some(now);
        });
        self.getattr(ino).await
    }

    async fn truncate(&self, ino: u64, place: &Place, size: u64) -> Res<()> {
        let state = self.handles.state_or_new(ino);
        let mut st = state.lock().await;
        if size == 0 {
            if let Some(old) = st.staged.take() {
                old.discard();
            }
            st.staged = Some(self.new_staged(place)?);
        } else {
            self.materialize(&mut st, place).await?;
        }
        let file = st.staged.as_ref().expect("materialized").file();
        tokio::task::spawn_blocking(move || file.set_len(size))
            .await
            .map_err(std::io::Error::other)??;
        st.set_dirty()?;
        st.mtime = Some(SystemTime::now());
        if st.opens == 0 {
            // Truncate by path: nobody will flush, so upload now.
            self.upload_locked(ino, &mut st).await?;
            if let Some(s) = st.staged.take() {
                s.discard();
            }
            drop(st);
            self.handles.drop_state(ino, &state);
        }
        Ok(())
    }

    fn new_staged(&self, place: &Place) -> Res<staging::Staged> {
        let target = Target {
            mount: place.mount.clone(),
            path: place.rel.clone(),
        };
        Ok(self.staging.create(&target)?)
    }

    /// Copies the object into staging unless it is there already.
    async fn materialize(&self, st: &mut FileState, place: &Place) -> Res<()> {
        if st.staged.is_some() {
            return Ok(());
        }
        let staged = self.new_staged(place)?;
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

    /// Uploads the staged copy of `ino` if it is dirty (the state is locked by the caller).
    async fn upload_locked(&self, ino: u64, st: &mut FileState) -> Res<()> {
        if !st.dirty || st.unlinked {
            return Ok(());
        }
        let staged = st.staged.as_ref().expect("dirty implies staged");
        let vpath = self.inodes.path(ino).ok_or(FsError::StaleInode(ino))?;
        let place = self.place(&vpath)?;
        match place.tree.upload(&place.rel, staged.data_path()).await {
            Ok(_) => {
                st.dirty = false;
                self.dirs.invalidate_parent(&vpath);
                Ok(())
            }
            Err(source) => {
                let staged = staged.data_path().display().to_string();
                tracing::error!(path = %vpath, %staged, error = %source, "upload failed; staged data kept");
                Err(FsError::Upload {
                    path: vpath,
                    staged,
                    source,
                })
            }
        }
    }

    /// `opendir`: snapshots the listing so offsets stay stable.
    pub async fn opendir(&self, ino: u64) -> Res<Opened> {
        let vpath = self.vpath(ino)?;
        let children: Vec<(String, bool)> = match self.router.resolve(&vpath) {
            Resolved::Synthetic(names) => names.into_iter().map(|n| (n, true)).collect(),
            Resolved::Tree { tree, rel, .. } => self
                .listing(&vpath, &tree, &rel)
                .await?
                .iter()
                .map(|(n, m)| (n.clone(), m.is_dir))
                .collect(),
            Resolved::Missing => return Err(VfsError::NotFound.into()),
        };
        let mut entries = Vec::with_capacity(children.len() + 2);
        entries.push(DirEntry {
            ino,
            offset: 1,
            is_dir: true,
            name: ".".into(),
        });
        entries.push(DirEntry {
            ino,
            offset: 2,
            is_dir: true,
            name: "..".into(),
        });
        for (name, is_dir) in children {
            let cpath = join_abs(&vpath, &name);
            let cino = self.inodes.peek(&cpath).unwrap_or_else(|| pseudo_ino(&cpath));
            let offset = entries.len() as u64 + 1;
            entries.push(DirEntry {
                ino: cino,
                offset,
                is_dir,
                name,
            });
        }
        let fh = self.handles.insert(Handle::Dir {
            entries: Arc::new(entries),
        });
        Ok(Opened {
            fh,
            keep_cache: false,
            local: None,
        })
    }

    /// `readdir`: entries after `offset` (0 = from the start).
    pub fn readdir(&self, fh: u64, offset: u64) -> Res<Vec<DirEntry>> {
        match self.handles.get(fh) {
            Some(Handle::Dir { entries }) => Ok(entries.iter().skip(offset as usize).cloned().collect()),
            _ => Err(FsError::BadHandle(fh)),
        }
    }

    /// `releasedir`.
    pub fn releasedir(&self, fh: u64) {
        self.handles.remove(fh);
    }

    /// `open`: `write` asks for a writable handle, `truncate` for O_TRUNC.
    pub async fn open(&self, ino: u64, write: bool, truncate: bool) -> Res<Opened> {
        let vpath = self.vpath(ino)?;
        let (meta, _) = self.meta(&vpath).await?;
        if meta.is_dir {
            return Err(VfsError::IsDir.into());
        }
        let place = if write { Some(self.place(&vpath)?) } else { None };
        let state = self.handles.state_or_new(ino);
        let unmodified = {
            let mut st = state.lock().await;
            if let (Some(place), true) = (&place, truncate) {
                if let Some(old) = st.staged.take() {
                    old.discard();
                }
                st.staged = Some(self.new_staged(place)?);
                st.set_dirty()?;
                st.mtime = Some(SystemTime::now());
            }
            st.opens += 1;
            st.staged.is_none()
        };
        let (reader, keep_cache) = self.read_ctx(ino, &vpath, &meta);
        let local = match (write, unmodified, self.router.resolve(&vpath)) {
            (false, true, Resolved::Tree { tree, rel, .. }) => tree.local_path(&rel),
            _ => None,
        };
        let fh = self.handles.insert(Handle::File {
            ino,
            writable: write,
            state,
            reader,
        });
        Ok(Opened {
            fh,
            keep_cache,
            local,
        })
    }

    /// The cached read context of an open, and whether the kernel may keep
    /// its pages (the object is the one it saw at the previous open).
    fn read_ctx(&self, ino: u64, vpath: &str, meta: &Meta) -> (Option<Arc<ReadCtx>>, bool) {
        let Some(reader) = &self.reader else {
            return (None, false);
        };
        let Resolved::Tree { mount, tree, rel } = self.router.resolve(vpath) else {
            return (None, false);
        };
        let ctx = reader.context(&mount, &rel, tree, meta);
        let mut seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        let keep = seen.insert(ino, ctx.obj) == Some(ctx.obj);
        (Some(Arc::new(ctx)), keep)
    }

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
        place.tree.create_file(&place.rel).await?;
        self.dirs.invalidate_parent(&vpath);
        let ino = self.inodes.lookup(&vpath, false);
        // The backend's own time, so the mtime seen now is the one seen after close.
        let created = place.tree.stat(&place.rel).await.ok().and_then(|m| m.mtime);
        self.inodes.update_overlay(ino, |o| {
            *o = inodes::Overlay {
                mode: Some(mode & 0o7777),
                ..Default::default()
            };
        });
        let state = self.handles.state_or_new(ino);
        {
            let mut st = state.lock().await;
            if let Some(old) = st.staged.take() {
                old.discard();
            }
            st.staged = Some(self.new_staged(&place)?);
            st.dirty = false;
            st.unlinked = false;
            st.mtime = created;
            st.opens += 1;
        }
        let fh = self.handles.insert(Handle::File {
            ino,
            writable: true,
            state,
            reader: None,
        });
        let meta = Meta {
            is_dir: false,
            size: 0,
            mtime: created,
            version: None,
        };
        let attr = self.attr_of(ino, meta, true).await;
        Ok((
            self.entry(attr),
            Opened {
                fh,
                keep_cache: false,
                local: None,
            },
        ))
    }

    fn file_handle(&self, fh: u64) -> Res<(u64, bool, SharedState)> {
        match self.handles.get(fh) {
            Some(Handle::File {
                ino, writable, state, ..
            }) => Ok((ino, writable, state)),
            _ => Err(FsError::BadHandle(fh)),
        }
    }

    /// `read`.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> Res<Bytes> {
        let Some(Handle::File {
            ino,
            state,
            reader: ctx,
            ..
        }) = self.handles.get(fh)
        else {
            return Err(FsError::BadHandle(fh));
        };
        let staged = state.lock().await.staged.as_ref().map(|s| s.file());
        if let Some(file) = staged {
            let data = tokio::task::spawn_blocking(move || staging::read_at(&file, offset, size as usize))
                .await
                .map_err(std::io::Error::other)??;
            return Ok(Bytes::from(data));
        }
        if let (Some(reader), Some(ctx)) = (&self.reader, &ctx) {
            if !self.inodes.exists(ino) {
                // Its mount was removed (see `table.rs`): the context's tree is gone.
                return Err(FsError::StaleInode(ino));
            }
            return reader.read(ctx, offset, size as u64).await;
        }
        let vpath = self.vpath(ino)?;
        match self.router.resolve(&vpath) {
            Resolved::Tree { tree, rel, .. } => Ok(tree.read(&rel, offset, size as u64).await?),
            Resolved::Synthetic(_) => Err(VfsError::IsDir.into()),
            Resolved::Missing => Err(VfsError::NotFound.into()),
        }
    }

    /// The shared state behind a handle opened for writing.
    fn writable_state(&self, fh: u64) -> Res<SharedState> {
        match self.file_handle(fh)? {
            (_, true, state) => Ok(state),
            (_, false, _) => Err(FsError::BadHandle(fh)),
        }
    }

    /// The staged copy of the handle's file (made on first use), its state locked by the caller.
    async fn staged_file(&self, fh: u64, st: &mut FileState) -> Res<Arc<std::fs::File>> {
        if st.staged.is_none() {
            let (ino, _, _) = self.file_handle(fh)?;
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
        let buf = data.to_vec();
        tokio::task::spawn_blocking(move || staging::write_at(&file, offset, &buf))
            .await
            .map_err(std::io::Error::other)??;
        st.set_dirty()?;
        st.mtime = Some(SystemTime::now());
        Ok(data.len() as u32)
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
            st.dirty = true;
            st.mtime = Some(SystemTime::now());
        }
        Ok(())
    }

    /// `flush` / `fsync`: uploads pending data of the handle's file.
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
        if uploaded.is_ok() || st.unlinked {
            if let Some(s) = st.staged.take() {
                s.discard();
            }
            drop(st);
            self.handles.drop_state(ino, &state);
        }
        uploaded
    }

    /// Records who created a new file or directory: someone other than the
    /// mounting user (possible with `allow_other`) owns what they create, in
    /// the in-memory overlay like `chown`. Patches `attr` to match.
    pub fn adopt(&self, attr: &mut Attr, uid: u32, gid: u32) {
        if uid == nix::unistd::geteuid().as_raw() {
            return;
        }
        self.inodes.update_overlay(attr.ino, |o| {
            o.uid = Some(uid);
            o.gid = Some(gid);
        });
        attr.uid = uid;
        attr.gid = gid;
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
        place.tree.mkdir(&place.rel).await?;
        self.dirs.invalidate_parent(&vpath);
        let ino = self.inodes.lookup(&vpath, true);
        self.inodes.update_overlay(ino, |o| {
            *o = inodes::Overlay {
                mode: Some(mode & 0o7777),
                ..Default::default()
            };
        });
        let meta = Meta {
            mtime: place.tree.stat(&place.rel).await.ok().and_then(|m| m.mtime),
            ..Meta::dir()
        };
        Ok(self.entry(self.attr_of(ino, meta, true).await))
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
        place.tree.remove_file(&place.rel).await?;
        self.dirs.invalidate_parent(&vpath);
        self.forget_name(&vpath).await;
        Ok(())
    }

    async fn forget_name(&self, vpath: &str) {
        if let Some(ino) = self.inodes.peek(vpath) {
            if let Some(st) = self.handles.state(ino) {
                let mut st = st.lock().await;
                st.unlinked = true;
                st.dirty = false;
            }
        }
        self.inodes.unlink(vpath);
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
        if let Some(victim) = self.inodes.peek(&to) {
            if let Some(vs) = self.handles.state(victim) {
                if !state.as_ref().is_some_and(|s| Arc::ptr_eq(s, &vs)) {
                    let mut vs = vs.lock().await;
                    vs.unlinked = true;
                    vs.dirty = false;
                }
            }
        }
        self.inodes.rename(&from, &to);
        if let Some(st) = guard.as_deref_mut() {
            if let Some(s) = &st.staged {
                let target = Target {
                    mount: dst.mount.clone(),
                    path: dst.rel.clone(),
                };
                if let Err(e) = s.set_target(&target) {
                    tracing::warn!(error = %e, "could not update staging sidecar after rename");
                }
            }
        }
        if let Some(ino) = src_ino {
            self.inodes
                .update_overlay(ino, |o| o.ctime = Some(SystemTime::now()));
        }
        Ok(())
    }

    /// `statfs`: backends have no fixed size; report a large free space
    /// (1 PiB, as rclone does) so tools do not refuse to copy.
    pub fn statfs(&self) -> StatFs {
        const BSIZE: u32 = 4096;
        let blocks = (1u64 << 50) / BSIZE as u64;
        StatFs {
            blocks,
            bfree: blocks,
            bavail: blocks,
            files: 1 << 30,
            ffree: 1 << 30,
            bsize: BSIZE,
            namelen: NAME_MAX as u32,
            frsize: BSIZE,
        }
    }

    /// `access`: existence, and EROFS for write access to read-only places.
    pub async fn access(&self, ino: u64, want_write: bool) -> Res<()> {
        let vpath = match self.inodes.path(ino) {
            Some(p) => p,
            None if self.handles.state(ino).is_some() => return Ok(()),
            None => return Err(FsError::StaleInode(ino)),
        };
        let (_, writable) = self.meta(&vpath).await?;
        if want_write && !writable {
            return Err(VfsError::ReadOnly.into());
        }
        Ok(())
    }

    /// Uploads every file with pending data; returns the failures.
    pub async fn flush_all(&self) -> Vec<FsError> {
        let mut errors = Vec::new();
        for (ino, state) in self.handles.all_states() {
            let mut st = state.lock().await;
            if let Err(e) = self.upload_locked(ino, &mut st).await {
                errors.push(e);
            }
        }
        errors
    }

    /// Numbers for status: open handles, live inodes, files waiting to upload.
    pub async fn counters(&self) -> (usize, usize, usize) {
        let mut dirty = 0;
        for (_, s) in self.handles.all_states() {
            if s.lock().await.dirty {
                dirty += 1;
            }
        }
        (self.handles.open_count(), self.inodes.count(), dirty)
    }
}

/// An inode number for a listed entry the kernel has not looked up yet (only
/// shown in `d_ino`; the top bit keeps it apart from table numbers).
fn pseudo_ino(path: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    h.finish() | (1 << 63)
}
