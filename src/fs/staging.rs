//! Local staging files: every write lands in a file under
//! `$IPFS_KIT_HOME/staging` before it is uploaded, so random writes, appends
//! and truncation work on any backend and nothing acknowledged lives only in
//! memory.
//!
//! Each staged file `<id>.data` has a sidecar `<id>.json` (a [`Target`]):
//! the mount path and the path inside it, the identity of the backend it
//! belongs to, and the [`Base`] it was made from (the object's version, or
//! its size and time, when the copy was made or last uploaded). Crash
//! recovery uploads a leftover only where the object is still at that base.
//!
//! A third file, `<id>.dirty`, marks a staged copy that holds data the
//! backend lacks (written or truncated); it is removed again once an upload
//! succeeds. Only marked leftovers are uploaded by crash recovery; an
//! unmarked one is a clean (possibly half-made) copy and is dropped, so a
//! crash while copying an object in never truncates it. When an upload fails
//! the copy is sealed: its bytes are fsynced first, then the marker is
//! rewritten (atomically) with their length and XXH3-128 checksum, which
//! recovery checks, so a power loss cannot turn into a truncated upload over
//! good data. Before the seal (and again from the first write after one) the
//! marker holds the id of the boot the bytes were written in: recovery in
//! the same boot (the daemon was killed; the page cache is whole) trusts the
//! bytes, after a reboot it keeps them only as a conflict copy.
//!
//! One owner: a [`Staged`] belongs to one file state; unlinking the file
//! (or losing it to a rename over it) [`Staged::retire`]s it, which removes
//! all three files at once while the open descriptor keeps serving reads.
//!
//! A mount with direct writes (a local directory, see `config::WriteMode`)
//! uses an in-place [`Staged`] instead: the backing file itself, opened
//! read-write, with no sidecar and no marker; it has nothing to upload and
//! nothing to remove.
//! Calls here block on local disk I/O.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// Where a staged file must go, and what it was based on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Target {
    /// Mount path, e.g. `/local`.
    pub mount: String,
    /// Path inside the mount.
    pub path: String,
    /// The identity of the backend (`Tree::identity`): recovery writes only
    /// into a backend with the same identity, whatever is mounted at `mount`
    /// by then. Absent in sidecars from before it was recorded.
    #[serde(default)]
    pub backend: Option<String>,
    /// The object the staged bytes replace.
    #[serde(default)]
    pub base: Base,
}

/// The version of the object a staged copy was made from (or last uploaded as).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Base {
    /// Not known (the stat failed, or an old sidecar): recovery never
    /// overwrites the object and keeps the bytes as a conflict copy.
    #[default]
    Unknown,
    /// There was no object.
    Absent,
    /// The object as a stat saw it.
    Object {
        size: u64,
        mtime: Option<SystemTime>,
        version: Option<String>,
    },
}

impl Base {
    /// The base an object's metadata describes.
    pub fn of(meta: &crate::vfs::Meta) -> Base {
        Base::Object {
            size: meta.size,
            mtime: meta.mtime,
            version: meta.version.clone(),
        }
    }

    /// True when `now` (the object's metadata now, None when it is absent)
    /// is still this base: same version where both have one, else same size
    /// and modification time; a tree with neither (memory) by size alone.
    pub fn matches(&self, now: Option<&crate::vfs::Meta>) -> bool {
        match (self, now) {
            (Base::Absent, None) => true,
            (Base::Object { size, mtime, version }, Some(m)) if !m.is_dir => match (version, &m.version) {
                (Some(a), Some(b)) => a == b,
                _ => *size == m.size && *mtime == m.mtime,
            },
            _ => false,
        }
    }
}

/// What a sealed marker records about the staged bytes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Seal {
    pub len: u64,
    /// XXH3-128 of the bytes, as hex.
    #[serde(with = "hex128")]
    pub xxh3: u128,
}

mod hex128 {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:032x}"))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let t = String::deserialize(d)?;
        u128::from_str_radix(&t, 16).map_err(serde::de::Error::custom)
    }
}

/// The state of a leftover's dirty marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// No marker: a clean copy.
    Clean,
    /// Marked, not sealed (written, then the process died before a close),
    /// with the boot the bytes were written in: in the same boot a killed
    /// process leaves the page cache whole; after a reboot they may be torn.
    Dirty { boot_id: Option<String> },
    /// Sealed by a failed upload.
    Sealed(Seal),
}

/// A marker's content, as written.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum MarkerText {
    Sealed(Seal),
    Dirty { boot_id: String },
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), if the kernel has one.
pub fn boot_id() -> Option<&'static str> {
    static ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
    })
    .as_deref()
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
    target: Target,
    /// The marker exists on disk (empty or sealed).
    marked: bool,
    /// The marker holds a seal.
    sealed: bool,
    /// The base must be read again before the copy is marked dirty (an
    /// upload replaced the object the recorded base names).
    stale_base: bool,
    /// The files were removed from staging (see [`Staged::retire`]).
    retired: bool,
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
    pub fn create(&self, target: Target) -> io::Result<Staged> {
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
            target,
            marked: false,
            sealed: false,
            stale_base: false,
            retired: false,
            in_place: false,
        };
        s.write_sidecar()?;
        Ok(s)
    }

    /// Staged files left behind (by a failed upload or a crash), with their targets.
    pub fn leftovers(&self) -> io::Result<Vec<(PathBuf, Target)>> {
        Ok(self.scan()?.leftovers)
    }

    /// Staged data files whose record of where they go (the `.json` beside
    /// them) is missing or unreadable, so they cannot be uploaded: the bytes
    /// are kept for a person to look at and are counted as left staged. An
    /// empty one without a dirty marker holds nothing (a crash between
    /// creating it and recording its target) and is deleted here.
    pub fn orphans(&self) -> io::Result<Vec<PathBuf>> {
        Ok(self.scan()?.orphans)
    }

    /// One pass over the directory: each data file with its readable
    /// target, or an orphan (see [`StagingDir::orphans`]; empty ones are
    /// deleted here).
    pub fn scan(&self) -> io::Result<Scan> {
        let mut found = Scan::default();
        for e in std::fs::read_dir(&self.dir)? {
            let data = e?.path();
            if data.extension().is_none_or(|x| x != "data") {
                continue;
            }
            let target = std::fs::read(data.with_extension("json"))
                .ok()
                .and_then(|t| serde_json::from_slice::<Target>(&t).ok());
            if let Some(t) = target {
                found.leftovers.push((data, t));
                continue;
            }
            let empty = std::fs::metadata(&data).map(|m| m.len() == 0).unwrap_or(false);
            if empty && !self.leftover_is_dirty(&data) {
                let _ = std::fs::remove_file(&data);
                continue;
            }
            found.orphans.push(data);
        }
        Ok(found)
    }

    /// The marker of the leftover `data`.
    pub fn marker(&self, data: &Path) -> Marker {
        match std::fs::read(data.with_extension("dirty")) {
            Err(_) => Marker::Clean,
            Ok(text) => match serde_json::from_slice(&text) {
                Ok(MarkerText::Sealed(seal)) => Marker::Sealed(seal),
                Ok(MarkerText::Dirty { boot_id }) => Marker::Dirty {
                    boot_id: Some(boot_id),
                },
                // Empty (an older layout) or torn: the boot is not known.
                Err(_) => Marker::Dirty { boot_id: None },
            },
        }
    }

    /// True when the leftover `data` carries the dirty marker (it holds
    /// data the backend may lack).
    pub fn leftover_is_dirty(&self, data: &Path) -> bool {
        self.marker(data) != Marker::Clean
    }

    /// Deletes a leftover found by [`StagingDir::leftovers`] (after it was
    /// uploaded, or because it was a clean copy).
    pub fn remove_leftover(&self, data: &Path) -> io::Result<()> {
        let _ = std::fs::remove_file(data.with_extension("dirty"));
        std::fs::remove_file(data.with_extension("json"))?;
        std::fs::remove_file(data)
    }
}

/// What [`StagingDir::scan`] found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Data files with their targets.
    pub leftovers: Vec<(PathBuf, Target)>,
    /// Data files without a readable target (kept, never uploaded).
    pub orphans: Vec<PathBuf>,
}

/// Length and XXH3-128 of the file at `path`.
pub fn seal_of(path: &Path) -> io::Result<Seal> {
    let mut f = File::open(path)?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    // Read size: large enough to hash at memory speed, small enough for the stack of a blocking thread.
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok(Seal {
        len,
        xxh3: h.digest128(),
    })
}

/// Writes `bytes` to `path` through a temporary file, fsynced, renamed over
/// it, and the directory fsynced: after a crash the file holds the old or
/// the new content, whole.
fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
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
        Ok(Self::in_place_file(file, path))
    }

    /// [`Staged::in_place`] for a backing file the tree opened itself
    /// (beneath its root); `path` names it in messages.
    pub fn in_place_file(file: File, path: &Path) -> Staged {
        Staged {
            file: Arc::new(file),
            data: path.to_path_buf(),
            meta: PathBuf::new(),
            target: Target {
                mount: String::new(),
                path: String::new(),
                backend: None,
                base: Base::Unknown,
            },
            // Never marked on disk: a crash leaves nothing to recover.
            marked: true,
            sealed: false,
            stale_base: false,
            retired: false,
            in_place: true,
        }
    }

    /// True for the backing file itself: its writes are on the backend already.
    pub fn is_in_place(&self) -> bool {
        self.in_place
    }

    fn write_sidecar(&self) -> io::Result<()> {
        if self.in_place || self.retired {
            return Ok(());
        }
        let tmp = self.meta.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&self.target).map_err(io::Error::other)?)?;
        std::fs::rename(&tmp, &self.meta)
    }

    /// Records (or re-records after a rename) where this file must go.
    pub fn set_target(&mut self, mount: &str, path: &str) -> io::Result<()> {
        self.target.mount = mount.to_string();
        self.target.path = path.to_string();
        self.write_sidecar()
    }

    /// Records the object version the staged bytes replace.
    pub fn set_base(&mut self, base: Base) -> io::Result<()> {
        self.stale_base = false;
        self.target.base = base;
        self.write_sidecar()
    }

    /// True when the recorded base is out of date (an upload replaced the
    /// object since): read it again before marking the copy dirty.
    pub fn base_is_stale(&self) -> bool {
        self.stale_base && !self.in_place
    }

    /// Records that this copy holds data the backend lacks: creates the
    /// marker the first time, empties a sealed one (the bytes change now).
    pub fn mark_dirty(&mut self) -> io::Result<()> {
        if self.retired || (self.marked && !self.sealed) {
            return Ok(());
        }
        let text = match boot_id() {
            Some(id) => serde_json::to_vec(&MarkerText::Dirty {
                boot_id: id.to_string(),
            })
            .map_err(io::Error::other)?,
            None => Vec::new(),
        };
        std::fs::write(self.data.with_extension("dirty"), text)?;
        self.marked = true;
        self.sealed = false;
        Ok(())
    }

    /// After a failed upload: makes the bytes and the sidecar durable, then
    /// records their length and checksum in the marker (see the module doc).
    pub fn seal(&mut self) -> io::Result<()> {
        if self.in_place || self.retired || self.sealed {
            return Ok(());
        }
        self.file.sync_all()?;
        // The sidecar too: a copy whose sidecar a power loss took is never found.
        write_durably(
            &self.meta,
            &serde_json::to_vec(&self.target).map_err(io::Error::other)?,
        )?;
        let seal = seal_of(&self.data)?;
        write_durably(
            &self.data.with_extension("dirty"),
            &serde_json::to_vec(&seal).map_err(io::Error::other)?,
        )?;
        self.marked = true;
        self.sealed = true;
        Ok(())
    }

    /// After a successful upload: the backend holds these bytes, so the
    /// marker goes and the recorded base is out of date.
    pub fn uploaded(&mut self) {
        if self.in_place || self.retired {
            return;
        }
        if self.marked {
            let _ = std::fs::remove_file(self.data.with_extension("dirty"));
        }
        self.marked = false;
        self.sealed = false;
        self.stale_base = true;
    }

    /// The file was unlinked (or replaced by a rename): its staged files go
    /// from disk now, so nothing recovers them; the open descriptor keeps
    /// serving reads and writes of handles still open.
    pub fn retire(&mut self) {
        if self.in_place || self.retired {
            return;
        }
        let _ = std::fs::remove_file(&self.meta);
        let _ = std::fs::remove_file(self.data.with_extension("dirty"));
        let _ = std::fs::remove_file(&self.data);
        self.retired = true;
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
    pub fn discard(mut self) {
        self.retire();
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
    fn orphans_are_data_files_without_a_readable_target_and_empty_ones_go() {
        let d = tempfile::tempdir().unwrap();
        let s = StagingDir::new(d.path().join("st")).unwrap();
        let t = Target {
            mount: "/local".into(),
            path: "a".into(),
            backend: None,
            base: Base::Absent,
        };
        let kept = s.create(t.clone()).unwrap();
        write_at(&kept.file(), 0, b"ok").unwrap();
        let torn = s.create(t.clone()).unwrap();
        write_at(&torn.file(), 0, b"bytes nobody may lose").unwrap();
        std::fs::write(torn.data.with_extension("json"), b"{\"mount\": \"/lo").unwrap();
        let lost = s.create(t).unwrap();
        write_at(&lost.file(), 0, b"more").unwrap();
        std::fs::remove_file(lost.data.with_extension("json")).unwrap();
        let empty = d.path().join("st/0123.data");
        std::fs::write(&empty, b"").unwrap();
        let mut orphans = s.orphans().unwrap();
        orphans.sort();
        let mut want = vec![torn.data.clone(), lost.data.clone()];
        want.sort();
        assert_eq!(orphans, want);
        assert!(!empty.exists(), "an empty data file without a target is removed");
        assert_eq!(
            s.leftovers().unwrap().len(),
            1,
            "only the readable one is a leftover"
        );
    }

    #[test]
    fn leftovers_lists_staged_files_with_their_targets() {
        let d = tempfile::tempdir().unwrap();
        let s = StagingDir::new(d.path().join("st")).unwrap();
        let t = Target {
            mount: "/local".into(),
            path: "a/b".into(),
            backend: Some("fs:/x".into()),
            base: Base::Absent,
        };
        let f = s.create(t.clone()).unwrap();
        write_at(&f.file(), 3, b"xyz").unwrap();
        assert_eq!(read_at(&f.file(), 0, 10).unwrap(), b"\0\0\0xyz");
        let left = s.leftovers().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].1, t);
        f.discard();
        assert!(s.leftovers().unwrap().is_empty());
    }

    #[test]
    fn a_seal_records_length_and_checksum_and_a_later_write_unseals_it() {
        let d = tempfile::tempdir().unwrap();
        let s = StagingDir::new(d.path().join("st")).unwrap();
        let t = Target {
            mount: "/m".into(),
            path: "f".into(),
            backend: None,
            base: Base::Absent,
        };
        let mut f = s.create(t).unwrap();
        let data = f.data_path().to_path_buf();
        assert_eq!(s.marker(&data), Marker::Clean);
        write_at(&f.file(), 0, b"hello").unwrap();
        f.mark_dirty().unwrap();
        let dirty = Marker::Dirty {
            boot_id: boot_id().map(str::to_string),
        };
        assert_eq!(s.marker(&data), dirty);
        f.seal().unwrap();
        let Marker::Sealed(seal) = s.marker(&data) else {
            panic!("not sealed")
        };
        assert_eq!(seal.len, 5);
        assert_eq!(seal, seal_of(&data).unwrap());
        // A torn copy (power loss) no longer matches its seal.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&data)
            .unwrap()
            .set_len(2)
            .unwrap();
        assert_ne!(seal, seal_of(&data).unwrap());
        f.mark_dirty().unwrap();
        assert_eq!(s.marker(&data), dirty);
        f.uploaded();
        assert_eq!(s.marker(&data), Marker::Clean);
        assert!(f.base_is_stale());
        f.retire();
        assert!(!data.exists());
        assert!(s.leftovers().unwrap().is_empty());
    }

    #[test]
    fn a_base_matches_the_same_version_or_the_same_size_and_time() {
        use crate::vfs::Meta;
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(7);
        let m = |v: Option<&str>, size| Meta {
            is_dir: false,
            size,
            mtime: Some(t),
            version: v.map(str::to_string),
            ..Default::default()
        };
        let b = Base::of(&m(Some("e1"), 3));
        assert!(b.matches(Some(&m(Some("e1"), 3))));
        assert!(!b.matches(Some(&m(Some("e2"), 3))));
        assert!(!b.matches(None));
        let b = Base::of(&m(None, 3));
        assert!(b.matches(Some(&m(None, 3))));
        assert!(!b.matches(Some(&m(None, 4))));
        assert!(Base::Absent.matches(None));
        assert!(!Base::Absent.matches(Some(&m(None, 0))));
        assert!(!Base::Unknown.matches(None));
    }
}
