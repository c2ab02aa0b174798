//! File attributes as the core reports them, built from backend metadata,
//! the in-memory overlay and the mount's owner settings.

use super::inodes::Overlay;
use crate::vfs::Meta;
use std::time::SystemTime;

/// Preferred I/O size reported in `st_blksize`: tools like `cp` size their
/// buffers from it, and 1 MiB matches the kernel's largest FUSE request.
pub const BLKSIZE: u32 = 1 << 20;

/// File or directory (the only kinds backends hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
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
}

/// Mount-wide defaults for attributes.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// Reported for anything without a known time.
    pub started: SystemTime,
}

/// Builds attributes from metadata, an overlay and whether the place is writable.
pub fn build(ino: u64, meta: &Meta, ov: &Overlay, owner: &Owner, writable: bool) -> Attr {
    let kind = if meta.is_dir { Kind::Dir } else { Kind::File };
    let default_perm: u16 = match (kind, writable) {
        (Kind::Dir, true) => 0o755,
        (Kind::Dir, false) => 0o555,
        (Kind::File, true) => 0o644,
        (Kind::File, false) => 0o444,
    };
    let mtime = ov.mtime.or(meta.mtime).unwrap_or(owner.started);
    Attr {
        ino,
        size: meta.size,
        // st_blocks counts 512-byte units.
        blocks: meta.size.div_ceil(512),
        atime: ov.atime.unwrap_or(mtime),
        mtime,
        // A change of the contents is a change of the inode too: the later of
        // the last attribute change and the backend's modification time.
        ctime: match (ov.ctime, meta.mtime) {
            (Some(c), Some(m)) => c.max(m),
            (Some(c), None) => c,
            (None, _) => mtime,
        },
        kind,
        perm: ov.mode.map(|m| (m & 0o7777) as u16).unwrap_or(default_perm),
        nlink: if meta.is_dir { 2 } else { 1 },
        uid: ov.uid.unwrap_or(owner.uid),
        gid: ov.gid.unwrap_or(owner.gid),
        blksize: BLKSIZE,
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
        }
    }

    #[test]
    fn read_only_places_drop_write_bits() {
        let a = build(2, &Meta::dir(), &Overlay::default(), &owner(), false);
        assert_eq!(a.perm, 0o555);
        let f = Meta {
            is_dir: false,
            size: 513,
            mtime: None,
            version: None,
        };
        let a = build(3, &f, &Overlay::default(), &owner(), false);
        assert_eq!((a.perm, a.blocks, a.nlink), (0o444, 2, 1));
    }

    #[test]
    fn ctime_follows_a_backend_change_newer_than_the_last_chmod() {
        let t = |s| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s);
        let f = |m| Meta {
            is_dir: true,
            size: 0,
            mtime: Some(t(m)),
            version: None,
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
        let f = Meta {
            is_dir: false,
            size: 0,
            mtime: None,
            version: None,
        };
        let ov = Overlay {
            mode: Some(0o100600),
            uid: Some(1),
            ..Default::default()
        };
        let a = build(3, &f, &ov, &owner(), true);
        assert_eq!((a.perm, a.uid, a.gid), (0o600, 1, 8));
    }
}
