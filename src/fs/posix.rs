//! The entries beyond files and directories: symlinks, hard links, FIFOs,
//! sockets and device nodes. Only trees that store them (a local
//! directory, see [`Tree::stores_posix`]) hold them; elsewhere creating one
//! answers EPERM, as filesystems without such entries do.

use super::*;

impl Fs {
    /// A new name in a tree that stores special entries, or EPERM.
    fn posix_place(&self, vpath: &str) -> Res<Place> {
        let place = self.place(vpath)?;
        if place.rel.is_empty() {
            return Err(VfsError::Exists.into());
        }
        if !place.tree.stores_posix() {
            return Err(FsError::NotPermitted);
        }
        Ok(place)
    }

    /// `symlink`: `parent/name` pointing at `target`.
    pub async fn symlink(&self, parent: u64, name: &str, target: &str) -> Res<Entry> {
        let vpath = self.child(parent, name)?;
        let place = self.posix_place(&vpath)?;
        let res = place.tree.symlink(&place.rel, target).await;
        self.dirs.invalidate_parent(&vpath);
        res?;
        self.lookup(parent, name).await
    }

    /// `readlink`.
    pub async fn readlink(&self, ino: u64) -> Res<Vec<u8>> {
        let vpath = self.vpath(ino)?;
        match self.router.resolve(&vpath) {
            Resolved::Tree { tree, rel, .. } => Ok(tree.readlink(&rel).await?),
            Resolved::Synthetic(_) | Resolved::Missing => Err(VfsError::Invalid("not a symlink").into()),
        }
    }

    /// `link`: a new name `newparent/newname` for the file `ino`.
    pub async fn link(&self, ino: u64, newparent: u64, newname: &str) -> Res<Entry> {
        let from = self.vpath(ino)?;
        let to = self.child(newparent, newname)?;
        let src = self.place(&from)?;
        let dst = self.posix_place(&to)?;
        if src.mount != dst.mount {
            return Err(VfsError::CrossDevice.into());
        }
        let res = dst.tree.link(&src.rel, &dst.rel).await;
        // The source's link count changed too.
        self.dirs.invalidate_parent(&from);
        self.dirs.invalidate_parent(&to);
        res?;
        // One file, one inode: the kernel then counts the link on the inode
        // it has (as a local filesystem does).
        self.inodes.add_alias(ino, &to);
        self.lookup(newparent, newname).await
    }

    /// `mknod` of a FIFO, socket or device node (`mode` carries the type,
    /// the umask already applied); regular files go through `create`.
    pub async fn mknod_special(&self, parent: u64, name: &str, mode: u32, rdev: u64) -> Res<Entry> {
        let vpath = self.child(parent, name)?;
        let place = self.posix_place(&vpath)?;
        let res = place.tree.mknod(&place.rel, mode, rdev).await;
        self.dirs.invalidate_parent(&vpath);
        res?;
        // The host applied its own umask too: store the mode asked for.
        let set = crate::vfs::SetMeta {
            mode: Some(mode & 0o7777),
            ..Default::default()
        };
        place.tree.set_meta(&place.rel, &set).await?;
        self.dirs.invalidate_parent(&vpath);
        self.lookup(parent, name).await
    }
}
