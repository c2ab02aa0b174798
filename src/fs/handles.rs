//! Open files and directories: the handle table and the per-inode state of
//! open files (the staged copy, whether it still needs uploading).
//!
//! Invariants: all handles of one inode share one [`FileState`]; `dirty`
//! implies `staged` is present; a state stays in the table while a handle is
//! open or while it holds data not yet uploaded, and while it is in the
//! table its inode is not forgotten (see `Fs::forget`), so a later lookup,
//! rename or drain still finds the staged data. The staged copy has one
//! owner, this state: unlink and rename-over retire it under the state's
//! lock.

use super::staging::Staged;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    /// The offset of the entry after this one (what the kernel passes back).
    pub offset: u64,
    pub kind: super::Kind,
    pub name: String,
}

/// Shared state of an open file.
#[derive(Debug)]
pub struct FileState {
    pub staged: Option<Staged>,
    pub dirty: bool,
    pub unlinked: bool,
    pub opens: u32,
    pub mtime: Option<SystemTime>,
    /// An upload fed while the file is written from its start, if any.
    pub stream: Option<Streaming>,
    /// A writable handle was opened on the backing file of a direct-write
    /// mount (the kernel may write it through passthrough, unseen by us):
    /// closes tell the observer as for a write; cleared at the last close.
    pub kernel_writes: bool,
    /// Attributes stored while the file had data not yet uploaded: an
    /// upload replaces the whole object (on S3 its metadata too), so they
    /// are stored again after it (`Fs::upload_locked`).
    pub attrs_pending: Option<crate::vfs::SetMeta>,
    /// The backing file as the observer was last told of it (size, mtime
    /// and ctime in ns; see `Fs::upload_locked`): a flush and the release
    /// after it, with no write between, tell the observer once.
    pub notified: Option<Stamp>,
}

/// Size, mtime and ctime (ns) of a file: what changes when it is written.
/// (Kernels >= 6.13 give a file whose times were just read a fine-grained
/// ctime at its next change, so a write after a stat always changes it.)
pub type Stamp = (u64, i64, i64, i64, i64);

impl FileState {
    /// Remembers `set` (stored just now) to store again after the next
    /// upload, where there is staged data to upload.
    pub fn keep_attrs(&mut self, set: &crate::vfs::SetMeta) {
        if self.staged.is_none() {
            return;
        }
        let p = self.attrs_pending.get_or_insert_with(Default::default);
        p.mode = set.mode.or(p.mode);
        p.uid = set.uid.or(p.uid);
        p.gid = set.gid.or(p.gid);
        p.atime = set.atime.or(p.atime);
        p.mtime = set.mtime.or(p.mtime);
    }
}

/// A streamed upload of a file written from offset 0 on (see
/// `vfs::UploadStream`); the staged copy stays the source of truth.
#[derive(Debug)]
pub struct Streaming {
    pub upload: Box<dyn crate::vfs::UploadStream>,
    /// The offset the next streamed byte must come from.
    pub next: u64,
}

impl FileState {
    /// Marks the file as holding data not yet uploaded, on disk too (the
    /// staged copy's dirty marker, read by crash recovery).
    pub fn set_dirty(&mut self) -> std::io::Result<()> {
        if let Some(s) = self.staged.as_mut() {
            s.mark_dirty()?;
        }
        self.dirty = true;
        Ok(())
    }
}

/// A file state behind an async lock (held across staging and upload I/O).
pub type SharedState = Arc<tokio::sync::Mutex<FileState>>;

/// What a handle points at.
#[derive(Debug, Clone)]
pub enum Handle {
    File {
        ino: u64,
        writable: bool,
        state: SharedState,
        /// The cached read path, for handles opened on an unmodified file.
        reader: Option<Arc<super::reader::ReadCtx>>,
        /// The process that opened it, when known (see `Fs::opened_by`).
        opener: Option<u32>,
    },
    /// A listing snapshot taken at opendir, so offsets stay stable while entries change.
    Dir { entries: Arc<Vec<DirEntry>> },
}

/// File handles and per-inode file states.
#[derive(Debug, Default)]
pub struct Handles {
    next: AtomicU64,
    handles: Mutex<HashMap<u64, Handle>>,
    states: Mutex<HashMap<u64, SharedState>>,
}

impl Handles {
    pub fn new() -> Self {
        Self {
            next: AtomicU64::new(1),
            ..Default::default()
        }
    }

    /// Registers a handle and returns its number.
    pub fn insert(&self, h: Handle) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed);
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, h);
        fh
    }

    /// The handle `fh`.
    pub fn get(&self, fh: u64) -> Option<Handle> {
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fh)
            .cloned()
    }

    /// Notes that the file handle `fh` was opened by process `pid`.
    pub fn set_opener(&self, fh: u64, pid: u32) {
        if let Some(Handle::File { opener, .. }) = self
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&fh)
        {
            *opener = Some(pid);
        }
    }

    /// The process that opened the file handle `fh`, if it was noted.
    pub fn opener(&self, fh: u64) -> Option<u32> {
        match self.handles.lock().unwrap_or_else(|e| e.into_inner()).get(&fh) {
            Some(Handle::File { opener, .. }) => *opener,
            _ => None,
        }
    }

    /// Removes the handle `fh`.
    pub fn remove(&self, fh: u64) -> Option<Handle> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner()).remove(&fh)
    }

    /// The state of `ino`, if it has one.
    pub fn state(&self, ino: u64) -> Option<SharedState> {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&ino)
            .cloned()
    }

    /// The state of `ino`, created empty if needed.
    pub fn state_or_new(&self, ino: u64) -> SharedState {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(ino)
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(FileState {
                    staged: None,
                    dirty: false,
                    unlinked: false,
                    opens: 0,
                    mtime: None,
                    stream: None,
                    kernel_writes: false,
                    attrs_pending: None,
                    notified: None,
                }))
            })
            .clone()
    }

    /// The state of `ino` (created empty if needed), locked, and still the
    /// one in the table once the lock is held. A release that drops the
    /// state takes it out of the table under its lock, so a caller that
    /// raced with it retries with a fresh state instead of writing into an
    /// orphan (two handles on two staged copies: the later upload would
    /// wipe the earlier one's data).
    pub async fn lock_current(&self, ino: u64) -> (SharedState, tokio::sync::OwnedMutexGuard<FileState>) {
        loop {
            let state = self.state_or_new(ino);
            let guard = state.clone().lock_owned().await;
            if self.is_current(ino, &state) {
                return (state, guard);
            }
        }
    }

    fn is_current(&self, ino: u64, state: &SharedState) -> bool {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&ino)
            .is_some_and(|s| Arc::ptr_eq(s, state))
    }

    /// Drops the state of `ino` if it is still `state`. Callers hold the
    /// state's lock (see [`Handles::lock_current`]).
    pub fn drop_state(&self, ino: u64, state: &SharedState) {
        let mut m = self.states.lock().unwrap_or_else(|e| e.into_inner());
        if m.get(&ino).is_some_and(|s| Arc::ptr_eq(s, state)) {
            m.remove(&ino);
        }
    }

    /// All states (for draining uploads at shutdown and for status).
    pub fn all_states(&self) -> Vec<(u64, SharedState)> {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// Number of open handles.
    pub fn open_count(&self) -> usize {
        self.handles.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
