//! Local staging files: every write lands in a file under
//! `$IPFS_KIT_HOME/staging` before it is uploaded, so random writes, appends
//! and truncation work on any backend and nothing acknowledged lives only in
//! memory.
//!
//! Each staged file `<id>.data` has a sidecar `<id>.json` naming its target
//! (mount path and path inside the mount). A staged file whose upload failed
//! stays on disk with its sidecar, so it can be found and retried later.
//! A third file, `<id>.dirty`, marks a staged copy that holds data the backend
//! lacks (written or truncated). Only marked leftovers are uploaded by crash
//! recovery; an unmarked one is a clean (possibly half-made) copy and is
//! dropped, so a crash while copying an object in never truncates it.
//! A mount with direct writes (a local directory, see `config::WriteMode`)
//! uses an in-place [`Staged`] instead: the backing file itself, opened
//! read-write, with no sidecar and no marker; it has nothing to upload and
//! nothing to remove.
//! All calls here block; the core runs them with `spawn_blocking`.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where a staged file must go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Target {
    /// Mount path, e.g. `/local`.
    pub mount: String,
    /// Path inside the mount.
    pub path: String,
}

/// The staging directory.
#[derive(Debug, Clone)]
pub struct StagingDir {
    dir: PathBuf,
}

/// One staged file.
#[derive(Debug)]
pub struct Staged {
    file: Arc<File>,
    data: PathBuf,
    meta: PathBuf,
    /// True once the `<id>.dirty` marker exists.
    marked: AtomicBool,
    /// The backing file itself (direct writes), not a copy under staging.
    in_place: bool,
}

impl StagingDir {
    /// Opens (creating) the staging directory.
    pub fn new(dir: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A new, empty staged file for `target`.
    pub fn create(&self, target: &Target) -> io::Result<Staged> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let data = self.dir.join(format!("{id}.data"));
        let meta = self.dir.join(format!("{id}.json"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&data)?;
        let s = Staged {
            file: Arc::new(file),
            data,
            meta,
            marked: AtomicBool::new(false),
            in_place: false,
        };
        s.set_target(target)?;
        Ok(s)
    }

    /// Staged files left behind (by a failed upload or a crash), with their targets.
    pub fn leftovers(&self) -> io::Result<Vec<(PathBuf, Target)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "json") {
                let data = p.with_extension("data");
                let Ok(text) = std::fs::read_to_string(&p) else {
                    continue;
                };
                if let Ok(t) = serde_json::from_str::<Target>(&text) {
                    if data.exists() {
                        out.push((data, t));
                    }
                }
            }
        }
        Ok(out)
    }
}

impl StagingDir {
    /// True when the leftover `data` carries the dirty marker (it holds
    /// data the backend may lack).
    pub fn leftover_is_dirty(&self, data: &Path) -> bool {
        data.with_extension("dirty").exists()
    }

    /// Deletes a leftover found by [`StagingDir::leftovers`] (after it was
    /// uploaded, or because it was a clean copy).
    pub fn remove_leftover(&self, data: &Path) -> io::Result<()> {
        let _ = std::fs::remove_file(data.with_extension("dirty"));
        std::fs::remove_file(data.with_extension("json"))?;
        std::fs::remove_file(data)
    }
}

impl Staged {
    /// The backing file `path` of a direct-write mount, opened read-write
    /// (created if missing, owner-only until the core sets the mode asked
    /// for; emptied when `truncate`). Never through a symlink at `path`.
    pub fn in_place(path: &Path, truncate: bool) -> io::Result<Staged> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(truncate)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        Ok(Staged {
            file: Arc::new(file),
            data: path.to_path_buf(),
            meta: PathBuf::new(),
            // Never marked on disk: a crash leaves nothing to recover.
            marked: AtomicBool::new(true),
            in_place: true,
        })
    }

    /// True for the backing file itself: its writes are on the backend already.
    pub fn is_in_place(&self) -> bool {
        self.in_place
    }

    /// Records (or re-records after a rename) where this file must go.
    pub fn set_target(&self, target: &Target) -> io::Result<()> {
        if self.in_place {
            return Ok(());
        }
        let tmp = self.meta.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(target).map_err(io::Error::other)?)?;
        std::fs::rename(&tmp, &self.meta)
    }

    /// Records that this copy holds data the backend lacks (idempotent; one
    /// file creation the first time).
    pub fn mark_dirty(&self) -> io::Result<()> {
        if !self.marked.load(Ordering::Relaxed) {
            File::create(self.data.with_extension("dirty"))?;
            self.marked.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The data file's path (for uploads and log lines).
    pub fn data_path(&self) -> &Path {
        &self.data
    }

    /// A shared handle on the open data file.
    pub fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// Current length.
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// True when empty.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes the data file and its sidecar (after a successful upload);
    /// only closes an in-place file.
    pub fn discard(self) {
        if self.in_place {
            return;
        }
        let _ = std::fs::remove_file(&self.meta);
        let _ = std::fs::remove_file(self.data.with_extension("dirty"));
        let _ = std::fs::remove_file(&self.data);
    }
}

/// Reads up to `len` bytes at `offset` from a staged file.
pub fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = file.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

/// Writes all of `data` at `offset`.
pub fn write_at(file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
    file.write_all_at(data, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_lists_staged_files_with_their_targets() {
        let d = tempfile::tempdir().unwrap();
        let s = StagingDir::new(d.path().join("st")).unwrap();
        let t = Target {
            mount: "/local".into(),
            path: "a/b".into(),
        };
        let f = s.create(&t).unwrap();
        write_at(&f.file(), 3, b"xyz").unwrap();
        assert_eq!(read_at(&f.file(), 0, 10).unwrap(), b"\0\0\0xyz");
        let left = s.leftovers().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].1, t);
        f.discard();
        assert!(s.leftovers().unwrap().is_empty());
    }
}
