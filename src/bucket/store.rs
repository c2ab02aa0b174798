//! Where the index, journal, manifest and snapshots live: one small
//! interface ([`Store`]) with read, write-only-if-unchanged-since-read, and
//! append. [`LocalStore`] keeps them under `$IPFS_KIT_HOME/vfs/`; a store on
//! a bucket's own backend (S3 `If-Match` / `If-None-Match`) can implement
//! the same interface later, so several hosts mounting one bucket see one
//! index.
//!
//! Invariants (local): a write goes to a temporary file in the same
//! directory, is fsynced, then renamed over the key, and the directory is
//! fsynced, so a key holds either its old or its new bytes, never a mix; a
//! conditional write compares the key's current version under the store's
//! lock first and writes nothing on a mismatch.

use super::error::{BucketError, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An opaque version of a key's contents as last read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(String);

/// What a conditional write expects to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Write whatever is there.
    Any,
    /// Only if the key does not exist.
    Absent,
    /// Only if the key is still at this version.
    At(Version),
}

/// The storage of bucket metadata, addressed by `/`-separated keys.
pub trait Store: Send + Sync {
    /// The key's bytes and version, or `None` if it does not exist.
    fn read(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>>;
    /// Replaces the key's bytes if `expect` holds; the new version.
    fn write(&self, key: &str, data: &[u8], expect: Expect) -> Result<Version>;
    /// Appends bytes to the key (created if missing), without fsync: the
    /// caller calls [`Store::sync`] when it needs them durable.
    fn append(&self, key: &str, data: &[u8]) -> Result<()>;
    /// Makes earlier appends to the key durable.
    fn sync(&self, key: &str) -> Result<()>;
    /// Removes the key (absent is fine).
    fn remove(&self, key: &str) -> Result<()>;
    /// Renames the key to `<key>.<why>-<unix seconds>` so a bad file is kept
    /// for inspection and never overwritten; the new key.
    fn move_aside(&self, key: &str, why: &str) -> Result<String>;
    /// Keys under the prefix `dir/` (one level), sorted.
    fn list(&self, dir: &str) -> Result<Vec<String>>;
    /// The local file behind a key, where there is one (for serving it in
    /// the `.buckets/` tree).
    fn local_path(&self, key: &str) -> Option<PathBuf>;
}

/// A [`Store`] in a local directory.
pub struct LocalStore {
    root: PathBuf,
    lock: Mutex<()>,
}

fn version_of(meta: &fs::Metadata) -> Version {
    Version(format!(
        "{}-{}-{}.{}",
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}

impl LocalStore {
    /// A store rooted at `root` (created when first written).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            lock: Mutex::new(()),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn current(&self, path: &Path) -> Result<Option<Version>> {
        match fs::metadata(path) {
            Ok(m) => Ok(Some(version_of(&m))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BucketError::io(path)(e)),
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(BucketError::io(dir))
}

impl Store for LocalStore {
    fn read(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>> {
        let path = self.path(key);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BucketError::io(&path)(e)),
        };
        let meta = f.metadata().map_err(BucketError::io(&path))?;
        let mut data = Vec::with_capacity(meta.len() as usize);
        std::io::Read::read_to_end(&mut f, &mut data).map_err(BucketError::io(&path))?;
        Ok(Some((data, version_of(&meta))))
    }

    fn write(&self, key: &str, data: &[u8], expect: Expect) -> Result<Version> {
        let path = self.path(key);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.current(&path)?;
        let ok = match &expect {
            Expect::Any => true,
            Expect::Absent => now.is_none(),
            Expect::At(v) => now.as_ref() == Some(v),
        };
        if !ok {
            return Err(BucketError::Conflict(path.display().to_string()));
        }
        fs::create_dir_all(&dir).map_err(BucketError::io(&dir))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("key"),
            std::process::id()
        ));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(BucketError::io(&tmp)(e));
        }
        fs::rename(&tmp, &path).map_err(BucketError::io(&path))?;
        sync_dir(&dir)?;
        let meta = fs::metadata(&path).map_err(BucketError::io(&path))?;
        Ok(version_of(&meta))
    }

    fn append(&self, key: &str, data: &[u8]) -> Result<()> {
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(BucketError::io(dir))?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(BucketError::io(&path))?;
        f.write_all(data).map_err(BucketError::io(&path))
    }

    fn sync(&self, key: &str) -> Result<()> {
        let path = self.path(key);
        match File::open(&path) {
            Ok(f) => f.sync_data().map_err(BucketError::io(&path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BucketError::io(&path)(e)),
        }
    }

    fn remove(&self, key: &str) -> Result<()> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BucketError::io(&path)(e)),
        }
    }

    fn move_aside(&self, key: &str, why: &str) -> Result<String> {
        let secs = super::row::now_ms() / 1000;
        let new_key = format!("{key}.{why}-{secs}");
        let (from, to) = (self.path(key), self.path(&new_key));
        fs::rename(&from, &to).map_err(BucketError::io(&from))?;
        Ok(new_key)
    }

    fn list(&self, dir: &str) -> Result<Vec<String>> {
        let path = self.path(dir);
        let rd = match fs::read_dir(&path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(BucketError::io(&path)(e)),
        };
        let mut out: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(|n| format!("{dir}/{n}")))
            .collect();
        out.sort();
        Ok(out)
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        Some(self.path(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_write_refuses_when_key_changed_since_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        assert!(s.read("a/k").unwrap().is_none());
        let v1 = s.write("a/k", b"one", Expect::Absent).unwrap();
        assert!(s.write("a/k", b"x", Expect::Absent).is_err());
        let (data, v) = s.read("a/k").unwrap().unwrap();
        assert_eq!((data.as_slice(), &v), (&b"one"[..], &v1));
        let v2 = s.write("a/k", b"two", Expect::At(v1.clone())).unwrap();
        let err = s.write("a/k", b"three", Expect::At(v1)).unwrap_err();
        assert!(matches!(err, BucketError::Conflict(_)));
        assert_eq!(s.read("a/k").unwrap().unwrap(), (b"two".to_vec(), v2));
        let aside = s.move_aside("a/k", "corrupt").unwrap();
        assert!(aside.starts_with("a/k.corrupt-"));
        assert!(s.read("a/k").unwrap().is_none());
        assert_eq!(s.list("a").unwrap(), vec![aside]);
    }
}
