//! A hook for whoever follows the files of a mount (the bucket index): told
//! when a file's new bytes were stored in its backend, and when a name was
//! renamed or removed. Calls come after the backend change succeeded, on
//! the operation's task; a slow observer slows that operation (a close), so
//! observers queue their work and return, and never fail the operation.
//! An observer may also know a file's or a directory's CID (asked for
//! `user.ipfs.cid`).

use crate::vfs::{IpfsCid, Meta, Tree};
use async_trait::async_trait;
use std::fs::File;
use std::sync::Arc;

/// Follows stores, renames and removals under the mounts.
#[async_trait]
pub trait Observer: Send + Sync {
    /// The file `rel` of the mount at `mount` now holds the bytes of the
    /// open local file `file` (its staged copy, or the backing file itself;
    /// the descriptor stays readable after a rename or the copy's deletion).
    async fn stored(&self, mount: &str, tree: &Arc<dyn Tree>, rel: &str, file: Arc<File>);
    /// `from` was renamed to `to` inside the mount at `mount` (a file or a directory).
    async fn renamed(&self, mount: &str, from: &str, to: &str);
    /// The file `rel` was removed from the mount at `mount`.
    async fn removed(&self, mount: &str, rel: &str);
    /// The CID of the file or directory `rel` of the mount at `mount`,
    /// whose backend metadata is now `meta`, if the observer knows it.
    async fn cid(&self, _mount: &str, _rel: &str, _meta: &Meta) -> Option<IpfsCid> {
        None
    }
}

impl super::Fs {
    /// Tells the observer that `vpath` now holds the bytes of `file`.
    pub(super) async fn notify_stored(&self, vpath: &str, file: Arc<File>) {
        let Some(obs) = self.observer() else { return };
        if let crate::vfs::Resolved::Tree { mount, tree, rel } = self.router.resolve(vpath) {
            obs.stored(&mount, &tree, &rel, file).await;
        }
    }

    /// Tells the observer that `from` was renamed to `to` (same mount).
    pub(super) async fn notify_renamed(&self, from: &str, to: &str) {
        let Some(obs) = self.observer() else { return };
        let (crate::vfs::Resolved::Tree { mount, rel: a, .. }, crate::vfs::Resolved::Tree { rel: b, .. }) =
            (self.router.resolve(from), self.router.resolve(to))
        else {
            return;
        };
        obs.renamed(&mount, &a, &b).await;
    }

    /// Tells the observer that the file `vpath` was removed.
    pub(super) async fn notify_removed(&self, vpath: &str) {
        let Some(obs) = self.observer() else { return };
        if let crate::vfs::Resolved::Tree { mount, rel, .. } = self.router.resolve(vpath) {
            obs.removed(&mount, &rel).await;
        }
    }
}
