//! Confinement: turns a virtual path into a [`Place`] on the daemon's kernel
//! mount, and refuses what the tools may not touch.
//!
//! - The owning mount is the mount-table entry whose path is the longest
//!   prefix of the virtual path; paths above the mounts (the root, the
//!   directories above nested mount paths) are synthetic and read-only.
//! - All I/O goes through a `cap_std::fs::Dir` opened at the mount's own
//!   directory under the mount point, so the kernel (openat2
//!   `RESOLVE_BENEATH`) refuses any lookup that would leave that directory,
//!   whatever the name says.
//! - For `fs` backends the backing path is checked as well: if a symlink in
//!   the backend's root directory leads outside it, the path is refused
//!   (the backend itself would follow it).
//! - Read-only mounts refuse writes before any I/O.
//! - MCP roots offered by the client narrow all of this further: a path must
//!   lie under one of them.

use super::error::ToolError;
use super::vpath::VPath;
use crate::control::protocol::MountInfo;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use std::path::{Path, PathBuf};

/// One resolved virtual path.
#[derive(Debug, Clone)]
pub struct Place {
    /// The full virtual path, as the client should see it.
    pub vpath: VPath,
    /// The mount that owns it; `None` above the mounts (synthetic, read-only).
    pub mount: Option<MountInfo>,
    /// The mount's directory on the kernel mount (the mount point itself for
    /// synthetic places).
    base: PathBuf,
    /// The path below `base` (`"."` for `base` itself).
    pub rel: PathBuf,
    /// The backing directory of an `fs` mount, for the symlink check.
    backing_root: Option<PathBuf>,
}

/// Whether a tool changes what it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// What a path is checked against: the mount point, the mount table and the
/// client's roots.
#[derive(Debug, Clone)]
pub struct Scope {
    pub mountpoint: PathBuf,
    pub mounts: Vec<MountInfo>,
    /// The client's roots as virtual paths; `None`: the client set none.
    pub roots: Option<Vec<VPath>>,
}

impl Scope {
    /// Resolves `vpath` for `access`, or says why it is refused.
    pub fn place(&self, vpath: &VPath, access: Access) -> Result<Place, ToolError> {
        if let Some(roots) = &self.roots {
            if !roots.iter().any(|r| vpath.starts_with(r)) {
                let list: Vec<String> = roots.iter().map(|r| r.to_string()).collect();
                return Err(ToolError::bad(format!(
                    "{vpath}: outside the client's roots ({})",
                    list.join(", ")
                )));
            }
        }
        let owner = self
            .mounts
            .iter()
            .filter_map(|m| VPath::parse(&m.path).ok().map(|p| (p, m)))
            .filter(|(p, _)| vpath.starts_with(p))
            .max_by_key(|(p, _)| p.names().len());
        let place = match owner {
            Some((mpath, m)) => {
                let backing_root = (m.scheme == "fs")
                    .then(|| m.options.get("root").map(PathBuf::from))
                    .flatten()
                    .filter(|r| r.is_absolute());
                Place {
                    vpath: vpath.clone(),
                    base: join_names(&self.mountpoint, &mpath),
                    rel: vpath.relative_to(&mpath),
                    mount: Some(m.clone()),
                    backing_root,
                }
            }
            None => Place {
                vpath: vpath.clone(),
                base: self.mountpoint.clone(),
                rel: vpath.relative_to(&VPath::root()),
                mount: None,
                backing_root: None,
            },
        };
        if access == Access::Write {
            match &place.mount {
                None => {
                    return Err(ToolError::bad(format!(
                        "{vpath}: not inside a mount (the directories above the mounts are read-only)"
                    )))
                }
                Some(m) if m.read_only => {
                    return Err(ToolError::bad(format!(
                        "{vpath}: the mount {} is read-only",
                        m.path
                    )))
                }
                _ => {}
            }
        }
        place.check_backing()?;
        Ok(place)
    }
}

impl Place {
    /// Opens the confining directory.
    pub fn dir(&self) -> Result<Dir, ToolError> {
        Dir::open_ambient_dir(&self.base, ambient_authority()).map_err(|e| ToolError::io(&self.vpath, e))
    }

    /// True when this is the mount's own directory (or the root).
    pub fn is_mount_root(&self) -> bool {
        self.rel == Path::new(".")
    }

    /// The place of `name` inside this one (a walk's child), checked again.
    pub fn child(&self, name: &str) -> Result<Place, ToolError> {
        let mut p = self.clone();
        p.vpath = self.vpath.join(name);
        p.rel = if self.is_mount_root() {
            PathBuf::from(name)
        } else {
            self.rel.join(name)
        };
        p.check_backing()?;
        Ok(p)
    }

    /// Refuses a path whose backing file lies outside an `fs` backend's root
    /// (through a symlink in the backing directory).
    fn check_backing(&self) -> Result<(), ToolError> {
        let Some(root) = &self.backing_root else {
            return Ok(());
        };
        let Ok(root_real) = root.canonicalize() else {
            return Ok(()); // the daemon reports a missing root itself
        };
        let mut probe = root.join(&self.rel);
        // The deepest part that exists: canonicalize resolves every symlink in it.
        loop {
            if probe.symlink_metadata().is_ok() {
                break;
            }
            if !probe.pop() || !probe.starts_with(root) {
                return Ok(());
            }
        }
        match probe.canonicalize() {
            Ok(real) if real.starts_with(&root_real) => Ok(()),
            Ok(_) => Err(ToolError::bad(format!(
                "{}: refused, a symlink in the backend's directory leads outside it",
                self.vpath
            ))),
            // A dangling symlink: its target is unknown, so it is refused too.
            Err(_) => Err(ToolError::bad(format!(
                "{}: refused, a dangling symlink in the backend's directory",
                self.vpath
            ))),
        }
    }
}

fn join_names(base: &Path, v: &VPath) -> PathBuf {
    let mut p = base.to_path_buf();
    for n in v.names() {
        p.push(n);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn mount(path: &str, read_only: bool) -> MountInfo {
        MountInfo {
            path: path.into(),
            scheme: "memory".into(),
            read_only,
            options: BTreeMap::new(),
        }
    }

    fn scope() -> Scope {
        Scope {
            mountpoint: "/mnt/vfs".into(),
            mounts: vec![mount("/local", false), mount("/a/b", false), mount("/ro", true)],
            roots: None,
        }
    }

    #[test]
    fn place_picks_the_longest_mount_and_its_relative_path() {
        let p = scope()
            .place(&VPath::parse("/a/b/c/d").unwrap(), Access::Write)
            .unwrap();
        assert_eq!(p.mount.unwrap().path, "/a/b");
        assert_eq!(p.rel, PathBuf::from("c/d"));
        assert_eq!(p.base, PathBuf::from("/mnt/vfs/a/b"));
    }

    #[test]
    fn writes_refused_above_mounts_and_on_read_only_mounts() {
        let s = scope();
        assert!(s.place(&VPath::parse("/a").unwrap(), Access::Read).is_ok());
        assert!(s.place(&VPath::parse("/a/x").unwrap(), Access::Write).is_err());
        assert!(s.place(&VPath::parse("/ro/x").unwrap(), Access::Write).is_err());
        assert!(s.place(&VPath::parse("/ro/x").unwrap(), Access::Read).is_ok());
    }

    #[test]
    fn roots_narrow_what_is_reachable() {
        let mut s = scope();
        s.roots = Some(vec![VPath::parse("/local/proj").unwrap()]);
        assert!(s
            .place(&VPath::parse("/local/proj/x").unwrap(), Access::Read)
            .is_ok());
        assert!(s
            .place(&VPath::parse("/local/other").unwrap(), Access::Read)
            .is_err());
        assert!(s.place(&VPath::root(), Access::Read).is_err());
    }
}
