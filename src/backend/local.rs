//! The `fs` scheme, where the backend is a local directory: every operation
//! here, none through opendal.
//!
//! A local backend behaves like a local filesystem, as bindfs does: close
//! hands data to the kernel and `fsync` makes it durable; directories rename
//! with one `rename(2)`; modes, owners, times, symlinks, hard links, FIFOs
//! and sockets are stored in the directory itself, so they survive a
//! remount.
//!
//! Confinement: every path is resolved from an open descriptor of the root
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` for its directory
//! part, and the last name is used with the `*at` calls that do not follow
//! it (`AT_SYMLINK_NOFOLLOW`, `O_NOFOLLOW`). The kernel never asks for a
//! name under a symlink (it follows symlinks itself, as the user), so a
//! symlink met on the way means the tree changed behind our back: the call
//! fails with ELOOP and the daemon never reads or changes anything outside
//! the root through it.
//!
//! Calls run on the calling thread (the core's file operations run on FUSE
//! worker threads, and a hand-off to a blocking pool costs more than a
//! microsecond syscall); listings and copies run in a blocking task. The
//! timeout layer does not cover them, as no timeout covers a local
//! filesystem's own calls.

use super::{BackendError, BackendErrorKind, Meta, SetMeta, SpaceInfo};
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mknodat, FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Longest path handed to one `openat2` (below the host's PATH_MAX of 4096
/// with its NUL, with room to spare).
const PIECE: usize = 3072;

/// Mode of files the daemon creates before the caller's mode is applied:
/// owner-only, so nobody can open a new file in the moment before that.
const NEW_FILE_MODE: u32 = 0o600;

/// A local directory used as a backend.
#[derive(Debug, Clone)]
pub struct LocalRoot {
    path: PathBuf,
    fd: Arc<OwnedFd>,
}

/// The directory a name lives in: the root itself or one opened beneath it.
enum Dir<'a> {
    Root(BorrowedFd<'a>),
    Sub(OwnedFd),
}

impl AsFd for Dir<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Dir::Root(fd) => *fd,
            Dir::Sub(fd) => fd.as_fd(),
        }
    }
}

type Io<T> = Result<T, BackendError>;

impl LocalRoot {
    /// Opens the root directory `path` (symlinks in `path` itself are followed once, here).
    pub fn open(path: &Path) -> std::io::Result<LocalRoot> {
        let fd = File::open(path)?;
        if !fd.metadata()?.is_dir() {
            return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(LocalRoot {
            path: path.to_path_buf(),
            fd: Arc::new(fd.into()),
        })
    }

    /// Where `path` lives on this machine, checked to be beneath the root
    /// with no symlink on the way and not itself a symlink (for the callers
    /// that open it by name: direct writes, passthrough).
    pub fn checked_path(&self, path: &str) -> Option<PathBuf> {
        let (dir, name) = self.parent(path).ok()?;
        if !name.is_empty() {
            match fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if kind(&st) == SFlag::S_IFLNK => return None,
                Ok(_) | Err(Errno::ENOENT) => {}
                Err(_) => return None,
            }
        }
        Some(self.path.join(path))
    }

    /// The directory holding `path` (opened beneath the root, refusing
    /// symlinks) and the last name (`""` for the root itself).
    fn parent<'a, 'p>(&'a self, path: &'p str) -> Result<(Dir<'a>, &'p str), Errno> {
        match path.rsplit_once('/') {
            None => Ok((Dir::Root(self.fd.as_fd()), path)),
            Some((dir, name)) => Ok((Dir::Sub(self.open_dir(dir, OFlag::O_PATH)?), name)),
        }
    }

    /// Opens the directory `dir` beneath the root. A path longer than one
    /// syscall takes (the host's PATH_MAX) is opened a piece at a time, each
    /// piece beneath the directory opened before it: inside the mount a
    /// path may be as long as PATH_MAX, and the root adds nothing to it.
    fn open_dir(&self, dir: &str, flags: OFlag) -> Result<OwnedFd, Errno> {
        let beneath = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS;
        let mut rest = if dir.is_empty() { "." } else { dir };
        let mut base: Option<OwnedFd> = None;
        while rest.len() > PIECE {
            let cut = rest[..PIECE].rfind('/').ok_or(Errno::ENAMETOOLONG)?;
            let how = OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(beneath);
            let at = base.as_ref().map(|f| f.as_fd()).unwrap_or(self.fd.as_fd());
            base = Some(openat2(at, &rest[..cut], how)?);
            rest = &rest[cut + 1..];
        }
        let how = OpenHow::new()
            .flags(flags | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(beneath);
        let at = base.as_ref().map(|f| f.as_fd()).unwrap_or(self.fd.as_fd());
        openat2(at, rest, how)
    }

    /// Opens the file `path` (never through a symlink).
    fn open_file(&self, path: &str, flags: OFlag, mode: u32) -> Result<File, Errno> {
        let (dir, name) = self.parent(path)?;
        let fd = openat(
            &dir,
            name,
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )?;
        Ok(File::from(fd))
    }

    /// Metadata of `path` itself (a symlink is reported as one).
    pub fn stat(&self, path: &str) -> Io<Meta> {
        if path.is_empty() {
            return nix::sys::stat::fstat(&*self.fd)
                .map(|st| meta_of(&st))
                .map_err(|e| err(path, e));
        }
        let (dir, name) = self.parent(path).map_err(|e| err(path, e))?;
        let st = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| err(path, e))?;
        Ok(meta_of(&st))
    }

    /// Up to `len` bytes at `offset`.
    pub fn read(&self, path: &str, offset: u64, len: u64) -> Io<Vec<u8>> {
        let f = self
            .open_file(path, OFlag::O_RDONLY, 0)
            .map_err(|e| err(path, e))?;
        let mut buf = vec![0u8; len as usize];
        let mut done = 0usize;
        while done < buf.len() {
            match f.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(path, e)),
            }
        }
        buf.truncate(done);
        Ok(buf)
    }

    /// Replaces `path` with a copy of `staged`, atomically (a temporary file
    /// in the same directory, then `rename(2)`), so readers never see a half
    /// written file. The replaced file's mode and owner carry over.
    pub async fn replace(&self, path: &str, staged: &Path) -> Io<u64> {
        let root = self.clone();
        let (path, staged) = (path.to_string(), staged.to_path_buf());
        tokio::task::spawn_blocking(move || root.replace_blocking(&path, &staged))
            .await
            .map_err(|e| BackendError::new(BackendErrorKind::Other, format!("replace: {e}")))?
    }

    fn replace_blocking(&self, path: &str, staged: &Path) -> Io<u64> {
        let (dir, name) = self.parent(path).map_err(|e| err(path, e))?;
        let old = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let tmp = format!(".{name}.ikf-{}", uuid::Uuid::new_v4().simple());
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = old.map(|s| s.st_mode & 0o7777).unwrap_or(0o644);
        let out = openat(&dir, tmp.as_str(), flags, Mode::from_bits_truncate(NEW_FILE_MODE))
            .map_err(|e| err(path, e))?;
        let cleanup = |e: BackendError| {
            let _ = unlinkat(&dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
            e
        };
        let mut out = File::from(out);
        let copied = File::open(staged)
            .and_then(|mut src| std::io::copy(&mut src, &mut out))
            .map_err(|e| cleanup(io_error(path, e)))?;
        if let Some(o) = old {
            // Ownership first: chown clears set-id bits, chmod puts them back.
            let _ = nix::unistd::fchown(&out, Some(Uid::from_raw(o.st_uid)), Some(Gid::from_raw(o.st_gid)));
        }
        nix::sys::stat::fchmod(&out, Mode::from_bits_truncate(mode)).map_err(|e| cleanup(err(path, e)))?;
        drop(out);
        nix::fcntl::renameat(&dir, tmp.as_str(), &dir, name).map_err(|e| cleanup(err(path, e)))?;
        Ok(copied)
    }

    /// Opens the file `path` for reading and writing (created owner-only if
    /// missing, emptied when `truncate`), never through a symlink: the
    /// backing file that direct writes go into.
    pub fn open_rw(&self, path: &str, truncate: bool) -> Io<File> {
        let mut flags = OFlag::O_RDWR | OFlag::O_CREAT;
        if truncate {
            flags |= OFlag::O_TRUNC;
        }
        self.open_file(path, flags, NEW_FILE_MODE)
            .map_err(|e| err(path, e))
    }

    /// Opens the existing file `path` (never through a symlink; without
    /// blocking on a FIFO) for reading, or reading and writing, with its
    /// metadata: the backing file handed to the kernel for passthrough.
    pub fn open_existing(&self, path: &str, write: bool) -> Io<(File, Meta)> {
        let access = if write { OFlag::O_RDWR } else { OFlag::O_RDONLY };
        let f = self
            .open_file(path, access | OFlag::O_NONBLOCK, 0)
            .map_err(|e| err(path, e))?;
        let st = nix::sys::stat::fstat(&f).map_err(|e| err(path, e))?;
        Ok((f, meta_of(&st)))
    }

    /// Creates (or truncates) an empty file.
    pub async fn create_empty(&self, path: &str) -> Io<()> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC;
        self.open_file(path, flags, NEW_FILE_MODE)
            .map_err(|e| err(path, e))?;
        Ok(())
    }

    /// fsyncs a file.
    pub async fn sync(&self, path: &str) -> Io<()> {
        let f = self
            .open_file(path, OFlag::O_RDONLY, 0)
            .map_err(|e| err(path, e))?;
        f.sync_all().map_err(|e| io_error(path, e))
    }

    /// The entries of the directory `path` with their metadata, unsorted.
    /// A missing directory lists empty (as opendal's lister does); a name
    /// that vanishes while listed is left out.
    pub async fn list(&self, path: &str) -> Io<Vec<(String, Meta)>> {
        let root = self.clone();
        let p = path.to_string();
        tokio::task::spawn_blocking(move || root.list_blocking(&p))
            .await
            .map_err(|e| BackendError::new(BackendErrorKind::Other, format!("listing {path}: {e}")))?
    }

    fn list_blocking(&self, path: &str) -> Io<Vec<(String, Meta)>> {
        let dir = match self.open_dir(path, OFlag::O_RDONLY) {
            Ok(d) => d,
            Err(Errno::ENOENT) => return Ok(Vec::new()),
            Err(e) => return Err(err(path, e)),
        };
        // The open descriptor, read through its /proc link: the listing is
        // of the directory opened beneath the root, whatever its path is now.
        let entries =
            std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())).map_err(|e| io_error(path, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(path, e))?;
            let name = entry.file_name();
            match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => out.push((name.to_string_lossy().into_owned(), meta_of(&st))),
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(err(path, e)),
            }
        }
        Ok(out)
    }

    /// Creates a directory with `mode`.
    pub fn mkdir(&self, path: &str, mode: u32) -> Io<()> {
        let (dir, name) = self.parent(path).map_err(|e| err(path, e))?;
        nix::sys::stat::mkdirat(&dir, name, Mode::from_bits_truncate(mode)).map_err(|e| err(path, e))
    }

    /// Removes a file, symlink or special file (`dir`: an empty directory).
    pub fn remove(&self, path: &str, is_dir: bool) -> Io<()> {
        let (dir, name) = self.parent(path).map_err(|e| err(path, e))?;
        let how = if is_dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        unlinkat(&dir, name, how).map_err(|e| err(path, e))
    }

    /// Renames a file or directory.
    pub async fn rename(&self, from: &str, to: &str) -> Io<()> {
        let what = || format!("{from} -> {to}");
        let (fd, fname) = self.parent(from).map_err(|e| err(&what(), e))?;
        let (td, tname) = self.parent(to).map_err(|e| err(&what(), e))?;
        nix::fcntl::renameat(&fd, fname, &td, tname).map_err(|e| err(&what(), e))
    }

    /// Changes mode, owner and times of `path` itself (never a symlink's target).
    pub fn set_meta(&self, path: &str, set: &SetMeta) -> Io<()> {
        let (dir, name) = self.parent(path).map_err(|e| err(path, e))?;
        let name = if name.is_empty() { "." } else { name };
        if set.uid.is_some() || set.gid.is_some() {
            fchownat(
                &dir,
                name,
                set.uid.map(Uid::from_raw),
                set.gid.map(Gid::from_raw),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| err(path, e))?;
        }
        if let Some(mode) = set.mode {
            chmod_nofollow(&dir, name, mode & 0o7777).map_err(|e| err(path, e))?;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            nix::sys::stat::utimensat(
                &dir,
                name,
                &timespec(set.atime),
                &timespec(set.mtime),
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|e| err(path, e))?;
        }
        Ok(())
    }

    /// Creates the symlink `path` pointing at `target`.
    pub fn symlink(&self, path: &str, target: &str) -> Io<()> {
        let (dir, name) = self.parent(path).map_err(|e| err(path, e))?;
        symlinkat(target, &dir, name).map_err(|e| err(path, e))
    }

    /// The target of the symlink `path`.
    pub fn readlink(&self, path: &str) -> Io<Vec<u8>> {
        let (dir, name) = self.parent(path).map_err(|e| err(path, e))?;
        let t: OsString = nix::fcntl::readlinkat(&dir, name).map_err(|e| err(path, e))?;
        Ok(t.into_vec())
    }

    /// A second name `to` for the file `from` (a hard link).
    pub fn link(&self, from: &str, to: &str) -> Io<()> {
        let what = || format!("{from} -> {to}");
        let (fd, fname) = self.parent(from).map_err(|e| err(&what(), e))?;
        let (td, tname) = self.parent(to).map_err(|e| err(&what(), e))?;
        linkat(&fd, fname, &td, tname, AtFlags::empty()).map_err(|e| err(&what(), e))
    }

    /// Creates a FIFO, socket or device node (`mode` carries the type).
    pub fn mknod(&self, path: &str, mode: u32, rdev: u64) -> Io<()> {
        let (dir, name) = self.parent(path).map_err(|e| err(path, e))?;
        let kind = SFlag::from_bits_truncate(mode & libc::S_IFMT);
        mknodat(&dir, name, kind, Mode::from_bits_truncate(mode & 0o7777), rdev).map_err(|e| err(path, e))
    }

    /// Space and inodes of the filesystem holding the root.
    pub fn space(&self) -> Io<SpaceInfo> {
        let s = nix::sys::statvfs::fstatvfs(&*self.fd).map_err(|e| err("", e))?;
        Ok(SpaceInfo {
            blocks: s.blocks(),
            bfree: s.blocks_free(),
            bavail: s.blocks_available(),
            files: s.files(),
            ffree: s.files_free(),
            bsize: s.block_size() as u32,
            frsize: s.fragment_size() as u32,
            namelen: s.name_max() as u32,
        })
    }
}

/// chmod of `name` itself: `fchmodat2(AT_SYMLINK_NOFOLLOW)` (Linux >= 6.6),
/// else a check that it is no symlink followed by a plain `fchmodat`.
fn chmod_nofollow(dir: &impl AsFd, name: &str, mode: u32) -> Result<(), Errno> {
    let c = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: a valid directory descriptor and C string; the kernel reads both only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            dir.as_fd().as_raw_fd(),
            c.as_ptr(),
            mode as libc::c_uint,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    match Errno::result(r) {
        Ok(_) => Ok(()),
        Err(Errno::ENOSYS) => {
            let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
            if kind(&st) == SFlag::S_IFLNK {
                return Err(Errno::EOPNOTSUPP);
            }
            nix::sys::stat::fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
        }
        Err(e) => Err(e),
    }
}

fn timespec(t: Option<SystemTime>) -> TimeSpec {
    match t {
        None => TimeSpec::UTIME_OMIT,
        Some(t) => match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => TimeSpec::from_duration(d),
            Err(e) => {
                // Before 1970: a negative seconds count, nanoseconds positive.
                let d = e.duration();
                let (s, n) = (d.as_secs() as i64, d.subsec_nanos() as i64);
                if n == 0 {
                    TimeSpec::new(-s, 0)
                } else {
                    TimeSpec::new(-s - 1, 1_000_000_000 - n)
                }
            }
        },
    }
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT)
}

fn time_of(secs: i64, nsecs: i64) -> SystemTime {
    let nsecs = nsecs.clamp(0, 999_999_999) as u32;
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nsecs)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nsecs as u64)
    }
}

/// What `Backend::stat` reports for a local entry: everything `lstat` says
/// (sizes of directories and symlinks too); nothing has a version.
fn meta_of(st: &FileStat) -> Meta {
    let k = kind(st);
    Meta {
        is_dir: k == SFlag::S_IFDIR,
        size: st.st_size.max(0) as u64,
        mtime: Some(time_of(st.st_mtime, st.st_mtime_nsec)),
        version: None,
        mode: Some(st.st_mode),
        uid: Some(st.st_uid),
        gid: Some(st.st_gid),
        atime: Some(time_of(st.st_atime, st.st_atime_nsec)),
        ctime: Some(time_of(st.st_ctime, st.st_ctime_nsec)),
        nlink: Some(st.st_nlink as u32),
        rdev: st.st_rdev,
        blocks: Some(st.st_blocks as u64),
    }
}

fn err(what: &str, e: Errno) -> BackendError {
    io_error(what, std::io::Error::from_raw_os_error(e as i32))
}

fn io_error(what: &str, e: std::io::Error) -> BackendError {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => BackendErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => BackendErrorKind::PermissionDenied,
        std::io::ErrorKind::AlreadyExists => BackendErrorKind::AlreadyExists,
        std::io::ErrorKind::IsADirectory => BackendErrorKind::IsDir,
        std::io::ErrorKind::NotADirectory => BackendErrorKind::NotDir,
        _ => BackendErrorKind::Other,
    };
    let mut be = BackendError::new(kind, format!("{what}: {e}"));
    be.errno = e.raw_os_error();
    be
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(d: &Path) -> LocalRoot {
        LocalRoot::open(d).unwrap()
    }

    #[tokio::test]
    async fn replace_swaps_content_keeps_the_mode_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let root = root(d.path());
        std::fs::write(d.path().join("f"), b"old").unwrap();
        root.set_meta(
            "f",
            &SetMeta {
                mode: Some(0o751),
                ..Default::default()
            },
        )
        .unwrap();
        let staged = d.path().join("staged");
        std::fs::write(&staged, b"new content").unwrap();
        assert_eq!(root.replace("f", &staged).await.unwrap(), 11);
        assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"new content");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o751);
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        root.sync("f").await.unwrap();
    }

    #[tokio::test]
    async fn missing_parent_is_not_found() {
        let d = tempfile::tempdir().unwrap();
        let root = root(d.path());
        let e = root.create_empty("no/such").await.unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::NotFound);
    }

    #[tokio::test]
    async fn a_symlink_on_the_way_out_of_the_root_is_never_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("esc")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), d.path().join("f")).unwrap();
        let root = root(d.path());
        // The symlinks themselves are visible as symlinks.
        assert_eq!(
            root.stat("esc").unwrap().mode.unwrap() & libc::S_IFMT,
            libc::S_IFLNK
        );
        assert_eq!(
            root.readlink("esc").unwrap(),
            outside.path().as_os_str().as_encoded_bytes()
        );
        // Nothing through them: not as a directory, not as the last name.
        assert_eq!(root.stat("esc/secret").unwrap_err().errno, Some(libc::ELOOP));
        assert!(root.read("esc/secret", 0, 10).is_err());
        assert!(root.read("f", 0, 10).is_err());
        assert!(root.list("esc").await.is_err());
        assert!(root.create_empty("esc/new").await.is_err());
        assert!(root.remove("esc/secret", false).is_err());
        assert!(root
            .set_meta(
                "f",
                &SetMeta {
                    mode: Some(0o777),
                    ..Default::default()
                }
            )
            .is_err());
        assert!(root.checked_path("f").is_none() && root.checked_path("esc/secret").is_none());
        assert!(!outside.path().join("new").exists());
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(outside.path().join("secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_ne!(m & 0o777, 0o777);
        assert_eq!(std::fs::read(outside.path().join("secret")).unwrap(), b"s");
    }

    #[test]
    fn paths_longer_than_one_syscall_takes_are_opened_in_pieces() {
        let d = tempfile::tempdir().unwrap();
        let root = root(d.path());
        let comp = "x".repeat(250);
        let mut p = String::new();
        while p.len() < 3600 {
            p = if p.is_empty() {
                comp.clone()
            } else {
                format!("{p}/{comp}")
            };
            root.mkdir(&p, 0o755).unwrap();
        }
        let f = format!("{p}/{}", "y".repeat(200));
        assert!(f.len() > PIECE && f.len() < 4096, "{}", f.len());
        root.mknod(&f, libc::S_IFIFO | 0o600, 0).unwrap();
        assert_eq!(root.stat(&f).unwrap().mode.unwrap() & libc::S_IFMT, libc::S_IFIFO);
    }

    #[test]
    fn times_before_1970_round_trip() {
        let t = SystemTime::UNIX_EPOCH - Duration::from_millis(1500);
        let ts = timespec(Some(t));
        assert_eq!(time_of(ts.tv_sec(), ts.tv_nsec()), t);
    }
}
