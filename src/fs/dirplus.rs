//! `readdirplus`: the names of an open directory handle, each with the
//! attributes a lookup of it would give, so the kernel needs no LOOKUP per
//! listed name.
//!
//! Invariants: every entry placed in a reply, "." and ".." excepted, counts
//! one kernel lookup of its table inode (the kernel counts it too and later
//! sends FORGET); an entry not placed is not counted. Attributes come from
//! the same places as a lookup's: the directory's fresh listing (the listing
//! cache), a stat where the tree's listings lack metadata, and the staged
//! copy of an open file, read under that file's lock as `stat_attr` does.
//! Names come from the opendir snapshot (stable offsets); a name gone since
//! then is left out rather than sent with attributes it no longer has.

use super::*;
use crate::vfs::join_rel;
use futures::StreamExt;
use std::collections::HashMap;

/// Names whose stats are fetched together: a reply's buffer (4 KiB to
/// 128 KiB, the kernel's choice) holds 25 to several hundred entries, so the
/// stats go in windows, and a full reply wastes at most one window's.
const PLUS_WINDOW: usize = 32;
/// Stats in flight at once for that window: enough to hide a remote
/// store's round trip (S3 HEADs take 5-50 ms) without a burst of requests.
const PLUS_STATS_IN_FLIGHT: usize = 16;

/// Where the attributes of one directory's children come from.
enum Source {
    /// The directory is gone (unlinked, or no longer in the mount table):
    /// so are the names it held.
    Gone,
    /// A synthetic directory: its children are mounts or synthetic directories.
    Synthetic { path: String },
    /// A directory in a tree, with its listing when that carries full metadata.
    Tree {
        path: String,
        mount: String,
        tree: Arc<dyn Tree>,
        rel: String,
        listing: Option<Listing>,
    },
}

impl Fs {
    /// `readdirplus` on the handle `fh` of the directory `dir`: entries after
    /// `offset`, handed to `add` with their lookup answer. `add` places one in
    /// the reply and returns true when the reply is full (the entry was not
    /// placed, and its lookup is taken back). A failure is returned only if
    /// nothing was placed; otherwise the reply ends early and the kernel asks
    /// again from the next offset.
    pub async fn readdirplus(
        &self,
        dir: u64,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(&DirEntry, &Entry) -> bool,
    ) -> Res<()> {
        let entries = match self.handles.get(fh) {
            Some(Handle::Dir { entries }) => entries,
            _ => return Err(FsError::BadHandle(fh)),
        };
        let rest = entries.get(offset as usize..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(());
        }
        let source = self.plus_source(dir).await?;
        let mut stats = HashMap::new();
        let mut placed = false;
        for (i, e) in rest.iter().enumerate() {
            if stats.is_empty() {
                // The next window's stats, made together (a no-op where
                // listings carry the metadata).
                stats = self.prefetch_stats(&source, &rest[i..]).await;
            }
            let (entry, counted) = if e.name == "." || e.name == ".." {
                // The kernel reads neither node id nor attributes of these
                // two and counts no lookup for them.
                let attr = attr::build(e.ino, &Meta::dir(), &Default::default(), &self.opts.owner, false);
                (self.entry(attr), false)
            } else {
                match self.plus_entry(&source, &e.name, stats.remove(&e.name)).await {
                    Ok(Some(entry)) => (entry, true),
                    Ok(None) => continue,
                    Err(_) if placed => return Ok(()),
                    Err(err) => return Err(err),
                }
            };
            if add(e, &entry) {
                if counted {
                    self.inodes.forget(entry.attr.ino, 1);
                }
                break;
            }
            placed = true;
        }
        Ok(())
    }

    /// Resolves the directory `dir` now (it may have been renamed since
    /// opendir) and fetches its listing once for the whole reply.
    async fn plus_source(&self, dir: u64) -> Res<Source> {
        let Some(path) = self.inodes.path(dir) else {
            return Ok(Source::Gone);
        };
        match self.router.resolve(&path) {
            Resolved::Missing => Ok(Source::Gone),
            Resolved::Synthetic(_) => Ok(Source::Synthetic { path }),
            Resolved::Tree { tree, rel, mount } => {
                let listing = if tree.lists_full_meta() {
                    match self.listing(&path, &tree, &rel).await {
                        Ok(l) => Some(l),
                        Err(e) if matches!(e.errno(), libc::ENOENT | libc::ENOTDIR) => {
                            return Ok(Source::Gone)
                        }
                        Err(e) => return Err(e),
                    }
                } else {
                    None
                };
                Ok(Source::Tree {
                    path,
                    mount,
                    tree,
                    rel,
                    listing,
                })
            }
        }
    }

    /// Where a tree's listings lack metadata (S3: each name is a HEAD), the
    /// stats of the next `PLUS_WINDOW` names, made concurrently rather than
    /// one after another; the reply asks for the next window when it has
    /// used this one, so at most one window's stats outlive a full reply.
    async fn prefetch_stats(
        &self,
        source: &Source,
        rest: &[DirEntry],
    ) -> HashMap<String, Result<Meta, VfsError>> {
        let Source::Tree {
            path,
            mount,
            tree,
            rel,
            listing: None,
        } = source
        else {
            return HashMap::new();
        };
        let names = rest
            .iter()
            .map(|e| e.name.as_str())
            .filter(|n| *n != "." && *n != "..")
            .take(PLUS_WINDOW);
        futures::stream::iter(names)
            .map(|name| async move {
                let child = join_rel(rel, name);
                let got = if tree.remember_stats() {
                    self.stat_remembered(mount, tree, &child, path, name).await
                } else {
                    tree.stat(&child).await
                };
                (name.to_string(), got)
            })
            .buffer_unordered(PLUS_STATS_IN_FLIGHT)
            .collect()
            .await
    }

    /// What a lookup of `name` in the source's directory answers, with the
    /// lookup counted; None if the name is gone. `stat`: the tree's stat of
    /// it, when already made.
    async fn plus_entry(
        &self,
        source: &Source,
        name: &str,
        stat: Option<Result<Meta, VfsError>>,
    ) -> Res<Option<Entry>> {
        let (cpath, found) = match source {
            Source::Gone => return Ok(None),
            Source::Synthetic { path } => {
                let cpath = join_abs(path, name);
                // A mount's root or a synthetic directory: no backend I/O.
                let found = self.meta(&cpath).await;
                (cpath, found)
            }
            Source::Tree {
                path,
                tree,
                rel,
                listing,
                ..
            } => {
                let writable = !tree.read_only();
                let found = match listing {
                    Some(l) => l
                        .binary_search_by(|(n, _)| n.as_str().cmp(name))
                        .map(|i| (l[i].1.clone(), writable))
                        .map_err(|_| VfsError::NotFound.into()),
                    None => match stat {
                        Some(done) => done,
                        None => tree.stat(&join_rel(rel, name)).await,
                    }
                    .map(|m| (m, writable))
                    .map_err(FsError::from),
                };
                (join_abs(path, name), found)
            }
        };
        let (meta, writable) = match found {
            Ok(found) => found,
            Err(e) if e.errno() == libc::ENOENT => return Ok(None),
            Err(e) => return Err(e),
        };
        let ino = self.inodes.lookup(&cpath, meta.is_dir);
        let Some(state) = self.handles.state(ino) else {
            return Ok(Some(self.entry(self.attr_with(ino, meta, writable, None))));
        };
        // An open file: stat under its lock, so an upload that ended after
        // the listing was taken is seen (as `stat_attr` does).
        let st = state.lock().await;
        match self.meta(&cpath).await {
            Ok((meta, writable)) => Ok(Some(self.entry(self.attr_with(ino, meta, writable, Some(&st))))),
            Err(e) => {
                self.inodes.forget(ino, 1);
                if e.errno() == libc::ENOENT {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }
}
