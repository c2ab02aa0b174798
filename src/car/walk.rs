//! Turning a path on disk into a UnixFS DAG (the only file-system I/O on the
//! DAG-building side; the builders themselves are pure).
//!
//! Two walks, chosen by profile:
//! - kubo-style (`unixfs-v1-2025`, `unixfs-v0-2015`), as `ipfs add -r`:
//!   entries sorted by name bytes, empty directories and symlinks (stored as
//!   UnixFS symlinks, not followed) included, dot-files only with `hidden`.
//! - ipfs-car-style (`ipfs-car`), as `ipfs-car pack` (files-from-path):
//!   only regular files are collected (symlinks and empty directories vanish),
//!   the tree is rooted at the common parent directory of all files, and
//!   blocks come out in the order ipfs-car writes them: files sorted by
//!   their relative path (JavaScript string order), each directory right
//!   after its last child.
//!
//! Both emit every block post-order into the sink and hold at most one
//! directory's entries per level of the tree being walked (ipfs-car-style
//! also holds the list of file paths, as ipfs-car does).

use super::block::{BlockSink, Discard};
use super::dir::{self, DirBuilder};
use super::error::{CarError, Result};
use super::file::{Built, FileBuilder};
use super::profile::Profile;
use cid::Cid;
use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How to read a path.
#[derive(Debug, Clone, Copy, Default)]
pub struct WalkOptions {
    /// Include names starting with `.`.
    pub hidden: bool,
    /// Wrap a single file in a directory holding it under its file name
    /// (ipfs-car's default `--wrap`).
    pub wrap: bool,
}

/// The CID of the file or directory at `path`, as `ipfs add --only-hash -r`
/// (or `ipfs-car pack` for [`Profile::IpfsCar`]) would give it.
pub fn cid_of_path(profile: Profile, path: &Path, hidden: bool) -> Result<Cid> {
    let opts = WalkOptions { hidden, wrap: false };
    Ok(add_path(profile, path, &opts, &mut Discard, &|_| {})?.cid)
}

/// Build the DAG of `path`, emitting its blocks into `sink`; `progress` is
/// told how many content bytes were read as they are read.
pub fn add_path(
    profile: Profile,
    path: &Path,
    opts: &WalkOptions,
    sink: &mut dyn BlockSink,
    progress: &dyn Fn(u64),
) -> Result<Built> {
    add_path_listed(profile, path, opts, sink, progress, &mut |_, _| {})
}

/// As [`add_path`], also telling `listed` the CID of every file and
/// directory under `path`, in the order `ipfs add -r` prints them: files
/// (and symlinks) as they are added, in walk order, then the directories,
/// each after everything inside it, `path` itself last. The `ipfs-car`
/// profile lists only the root, as ipfs-car does.
pub fn add_path_listed(
    profile: Profile,
    path: &Path,
    opts: &WalkOptions,
    sink: &mut dyn BlockSink,
    progress: &dyn Fn(u64),
    listed: &mut dyn FnMut(&Path, &Built),
) -> Result<Built> {
    if profile == Profile::IpfsCar {
        let built = add_ipfs_car(profile, path, opts, sink, progress)?;
        listed(path, &built);
        return Ok(built);
    }
    let mut walk = KuboWalk {
        profile,
        hidden: opts.hidden,
        sink,
        progress,
        listed,
        dirs: Vec::new(),
    };
    let built = walk.add(path)?;
    for (p, b) in &walk.dirs {
        (walk.listed)(p, b);
    }
    if opts.wrap {
        let name = file_name(path)?;
        let mut d = DirBuilder::new(profile);
        d.add(&name, built.cid, built.dag_size)?;
        return d.finish(walk.sink);
    }
    Ok(built)
}

fn file_name(path: &Path) -> Result<String> {
    let abs = std::path::absolute(path).map_err(CarError::path(path))?;
    let name = abs
        .file_name()
        .ok_or_else(|| CarError::Invalid(format!("{} has no file name", path.display())))?;
    utf8(name.as_bytes(), path)
}

fn utf8(name: &[u8], path: &Path) -> Result<String> {
    String::from_utf8(name.to_vec())
        .map_err(|_| CarError::Invalid(format!("{}: file name is not UTF-8", path.display())))
}

fn is_hidden(name: &[u8]) -> bool {
    name.first() == Some(&b'.')
}

/// Stream one regular file into a file DAG.
pub fn add_file(
    profile: Profile,
    path: &Path,
    sink: &mut dyn BlockSink,
    progress: &dyn Fn(u64),
) -> Result<Built> {
    let f = fs::File::open(path).map_err(CarError::path(path))?;
    let mut b = FileBuilder::new(profile, sink);
    b.write_file(f, progress).map_err(|e| match e {
        CarError::Io(source) => CarError::Path {
            path: path.to_owned(),
            source,
        },
        other => other,
    })?;
    b.finish()
}

/// A kubo-style walk: the DAG of a path, post-order, listing as it goes.
struct KuboWalk<'a> {
    profile: Profile,
    hidden: bool,
    sink: &'a mut dyn BlockSink,
    progress: &'a dyn Fn(u64),
    listed: &'a mut dyn FnMut(&Path, &Built),
    /// Directories in the order they were finished, listed after all files.
    dirs: Vec<(PathBuf, Built)>,
}

impl KuboWalk<'_> {
    fn add(&mut self, path: &Path) -> Result<Built> {
        let md = fs::symlink_metadata(path).map_err(CarError::path(path))?;
        let ft = md.file_type();
        let built = if ft.is_symlink() {
            let target = fs::read_link(path).map_err(CarError::path(path))?;
            dir::symlink(self.profile, target.as_os_str().as_bytes(), self.sink)?
        } else if ft.is_file() {
            add_file(self.profile, path, self.sink, self.progress)?
        } else if ft.is_dir() {
            let mut names = Vec::new();
            for entry in fs::read_dir(path).map_err(CarError::path(path))? {
                let name = entry.map_err(CarError::path(path))?.file_name();
                if self.hidden || !is_hidden(name.as_bytes()) {
                    names.push(name);
                }
            }
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            let mut d = DirBuilder::new(self.profile);
            for name in names {
                let child = path.join(&name);
                let built = self.add(&child)?;
                d.add(&utf8(name.as_bytes(), &child)?, built.cid, built.dag_size)?;
            }
            let built = d.finish(self.sink)?;
            self.dirs.push((path.to_owned(), built));
            return Ok(built);
        } else {
            return Err(CarError::Unsupported(format!(
                "{}: not a file, directory or symlink",
                path.display()
            )));
        };
        (self.listed)(path, &built);
        Ok(built)
    }
}

/// Regular files under `path` as files-from-path finds them.
fn collect_files(path: &Path, hidden: bool, out: &mut Vec<PathBuf>) -> Result<()> {
    let md = fs::metadata(path).map_err(CarError::path(path))?;
    if !hidden && path.file_name().is_some_and(|n| is_hidden(n.as_bytes())) {
        return Ok(());
    }
    if md.is_file() {
        out.push(path.to_owned());
    } else if md.is_dir() {
        collect_dir(path, hidden, out)?;
    }
    Ok(())
}

fn collect_dir(dir: &Path, hidden: bool, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(CarError::path(dir))? {
        let entry = entry.map_err(CarError::path(dir))?;
        let name = entry.file_name();
        if !hidden && is_hidden(name.as_bytes()) {
            continue;
        }
        // DirEntry::file_type does not follow symlinks, like Node's Dirent.
        let ft = entry.file_type().map_err(CarError::path(entry.path()))?;
        if ft.is_file() {
            out.push(entry.path());
        } else if ft.is_dir() {
            collect_dir(&entry.path(), hidden, out)?;
        }
    }
    Ok(())
}

/// JavaScript's `<` on strings: UTF-16 code unit order.
fn js_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

#[derive(Default)]
struct CarDir {
    entries: Vec<(String, CarItem)>,
    index: HashMap<String, usize>,
}

enum CarItem {
    File(PathBuf),
    Dir(CarDir),
}

impl CarDir {
    fn insert(&mut self, rel: &str, file: PathBuf) -> Result<()> {
        let (head, rest) = match rel.split_once('/') {
            Some((h, r)) => (h, Some(r)),
            None => (rel, None),
        };
        let slot = match self.index.get(head) {
            Some(&i) => i,
            None => {
                let item = if rest.is_some() {
                    CarItem::Dir(CarDir::default())
                } else {
                    CarItem::File(file.clone())
                };
                self.entries.push((head.to_owned(), item));
                self.index.insert(head.to_owned(), self.entries.len() - 1);
                if rest.is_none() {
                    return Ok(());
                }
                self.entries.len() - 1
            }
        };
        match (&mut self.entries[slot].1, rest) {
            (CarItem::Dir(d), Some(r)) => d.insert(r, file),
            _ => Err(CarError::Invalid(format!(
                "{head:?} is both a file and a directory"
            ))),
        }
    }

    fn finish(self, profile: Profile, sink: &mut dyn BlockSink, progress: &dyn Fn(u64)) -> Result<Built> {
        let mut d = DirBuilder::new(profile);
        for (name, item) in self.entries {
            let built = match item {
                CarItem::File(p) => add_file(profile, &p, sink, progress)?,
                CarItem::Dir(sub) => sub.finish(profile, sink, progress)?,
            };
            d.add(&name, built.cid, built.dag_size)?;
        }
        d.finish(sink)
    }
}

fn add_ipfs_car(
    profile: Profile,
    path: &Path,
    opts: &WalkOptions,
    sink: &mut dyn BlockSink,
    progress: &dyn Fn(u64),
) -> Result<Built> {
    let abs = std::path::absolute(path).map_err(CarError::path(path))?;
    let md = fs::metadata(&abs).map_err(CarError::path(path))?;
    if md.is_file() && !opts.wrap {
        return add_file(profile, &abs, sink, progress);
    }
    let mut files = Vec::new();
    collect_files(&abs, opts.hidden, &mut files)?;
    let mut common: Option<PathBuf> = None;
    for f in &files {
        let parent = f.parent().unwrap_or(Path::new("/"));
        common = Some(match common {
            None => parent.to_owned(),
            Some(c) => c
                .components()
                .zip(parent.components())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    let common = common.unwrap_or_default();
    let mut named = Vec::with_capacity(files.len());
    for f in files {
        let rel = f.strip_prefix(&common).unwrap_or(&f);
        let rel = utf8(rel.as_os_str().as_bytes(), &f)?;
        named.push((rel, f));
    }
    named.sort_by(|a, b| js_order(&a.0, &b.0));
    let mut root = CarDir::default();
    for (rel, f) in named {
        root.insert(&rel, f)?;
    }
    root.finish(profile, sink, progress)
}
