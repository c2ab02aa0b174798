//! Directory handles of the core: a listing snapshot per `opendir`, so
//! offsets stay stable while entries change.

use super::*;

impl Fs {
    /// `opendir`: snapshots the listing so offsets stay stable.
    pub async fn opendir(&self, ino: u64) -> Res<Opened> {
        let vpath = self.vpath(ino)?;
        let children: Vec<(String, Kind)> = match self.router.resolve(&vpath) {
            Resolved::Synthetic(names) => names.into_iter().map(|n| (n, Kind::Dir)).collect(),
            Resolved::Tree { tree, rel, .. } => self
                .listing(&vpath, &tree, &rel)
                .await?
                .iter()
                .map(|(n, m)| (n.clone(), Kind::of(m)))
                .collect(),
            Resolved::Missing => return Err(VfsError::NotFound.into()),
        };
        let mut entries = Vec::with_capacity(children.len() + 2);
        entries.push(DirEntry {
            ino,
            offset: 1,
            kind: Kind::Dir,
            name: ".".into(),
        });
        entries.push(DirEntry {
            ino,
            offset: 2,
            kind: Kind::Dir,
            name: "..".into(),
        });
        for (name, kind) in children {
            let cpath = join_abs(&vpath, &name);
            let cino = self.inodes.peek(&cpath).unwrap_or_else(|| pseudo_ino(&cpath));
            let offset = entries.len() as u64 + 1;
            entries.push(DirEntry {
                ino: cino,
                offset,
                kind,
                name,
            });
        }
        let fh = self.handles.insert(Handle::Dir {
            entries: Arc::new(entries),
        });
        Ok(Opened {
            fh,
            keep_cache: false,
            backing: None,
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
}

/// An inode number for a listed entry the kernel has not looked up yet (only
/// shown in `d_ino`; the top bit keeps it apart from table numbers).
fn pseudo_ino(path: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    h.finish() | (1 << 63)
}
