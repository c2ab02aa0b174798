//! What the `memory` scheme keeps beside its objects: modes, owners and
//! times set through the mount, and the type and target of symlinks, FIFOs
//! and sockets (stored as empty objects so listings show them). All in RAM,
//! like the objects, and gone with them at unmount. Hard links and device
//! nodes are not kept (EPERM): one object cannot have two names here.

use super::{Meta, SetMeta};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// Attributes of one name.
#[derive(Debug, Clone, Default)]
struct Stored {
    /// Type bits (`S_IFMT`; 0: the object's own, file or directory).
    kind: u32,
    perm: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    atime: Option<SystemTime>,
    mtime: Option<SystemTime>,
    ctime: Option<SystemTime>,
    /// A symlink's target.
    target: Option<Vec<u8>>,
}

/// The side table, keyed by path (relative, no trailing slash).
#[derive(Debug, Default)]
pub struct MemAttrs {
    m: Mutex<HashMap<String, Stored>>,
}

impl MemAttrs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stored>> {
        self.m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `meta` with what is kept for `path` laid over it.
    pub fn apply(&self, path: &str, mut meta: Meta) -> Meta {
        let m = self.lock();
        let Some(s) = m.get(path) else { return meta };
        let kind = if s.kind != 0 {
            s.kind
        } else if meta.is_dir {
            libc::S_IFDIR
        } else {
            libc::S_IFREG
        };
        if let Some(p) = s.perm {
            meta.mode = Some(kind | p);
        } else if s.kind != 0 {
            meta.mode = Some(kind | if kind == libc::S_IFLNK { 0o777 } else { 0o644 });
        }
        meta.uid = s.uid.or(meta.uid);
        meta.gid = s.gid.or(meta.gid);
        meta.atime = s.atime.or(meta.atime);
        meta.mtime = s.mtime.or(meta.mtime);
        meta.ctime = s.ctime.or(meta.ctime);
        if let Some(t) = &s.target {
            meta.size = t.len() as u64;
        }
        meta
    }

    /// Records a change of mode, owner or times.
    pub fn set(&self, path: &str, set: &SetMeta) {
        let mut m = self.lock();
        let s = m.entry(path.to_string()).or_default();
        if let Some(p) = set.mode {
            s.perm = Some(p & 0o7777);
        }
        if set.uid.is_some() {
            s.uid = set.uid;
        }
        if set.gid.is_some() {
            s.gid = set.gid;
        }
        if set.atime.is_some() {
            s.atime = set.atime;
        }
        if set.mtime.is_some() {
            s.mtime = set.mtime;
        }
        s.ctime = Some(SystemTime::now());
    }

    /// The contents changed (write, create): new mtime and ctime.
    pub fn touched(&self, path: &str) {
        let now = SystemTime::now();
        let mut m = self.lock();
        let s = m.entry(path.to_string()).or_default();
        s.mtime = Some(now);
        s.ctime = Some(now);
    }

    /// A name in the directory holding `path` came or went: the
    /// directory's mtime and ctime change.
    pub fn touched_parent(&self, path: &str) {
        self.touched(path.rsplit_once('/').map(|(p, _)| p).unwrap_or(""));
    }

    /// A new special entry (`kind`: `S_IFLNK`, `S_IFIFO`, `S_IFSOCK`).
    pub fn make(&self, path: &str, kind: u32, target: Option<Vec<u8>>) {
        self.touched_parent(path);
        let now = SystemTime::now();
        self.lock().insert(
            path.to_string(),
            Stored {
                kind,
                target,
                atime: Some(now),
                mtime: Some(now),
                ctime: Some(now),
                ..Default::default()
            },
        );
    }

    /// A symlink's target, if `path` is one.
    pub fn target(&self, path: &str) -> Option<Vec<u8>> {
        self.lock().get(path).and_then(|s| s.target.clone())
    }

    /// `path` is gone.
    pub fn remove(&self, path: &str) {
        self.lock().remove(path);
        self.touched_parent(path);
    }

    /// `from` (and everything under it) is now `to`; what was at `to` is gone.
    pub fn rename(&self, from: &str, to: &str) {
        let mut m = self.lock();
        let prefix = format!("{from}/");
        let moved: Vec<String> = m
            .keys()
            .filter(|k| k.as_str() == from || k.starts_with(&prefix))
            .cloned()
            .collect();
        m.remove(to);
        for k in moved {
            if let Some(mut s) = m.remove(&k) {
                if k == from {
                    s.ctime = Some(SystemTime::now());
                }
                m.insert(format!("{to}{}", &k[from.len()..]), s);
            }
        }
        drop(m);
        self.touched_parent(from);
        self.touched_parent(to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_attributes_follow_renames_and_vanish_with_the_name() {
        let a = MemAttrs::default();
        a.make("d/l", libc::S_IFLNK, Some(b"target".to_vec()));
        a.set(
            "d/l",
            &SetMeta {
                uid: Some(7),
                ..Default::default()
            },
        );
        a.rename("d", "e");
        let m = a.apply("e/l", Meta::default());
        assert_eq!((m.mode, m.uid, m.size), (Some(libc::S_IFLNK | 0o777), Some(7), 6));
        assert_eq!(a.target("e/l").as_deref(), Some(&b"target"[..]));
        assert!(a.target("d/l").is_none());
        a.remove("e/l");
        assert_eq!(a.apply("e/l", Meta::default()), Meta::default());
    }
}
