//! The filesystem core: every FUSE operation as an async method on [`Fs`],
//! free of fuser types so it is tested without a kernel.
//!
//! The core owns the inode table, the handle table and staging. It resolves
//! inodes to virtual paths, virtual paths to trees through the [`Router`],
//! and answers with small structs named after the FUSE replies ([`Entry`],
//! [`Attr`], [`Opened`], [`DirEntry`], [`StatFs`]). Errors are [`FsError`],
//! mapped to errno in one table (`errno.rs`).
//!
//! Write path (`write.rs`): the first write (or truncate) of a file copies
//! it into a staging file (on an `fs` mount with direct writes, the backing
//! file itself is written instead); writes go there, and on S3 files written
//! in order from offset 0 also stream up as multipart parts; flush/fsync/
//! release upload (or complete) it, except a flush by another process than
//! the opener (a forked child closing its copy: [`Fs::flush_from`]). A
//! failed upload is an error to close/fsync and the staged data stays on
//! disk, sealed, to be retried by the next close, a drain, or crash
//! recovery (`recover.rs`).

mod attr;
mod caller;
mod dir;
mod dircache;
mod dirplus;
mod drain;
mod errno;
mod handles;
mod inodes;
pub mod invalidate;
mod namespace;
pub mod observe;
mod posix;
mod reader;
mod recover;
pub mod staging;
mod table;
mod write;
pub mod xattr;

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
    /// The local file that always holds these bytes, open, which the kernel
    /// may read and write directly (FUSE passthrough): every open of a file
    /// on an `fs` mount that is read-only or takes direct writes (see
    /// [`Tree::passthrough_open`]); None elsewhere.
    pub backing: Option<Arc<std::fs::File>>,
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
    /// Told about stores, renames and removals (the bucket index).
    observer: std::sync::OnceLock<Arc<dyn observe::Observer>>,
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
            observer: Default::default(),
        }
    }

    /// Tells `observer` about stores, renames and removals from now on (once).
    pub fn set_observer(&self, observer: Arc<dyn observe::Observer>) {
        if self.observer.set(observer).is_err() {
            tracing::warn!("an observer was set already; the new one is ignored");
        }
    }

    /// The observer, if one was set.
    pub(crate) fn observer(&self) -> Option<&Arc<dyn observe::Observer>> {
        self.observer.get()
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
            Resolved::Tree { tree, rel, mount } => {
                let writable = !tree.read_only();
                let (false, Some(parent)) = (rel.is_empty(), parent_of(vpath)) else {
                    return Ok((tree.stat(&rel).await?, writable));
                };
                let name = vpath.rsplit('/').next().unwrap_or(vpath);
                // A listing without full metadata still tells what is absent.
                let parent_rel = rel.rsplit_once('/').map_or("", |(p, _)| p);
                match self.dirs.child(parent, name) {
                    Some(Some(meta)) if tree.lists_full_meta() => return Ok((meta, writable)),
                    Some(None) if tree.lists_every_name(parent_rel) => return Err(VfsError::NotFound.into()),
                    _ => {}
                }
                let meta = if tree.remember_stats() {
                    self.stat_remembered(&mount, &tree, &rel, parent, name).await?
                } else {
                    tree.stat(&rel).await?
                };
                Ok((meta, writable))
            }
            Resolved::Missing => Err(VfsError::NotFound.into()),
        }
    }

    /// The stat of `rel` (`name` in the directory `parent`) in a tree whose
    /// stats are remembered (see [`Tree::remember_stats`]): the remembered
    /// one while fresh, else made now and remembered. A file small enough
    /// (by its size in a fresh listing, where there is one) comes whole
    /// with it, into the block cache.
    async fn stat_remembered(
        &self,
        mount: &str,
        tree: &Arc<dyn Tree>,
        rel: &str,
        parent: &str,
        name: &str,
    ) -> Result<Meta, VfsError> {
        if let Some(meta) = self.dirs.stat(parent, name) {
            return Ok(meta);
        }
        let listed = self.dirs.child(parent, name).flatten().map(|m| m.size);
        let generation = self.dirs.generation();
        let peek = match &self.reader {
            Some(reader) if listed.is_none_or(|size| size > 0 && size <= reader.peek_max()) => {
                reader.peek_max()
            }
            _ => 0,
        };
        let (meta, data) = tree.stat_peek(rel, peek).await?;
        if let (Some(reader), Some(data)) = (&self.reader, data) {
            reader.keep_whole(mount, rel, &**tree, &meta, data);
        }
        self.dirs.put_stat(parent, name, meta.clone(), generation);
        Ok(meta)
    }

    /// The listing of a directory in a tree, from the listing cache when fresh.
    async fn listing(&self, vpath: &str, tree: &Arc<dyn Tree>, rel: &str) -> Res<Listing> {
        if let Some(l) = self.dirs.get(vpath) {
            return Ok(l);
        }
        let generation = self.dirs.generation();
        let meta = tree.stat(rel).await?;
        if !meta.is_dir {
            return Err(VfsError::NotDir.into());
        }
        let l: Listing = Arc::new(tree.list(rel).await?);
        self.dirs.put(vpath, l.clone(), generation);
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
            if let Some(s) = st.staged.as_ref().filter(|s| s.is_in_place()) {
                // The backing file itself, written by us or by the kernel
                // (passthrough): its size and times are the truth, fresher
                // than a cached listing.
                if let Ok(m) = s.file().metadata() {
                    use std::os::unix::fs::MetadataExt;
                    meta.size = m.len();
                    meta.mtime = m.modified().ok().or(meta.mtime);
                    meta.ctime = u32::try_from(m.ctime_nsec())
                        .ok()
                        .and_then(|ns| {
                            let secs = u64::try_from(m.ctime()).ok()?;
                            Some(SystemTime::UNIX_EPOCH + Duration::new(secs, ns))
                        })
                        .or(meta.ctime);
                }
            } else if let Some(s) = &st.staged {
                if let Ok(len) = s.len() {
                    meta.size = len;
                }
                meta.mtime = st.mtime.or(meta.mtime);
                // A change of the contents is a change of the inode too.
                if let (Some(m), Some(c)) = (st.mtime, meta.ctime) {
                    meta.ctime = Some(c.max(m));
                }
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

    /// `forget`: the kernel dropped `n` references. An inode with a file
    /// state (open, or staged data not yet uploaded) stays, unnamed by the
    /// kernel but still reachable by its path for renames, drains and a
    /// later lookup; the state's last `settle` lets it go.
    pub fn forget(&self, ino: u64, n: u64) {
        self.inodes
            .forget_unless(ino, n, |i| self.handles.state(i).is_some());
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
            size,
            ..Meta::default()
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
        let changes_meta = set.mode.is_some()
            || set.uid.is_some()
            || set.gid.is_some()
            || set.atime.is_some()
            || set.mtime.is_some();
        if place.tree.stores_posix() {
            // Stored where the tree keeps them, so they outlive the inode and the mount.
            if changes_meta {
                let stored = crate::vfs::SetMeta {
                    mode: set.mode.map(|m| m & 0o7777),
                    uid: set.uid,
                    gid: set.gid,
                    atime: set.atime,
                    mtime: set.mtime,
                };
                let res = place.tree.set_meta(&place.rel, &stored).await;
                self.dirs.invalidate_parent(&vpath);
                res?;
                if let Some(st) = self.handles.state(ino) {
                    let mut st = st.lock().await;
                    if st.staged.is_some() {
                        if let Some(t) = set.mtime {
                            // An open file shows its staged time: make it the one set.
                            st.mtime = Some(t);
                        }
                        st.keep_attrs(&stored);
                    }
                }
            }
            return self.getattr(ino).await;
        }
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

    /// `open`: `write` asks for a writable handle, `truncate` for O_TRUNC.
    pub async fn open(&self, ino: u64, write: bool, truncate: bool) -> Res<Opened> {
        let vpath = self.vpath(ino)?;
        let place = if write { Some(self.place(&vpath)?) } else { None };
        let resolved = self.router.resolve(&vpath);
        let (state, meta, backing) = {
            let (state, mut st) = self.handles.lock_current(ino).await;
            // Stat under the lock, so the upload of a release that ran just
            // before is seen (its new size and version), not the object before
            // it. A file the kernel may read itself is opened instead: its
            // fstat is the stat, and the open file is what the kernel gets.
            let passthrough = match &resolved {
                Resolved::Tree { tree, rel, .. } => tree.passthrough_open(rel, write),
                _ => None,
            };
            let (found, backing) = match passthrough {
                Some(Ok((file, meta))) if meta.mode.is_some_and(|m| m & libc::S_IFMT == libc::S_IFREG) => {
                    (Ok((meta, true)), Some(Arc::new(file)))
                }
                Some(Ok((_, meta))) if meta.is_dir => (Ok((meta, true)), None),
                Some(Err(e)) => (Err(e.into()), None),
                _ => (self.meta(&vpath).await, None),
            };
            let meta = match found {
                Ok((meta, _)) if !meta.is_dir => meta,
                res => {
                    if st.opens == 0 && st.staged.is_none() {
                        self.handles.drop_state(ino, &state);
                        self.reap(ino);
                    }
                    return Err(match res {
                        Ok(_) => VfsError::IsDir.into(),
                        Err(e) => e,
                    });
                }
            };
            if let (Some(place), true) = (&place, truncate) {
                if let Some(old) = st.staged.take() {
                    old.discard();
                }
                st.staged = Some(self.new_staged(place, staging::Base::of(&meta))?);
                st.set_dirty()?;
                st.mtime = Some(SystemTime::now());
                self.start_stream(&mut st, place).await;
            }
            if let Some(place) = place
                .as_ref()
                .filter(|p| p.tree.direct_write_path(&p.rel).is_some())
            {
                // The kernel may write the backing file itself (passthrough):
                // hold it open, so sizes and times come from it, and have the
                // closes report the file as written.
                if let Err(e) = self.materialize(&mut st, place).await {
                    if st.opens == 0 && st.staged.is_none() {
                        self.handles.drop_state(ino, &state);
                        self.reap(ino);
                    }
                    return Err(e);
                }
                st.kernel_writes = true;
            }
            st.opens += 1;
            (state, meta, backing)
        };
        let (reader, keep_cache) = match resolved {
            Resolved::Tree { mount, tree, rel } => self.read_ctx(ino, &mount, &rel, tree, &meta),
            _ => (None, false),
        };
        let fh = self.handles.insert(Handle::File {
            ino,
            writable: write,
            state,
            reader,
            opener: None,
        });
        Ok(Opened {
            fh,
            keep_cache,
            backing,
        })
    }

    /// The cached read context of an open, and whether the kernel may keep
    /// its pages (the object is the one it saw at the previous open).
    fn read_ctx(
        &self,
        ino: u64,
        mount: &str,
        rel: &str,
        tree: Arc<dyn Tree>,
        meta: &Meta,
    ) -> (Option<Arc<ReadCtx>>, bool) {
        let Some(reader) = &self.reader else {
            return (None, false);
        };
        let ctx = reader.context(mount, rel, tree, meta);
        let mut seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        let keep = seen.insert(ino, ctx.obj) == Some(ctx.obj);
        (Some(Arc::new(ctx)), keep)
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
            // On the calling FUSE thread, as `write` does.
            return Ok(Bytes::from(staging::read_at(&file, offset, size as usize)?));
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

    /// Records who created a new entry: someone other than the mounting
    /// user (possible with `allow_other`) owns what they create. A tree that
    /// stores owners gets a `chown` (when the daemon runs as root; the group
    /// stays the parent's under a set-group-ID directory, as the host does);
    /// others keep it in the in-memory overlay. Patches `attr` to match.
    pub async fn adopt(&self, attr: &mut Attr, uid: u32, gid: u32) {
        let me = nix::unistd::geteuid().as_raw();
        if uid == me && gid == nix::unistd::getegid().as_raw() {
            return;
        }
        let Some(vpath) = self.inodes.path(attr.ino) else {
            return;
        };
        if let Resolved::Tree { tree, rel, .. } = self.router.resolve(&vpath) {
            if tree.stores_posix() {
                if me != 0 {
                    return;
                }
                let parent = rel.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                // Under a set-group-ID directory the group is the directory's.
                let group = match tree.stat(parent).await {
                    Ok(m) if m.mode.unwrap_or(0) & libc::S_ISGID != 0 => m.gid,
                    _ => Some(gid),
                };
                let set = crate::vfs::SetMeta {
                    uid: (uid != me).then_some(uid),
                    gid: group,
                    // chown clears set-ID bits; the mode asked for puts them back.
                    mode: (attr.kind != Kind::Symlink).then_some(attr.perm as u32),
                    ..Default::default()
                };
                match tree.set_meta(&rel, &set).await {
                    Ok(()) => {
                        self.dirs.invalidate_parent(&vpath);
                        if let Some(st) = self.handles.state(attr.ino) {
                            st.lock().await.keep_attrs(&set);
                        }
                        if let Some(u) = set.uid {
                            attr.uid = u;
                        }
                        if let Some(g) = set.gid {
                            attr.gid = g;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(path = %vpath, error = %e, "cannot give a new entry to its creator")
                    }
                }
                return;
            }
        }
        self.inodes.update_overlay(attr.ino, |o| {
            o.uid = Some(uid);
            o.gid = Some(gid);
        });
        attr.uid = uid;
        attr.gid = gid;
    }

    /// `statfs` of the place holding `ino`: the backing filesystem's figures
    /// where the tree knows them (a local directory); otherwise backends have
    /// no fixed size, so a large free space (1 PiB, as rclone does) is
    /// reported, so tools do not refuse to copy.
    pub fn statfs(&self, ino: u64) -> StatFs {
        let space = self.inodes.path(ino).and_then(|p| match self.router.resolve(&p) {
            Resolved::Tree { tree, .. } => tree.space(),
            _ => None,
        });
        if let Some(s) = space {
            return StatFs {
                blocks: s.blocks,
                bfree: s.bfree,
                bavail: s.bavail,
                files: s.files,
                ffree: s.ffree,
                bsize: s.bsize,
                namelen: s.namelen.min(NAME_MAX as u32),
                frsize: s.frsize,
            };
        }
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

    /// Numbers for status: open handles, live inodes, files waiting to upload.
    /// A file busy past the report's wait counts as waiting (see `drain.rs`).
    pub async fn counters(&self) -> (usize, usize, usize) {
        let dirty = self.pending_files().await.len();
        (self.handles.open_count(), self.inodes.count(), dirty)
    }
}
