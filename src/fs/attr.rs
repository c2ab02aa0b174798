//! File attributes as the core reports them, built from backend metadata,
//! the in-memory overlay and the mount's owner settings.
//!
//! What a tree stores (mode, owner, times, links: a local directory) is
//! shown as stored; the overlay and the defaults fill in only what the tree
//! does not store. Defaults for places without stored modes: read-only
//! places and synthetic directories are readable by everyone only when the
//! mount lets others in (`allow_other`), else by the owner only.

use super::inodes::Overlay;
use crate::vfs::Meta;
use std::time::SystemTime;

/// Preferred I/O size reported in `st_blksize`: tools like `cp` size their
/// buffers from it, and 1 MiB matches the kernel's largest FUSE request.
pub const BLKSIZE: u32 = 1 << 20;

/// The type of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl Kind {
    /// The kind of backend metadata: its stored file type, else file or directory.
    pub fn of(meta: &Meta) -> Kind {
        match meta.mode.map(|m| m & libc::S_IFMT) {
            Some(libc::S_IFLNK) => Kind::Symlink,
            Some(libc::S_IFIFO) => Kind::Fifo,
            Some(libc::S_IFSOCK) => Kind::Socket,
            Some(libc::S_IFCHR) => Kind::CharDevice,
            Some(libc::S_IFBLK) => Kind::BlockDevice,
            _ if meta.is_dir => Kind::Dir,
            _ => Kind::File,
        }
    }
}

/// What `stat` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    pub kind: Kind,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub blksize: u32,
    /// Device number of a device node.
    pub rdev: u32,
}

/// Mount-wide defaults for attributes.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// Reported for anything without a known time.
    pub started: SystemTime,
    /// Other users may enter the mount (`allow_other`): default modes of
    /// read-only places let them read.
    pub shared: bool,
}

/// Builds attributes from metadata, an overlay and whether the place is writable.
pub fn build(ino: u64, meta: &Meta, ov: &Overlay, owner: &Owner, writable: bool) -> Attr {
    let kind = Kind::of(meta);
    let dir = kind == Kind::Dir;
    let default_perm: u16 = match (dir, writable, owner.shared) {
        (true, true, _) => 0o755,
        (true, false, true) => 0o555,
        (true, false, false) => 0o500,
        (false, true, _) => 0o644,
        (false, false, true) => 0o444,
        (false, false, false) => 0o400,
    };
    let mtime = ov.mtime.or(meta.mtime).unwrap_or(owner.started);
    let stored_perm = meta.mode.map(|m| (m & 0o7777) as u16);
    Attr {
        ino,
        size: meta.size,
        // st_blocks counts 512-byte units.
        blocks: meta.blocks.unwrap_or_else(|| meta.size.div_ceil(512)),
        atime: ov.atime.or(meta.atime).unwrap_or(mtime),
        mtime,
        // A change of the contents is a change of the inode too: the later of
        // the last attribute change and the backend's modification time.
        ctime: match (ov.ctime, meta.ctime, meta.mtime) {
            // Stored by the tree: as the host says.
            (None, Some(c), _) => c,
            (Some(c), _, Some(m)) => c.max(m),
            (Some(c), _, None) => c,
            (None, None, _) => mtime,
        },
        kind,
        // Read-only places show no write bits, stored modes included.
        perm: ov
            .mode
            .map(|m| (m & 0o7777) as u16)
            .or(stored_perm)
            .map(|p| if writable { p } else { p & !0o222 })
            .unwrap_or(default_perm),
        nlink: meta.nlink.unwrap_or(if dir { 2 } else { 1 }),
        uid: ov.uid.or(meta.uid).unwrap_or(owner.uid),
        gid: ov.gid.or(meta.gid).unwrap_or(owner.gid),
        blksize: BLKSIZE,
        rdev: meta.rdev as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            uid: 7,
            gid: 8,
            started: SystemTime::UNIX_EPOCH,
            shared: true,
        }
    }

    #[test]
    fn read_only_places_drop_write_bits() {
        let a = build(2, &Meta::dir(), &Overlay::default(), &owner(), false);
        assert_eq!(a.perm, 0o555);
        let f = Meta {
            size: 513,
            ..Meta::default()
        };
        let a = build(3, &f, &Overlay::default(), &owner(), false);
        assert_eq!((a.perm, a.blocks, a.nlink), (0o444, 2, 1));
        // Without allow_other, read-only defaults are for the owner only.
        let private = Owner {
            shared: false,
            ..owner()
        };
        assert_eq!(
            build(2, &Meta::dir(), &Overlay::default(), &private, false).perm,
            0o500
        );
        assert_eq!(build(3, &f, &Overlay::default(), &private, false).perm, 0o400);
    }

    #[test]
    fn stored_modes_owners_links_and_kinds_are_shown_as_stored() {
        let m = Meta {
            size: 9,
            mode: Some(libc::S_IFLNK | 0o777),
            uid: Some(65534),
            gid: Some(65534),
            nlink: Some(3),
            blocks: Some(8),
            ..Meta::default()
        };
        let a = build(3, &m, &Overlay::default(), &owner(), true);
        assert_eq!(a.kind, Kind::Symlink);
        assert_eq!(
            (a.perm, a.uid, a.gid, a.nlink, a.blocks),
            (0o777, 65534, 65534, 3, 8)
        );
        let fifo = Meta {
            mode: Some(libc::S_IFIFO | 0o640),
            ..Meta::default()
        };
        let a = build(4, &fifo, &Overlay::default(), &owner(), true);
        assert_eq!((a.kind, a.perm), (Kind::Fifo, 0o640));
        // A read-only place shows the stored mode without write bits.
        let a = build(4, &fifo, &Overlay::default(), &owner(), false);
        assert_eq!(a.perm, 0o440);
    }

    #[test]
    fn ctime_follows_a_backend_change_newer_than_the_last_chmod() {
        let t = |s| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s);
        let f = |m| Meta {
            mtime: Some(t(m)),
            ..Meta::dir()
        };
        let ov = Overlay {
            ctime: Some(t(100)),
            mtime: Some(t(5000)),
            ..Default::default()
        };
        // The contents changed after the chmod: ctime moves with them.
        assert_eq!(build(2, &f(200), &ov, &owner(), true).ctime, t(200));
        // An older backend time (or a utimens into the future) leaves the chmod time.
        assert_eq!(build(2, &f(50), &ov, &owner(), true).ctime, t(100));
    }

    #[test]
    fn overlay_wins_over_defaults() {
        let f = Meta::default();
        let ov = Overlay {
            mode: Some(0o100600),
            uid: Some(1),
            ..Default::default()
        };
        let a = build(3, &f, &ov, &owner(), true);
        assert_eq!((a.perm, a.uid, a.gid), (0o600, 1, 8));
    }
}
