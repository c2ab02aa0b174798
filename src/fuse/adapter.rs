//! `impl fuser::Filesystem`: converts each request's arguments, runs the
//! core's async method on tokio, and converts the answer back.

use super::passthrough::Backings;
use crate::fs::{Attr, Fs, FsError, Kind, SetAttr};
use crate::metrics::Metrics;
use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

/// Largest read/write request asked of the kernel: 1 MiB, the kernel's own
/// ceiling (256 pages) and our block size.
const MAX_IO: u32 = 1 << 20;

/// The fuser side of the mount.
pub struct Adapter {
    fs: Arc<Fs>,
    backings: Arc<Backings>,
    /// Ask the kernel for passthrough at init (the default; off with `-o nopassthrough`).
    want_passthrough: bool,
    rt: tokio::runtime::Handle,
    read_only: bool,
    metrics: Arc<Metrics>,
}

impl Adapter {
    pub fn new(
        fs: Arc<Fs>,
        rt: tokio::runtime::Handle,
        read_only: bool,
        metrics: Arc<Metrics>,
        want_passthrough: bool,
    ) -> Self {
        Self {
            fs,
            backings: Arc::default(),
            want_passthrough,
            rt,
            read_only,
            metrics,
        }
    }

    /// The async seam: runs the core's future to completion on this FUSE
    /// worker thread, with I/O driven by the tokio runtime, timing it as the
    /// operation `op` (see [`crate::metrics::OPS`]). In-flight work is
    /// bounded by the number of worker threads. Measured against spawning a
    /// task per request and replying from it: one thread hand-off less per
    /// request halved `ls -lR` and small-file read times on a loaded 2-core
    /// machine. A panic is caught here; the dropped reply answers EIO (and the
    /// operation is still counted).
    fn spawn<F, Fut>(&self, op: &'static str, work: F)
    where
        F: FnOnce(Arc<Fs>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let fs = self.fs.clone();
        let _timer = self.metrics.start(op);
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.rt.block_on(work(fs))));
        if ran.is_err() {
            tracing::error!(op, "a filesystem operation panicked; answered EIO");
        }
    }
}

fn errno(e: &FsError, op: &str) -> Errno {
    if e.is_routine() {
        tracing::debug!(op, error = %e);
    } else {
        tracing::warn!(op, error = %e);
    }
    Errno::from_i32(e.errno())
}

/// Answers an operation whose success carries no data.
fn reply_empty(reply: ReplyEmpty, res: Result<(), FsError>, op: &str) {
    match res {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(&e, op)),
    }
}

fn to_file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.mtime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        flags: 0,
        blksize: a.blksize,
    }
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::Socket => FileType::Socket,
        Kind::CharDevice => FileType::CharDevice,
        Kind::BlockDevice => FileType::BlockDevice,
    }
}

/// Attributes sent with a negative entry; the kernel reads only the inode (0).
fn negative_attr() -> FileAttr {
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: SystemTime::UNIX_EPOCH,
        mtime: SystemTime::UNIX_EPOCH,
        ctime: SystemTime::UNIX_EPOCH,
        crtime: SystemTime::UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        flags: 0,
        blksize: 0,
    }
}

fn time(t: Option<TimeOrNow>) -> Option<SystemTime> {
    t.map(|t| match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    })
}

fn name_str(name: &OsStr) -> Result<String, Errno> {
    name.to_str().map(str::to_string).ok_or(Errno::EINVAL)
}

macro_rules! name_or_reply {
    ($name:expr, $reply:expr) => {
        match name_str($name) {
            Ok(n) => n,
            Err(e) => return $reply.error(e),
        }
    };
}

impl Filesystem for Adapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(MAX_IO);
        let _ = config.set_max_readahead(MAX_IO);
        // O_TRUNC arrives with the open instead of as a separate truncate
        // first: one round trip less, and the open knows the file starts
        // empty (a streamed upload can begin at once).
        let _ = config.add_capabilities(InitFlags::FUSE_ATOMIC_O_TRUNC);
        if !self.fs.ttl().is_zero() {
            // Listings carry attributes, saving a LOOKUP per listed name
            // (AUTO: the kernel asks for them when it expects to use them,
            // e.g. at the start of a listing or while names are being
            // stat'ed). Useless when the kernel may cache nothing.
            let _ =
                config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO);
        }
        if self.want_passthrough {
            if config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok() {
                // Depth 1: our backing files sit on ordinary filesystems.
                let _ = config.set_max_stack_depth(1);
                self.backings.set_enabled(true);
            } else {
                tracing::info!("the kernel offers no FUSE passthrough (Linux >= 6.9); serving reads and writes ourselves");
            }
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = name_or_reply!(name, reply);
        self.spawn("lookup", move |fs| async move {
            match fs.lookup(parent.0, &name).await {
                Ok(e) => reply.entry(&e.ttl, &to_file_attr(&e.attr), Generation(0)),
                Err(e) => match (e.errno() == libc::ENOENT, fs.negative_ttl(parent.0)) {
                    // A negative entry (inode 0): the kernel keeps the miss for
                    // the TTL instead of asking the backend again on every stat.
                    (true, Some(ttl)) => reply.entry(&ttl, &negative_attr(), Generation(0)),
                    _ => reply.error(errno(&e, "lookup")),
                },
            }
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.spawn("getattr", move |fs| async move {
            match fs.getattr(ino.0).await {
                Ok(a) => reply.attr(&fs_ttl(&fs), &to_file_attr(&a)),
                Err(e) => reply.error(errno(&e, "getattr")),
            }
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: time(atime),
            mtime: time(mtime),
            fh: fh.map(|f| f.0),
        };
        self.spawn("setattr", move |fs| async move {
            match fs.setattr(ino.0, set).await {
                Ok(a) => reply.attr(&fs_ttl(&fs), &to_file_attr(&a)),
                Err(e) => reply.error(errno(&e, "setattr")),
            }
        });
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let name = name_or_reply!(name, reply);
        let (uid, gid) = (req.uid(), req.gid());
        let regular = mode & libc::S_IFMT == libc::S_IFREG;
        self.spawn("mknod", move |fs| async move {
            let made = if regular {
                match fs.create(parent.0, &name, mode & !umask, true).await {
                    Ok((e, opened)) => {
                        let _ = fs.release(opened.fh).await;
                        Ok(e)
                    }
                    Err(e) => Err(e),
                }
            } else {
                // FIFOs, sockets, device nodes: where the tree stores them.
                fs.mknod_special(parent.0, &name, mode & !umask, rdev as u64)
                    .await
            };
            match made {
                Ok(mut e) => {
                    fs.adopt(&mut e.attr, uid, gid).await;
                    reply.entry(&e.ttl, &to_file_attr(&e.attr), Generation(0))
                }
                Err(e) => reply.error(errno(&e, "mknod")),
            }
        });
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        let name = name_or_reply!(link_name, reply);
        let target = name_or_reply!(target.as_os_str(), reply);
        let (uid, gid) = (req.uid(), req.gid());
        self.spawn("symlink", move |fs| async move {
            match fs.symlink(parent.0, &name, &target).await {
                Ok(mut e) => {
                    fs.adopt(&mut e.attr, uid, gid).await;
                    reply.entry(&e.ttl, &to_file_attr(&e.attr), Generation(0))
                }
                Err(e) => reply.error(errno(&e, "symlink")),
            }
        });
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.spawn("readlink", move |fs| async move {
            match fs.readlink(ino.0).await {
                Ok(t) => reply.data(&t),
                Err(e) => reply.error(errno(&e, "readlink")),
            }
        });
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let newname = name_or_reply!(newname, reply);
        self.spawn("link", move |fs| async move {
            match fs.link(ino.0, newparent.0, &newname).await {
                Ok(e) => reply.entry(&e.ttl, &to_file_attr(&e.attr), Generation(0)),
                Err(e) => reply.error(errno(&e, "link")),
            }
        });
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let name = name_or_reply!(name, reply);
        let (uid, gid) = (req.uid(), req.gid());
        self.spawn("mkdir", move |fs| async move {
            match fs.mkdir(parent.0, &name, mode & !umask).await {
                Ok(mut e) => {
                    fs.adopt(&mut e.attr, uid, gid).await;
                    reply.entry(&e.ttl, &to_file_attr(&e.attr), Generation(0))
                }
                Err(e) => reply.error(errno(&e, "mkdir")),
            }
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name_or_reply!(name, reply);
        self.spawn("unlink", move |fs| async move {
            reply_empty(reply, fs.unlink(parent.0, &name).await, "unlink")
        });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name_or_reply!(name, reply);
        self.spawn("rmdir", move |fs| async move {
            reply_empty(reply, fs.rmdir(parent.0, &name).await, "rmdir")
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            return reply.error(Errno::EINVAL);
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        let name = name_or_reply!(name, reply);
        let newname = name_or_reply!(newname, reply);
        self.spawn("rename", move |fs| async move {
            reply_empty(
                reply,
                fs.rename(parent.0, &name, newparent.0, &newname, noreplace).await,
                "rename",
            )
        });
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let acc = flags.0 & libc::O_ACCMODE;
        let write = acc == libc::O_WRONLY || acc == libc::O_RDWR;
        if write && self.read_only {
            return reply.error(Errno::EROFS);
        }
        let truncate = flags.0 & libc::O_TRUNC != 0;
        let backings = self.backings.clone();
        let tid = req.pid();
        self.spawn("open", move |fs| async move {
            match fs.open(ino.0, write, truncate).await {
                Ok(o) => {
                    if write {
                        fs.opened_by(o.fh, tid);
                    }
                    let id = backings.open(ino.0, o.fh, o.backing.as_deref(), |f| reply.open_backing(f));
                    match id {
                        Some(id) => reply.opened_passthrough(FileHandle(o.fh), fopen(false, write), &id),
                        None => reply.opened(FileHandle(o.fh), fopen(o.keep_cache, write)),
                    }
                }
                Err(e) => reply.error(errno(&e, "open")),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.spawn("read", move |fs| async move {
            match fs.read(fh.0, offset, size).await {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(errno(&e, "read")),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = data.to_vec();
        self.spawn("write", move |fs| async move {
            match fs.write(fh.0, offset, &data).await {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(errno(&e, "write")),
            }
        });
    }

    fn flush(&self, req: &Request, _ino: INodeNo, fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        let tid = req.pid();
        self.spawn("flush", move |fs| async move {
            reply_empty(reply, fs.flush_from(fh.0, tid).await, "flush")
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.backings.release(fh.0);
        self.spawn("release", move |fs| async move {
            reply_empty(reply, fs.release(fh.0).await, "release")
        });
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.spawn("fsync", move |fs| async move {
            reply_empty(reply, fs.fsync(fh.0).await, "fsync")
        });
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.spawn("fallocate", move |fs| async move {
            reply_empty(reply, fs.fallocate(fh.0, offset, length, mode).await, "fallocate")
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.spawn("opendir", move |fs| async move {
            match fs.opendir(ino.0).await {
                Ok(o) => reply.opened(FileHandle(o.fh), FopenFlags::empty()),
                Err(e) => reply.error(errno(&e, "opendir")),
            }
        });
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        match self.fs.readdir(fh.0, offset) {
            Ok(entries) => {
                for e in entries {
                    if reply.add(INodeNo(e.ino), e.offset, file_type(e.kind), &e.name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno(&e, "readdir")),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        self.spawn("readdirplus", move |fs| async move {
            // `add` answers true when the buffer is full; the core then takes
            // back the lookup it counted for the entry left out.
            let res = fs
                .readdirplus(ino.0, fh.0, offset, |e, entry| {
                    reply.add(
                        INodeNo(entry.attr.ino),
                        e.offset,
                        &e.name,
                        &entry.ttl,
                        &to_file_attr(&entry.attr),
                        Generation(0),
                    )
                })
                .await;
            match res {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e, "readdirplus")),
            }
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        // Anything but user.ipfs.* is absent, answered here without a trip
        // into the core: the kernel asks security.capability before every
        // write to a file.
        let Some(name) = name.to_str().filter(|n| crate::fs::xattr::is_ours(n)) else {
            let _timer = self.metrics.start("getxattr");
            reply.error(Errno::ENODATA);
            return;
        };
        let name = name.to_string();
        self.spawn("getxattr", move |fs| async move {
            match fs.getxattr(ino.0, &name).await {
                Ok(Some(v)) => reply_xattr(reply, &v, size),
                Ok(None) => reply.error(Errno::ENODATA),
                Err(e) => reply.error(errno(&e, "getxattr")),
            }
        });
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.spawn("listxattr", move |fs| async move {
            match fs.listxattr(ino.0).await {
                Ok(v) => reply_xattr(reply, &v, size),
                Err(e) => reply.error(errno(&e, "listxattr")),
            }
        });
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let s = self.fs.statfs(ino.0);
        reply.statfs(
            s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let want_write = mask.contains(AccessFlags::W_OK);
        self.spawn("access", move |fs| async move {
            reply_empty(reply, fs.access(ino.0, want_write).await, "access")
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let name = name_or_reply!(name, reply);
        let exclusive = flags & libc::O_EXCL != 0;
        let (uid, gid, tid) = (req.uid(), req.gid(), req.pid());
        let backings = self.backings.clone();
        self.spawn("create", move |fs| async move {
            match fs.create(parent.0, &name, mode & !umask, exclusive).await {
                Ok((mut e, o)) => {
                    fs.opened_by(o.fh, tid);
                    fs.adopt(&mut e.attr, uid, gid).await;
                    let id = backings.open(e.attr.ino, o.fh, o.backing.as_deref(), |f| reply.open_backing(f));
                    let (ttl, attr, fh) = (&e.ttl, &to_file_attr(&e.attr), FileHandle(o.fh));
                    match id {
                        Some(id) => {
                            reply.created_passthrough(ttl, attr, Generation(0), fh, FopenFlags::empty(), &id)
                        }
                        None => reply.created(ttl, attr, Generation(0), fh, fopen(o.keep_cache, true)),
                    }
                }
                Err(e) => reply.error(errno(&e, "create")),
            }
        });
    }
}

/// Answers getxattr/listxattr: the size when asked for it (`size` 0), the
/// bytes when they fit, else ERANGE.
fn reply_xattr(reply: ReplyXattr, value: &[u8], size: u32) {
    if size == 0 {
        reply.size(value.len() as u32);
    } else if value.len() <= size as usize {
        reply.data(value);
    } else {
        reply.error(Errno::ERANGE);
    }
}

/// The open reply's flags: keep the kernel's pages of the file, and no
/// FLUSH at each close of a handle opened read-only. A flush uploads what
/// a writer left staged; a read-only handle leaves nothing (its writers'
/// own closes and the last release upload), so skipping it spares every
/// `cat` a round trip. Kernels older than 5.15 ignore the flag and flush.
fn fopen(keep_cache: bool, write: bool) -> FopenFlags {
    let mut flags = FopenFlags::empty();
    if keep_cache {
        flags |= FopenFlags::FOPEN_KEEP_CACHE;
    }
    if !write {
        flags |= FopenFlags::FOPEN_NOFLUSH;
    }
    flags
}

fn fs_ttl(fs: &Fs) -> std::time::Duration {
    fs.ttl()
}
