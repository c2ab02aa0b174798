//! Extended attributes: `user.ipfs.cid` and `user.ipfs.profile` of files
//! and directories whose CID is known without reading them (an IPFS tree's
//! entries, the `.buckets/` and `.snapshots/` trees, files of bucket mounts
//! while the backend still has the indexed version, and their directories
//! from the index; see [`crate::vfs::Tree::ipfs_cid`] and
//! [`super::observe::Observer::cid`]). No other name exists: the
//! adapter answers ENODATA for them without entering the core, since the
//! kernel asks `security.capability` before every write once getxattr is
//! answered at all. Setting or removing attributes is not supported.

use super::{Fs, Res};
use crate::vfs::{IpfsCid, Resolved};

/// The xattr holding a file's CID (text, e.g. `bafkrei...`).
pub const CID: &str = "user.ipfs.cid";
/// The xattr naming the IPIP-0499 profile the CID was computed with.
pub const PROFILE: &str = "user.ipfs.profile";
/// What every name this module answers starts with.
const PREFIX: &str = "user.ipfs.";

/// Whether `name` could be one of ours (everything else is ENODATA at once).
pub fn is_ours(name: &str) -> bool {
    name.starts_with(PREFIX)
}

impl Fs {
    /// The CID `ino` is known by, if any.
    async fn known_cid(&self, ino: u64) -> Res<Option<IpfsCid>> {
        let vpath = self.vpath(ino)?;
        let Resolved::Tree { mount, tree, rel } = self.router.resolve(&vpath) else {
            return Ok(None);
        };
        if let Some(c) = tree.ipfs_cid(&rel).await {
            return Ok(Some(c));
        }
        let Some(obs) = self.observer() else {
            return Ok(None);
        };
        // A file open with unsaved changes is no longer its indexed bytes.
        if let Some(st) = self.handles.state(ino) {
            if st.lock().await.staged.is_some() {
                return Ok(None);
            }
        }
        let (meta, _) = self.meta(&vpath).await?;
        Ok(obs.cid(&mount, &rel, &meta).await)
    }

    /// The `(name, value)` pairs of `ino`'s attributes.
    pub async fn xattrs(&self, ino: u64) -> Res<Vec<(&'static str, String)>> {
        let Some(c) = self.known_cid(ino).await? else {
            return Ok(Vec::new());
        };
        let mut out = vec![(CID, c.cid)];
        if let Some(p) = c.profile {
            out.push((PROFILE, p.to_string()));
        }
        Ok(out)
    }

    /// `getxattr`: the value of `name`, or `None` (ENODATA).
    pub async fn getxattr(&self, ino: u64, name: &str) -> Res<Option<Vec<u8>>> {
        if !is_ours(name) {
            return Ok(None);
        }
        Ok(self
            .xattrs(ino)
            .await?
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.into_bytes()))
    }

    /// `listxattr`: the names, each followed by a NUL byte.
    pub async fn listxattr(&self, ino: u64) -> Res<Vec<u8>> {
        let mut out = Vec::new();
        for (n, _) in self.xattrs(ino).await? {
            out.extend_from_slice(n.as_bytes());
            out.push(0);
        }
        Ok(out)
    }
}
