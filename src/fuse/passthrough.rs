//! FUSE passthrough (Linux >= 6.9): for a file the core says lives on a
//! local disk and is opened read-only with nothing staged, the kernel is
//! handed the backing file and serves reads itself, at native speed, with no
//! round trip to us.
//!
//! Invariants: one kernel backing id per inode at a time, shared by its
//! open handles (the kernel requires it), alive until the last of them is
//! released; if the kernel refuses (no capability, not root), passthrough is
//! switched off for the mount and opens are served normally.

use fuser::BackingId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Backing ids of open handles.
#[derive(Default)]
pub struct Backings {
    enabled: AtomicBool,
    by_handle: Mutex<HashMap<u64, Arc<BackingId>>>,
    by_inode: Mutex<HashMap<u64, Weak<BackingId>>>,
}

impl Backings {
    /// Whether passthrough is negotiated and has not failed.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Turns passthrough on (at init, when the kernel accepted it) or off.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// The backing id of `ino`, created with `open` when none is alive;
    /// recorded under `fh` until [`Backings::release`].
    pub fn get_or_open(
        &self,
        ino: u64,
        fh: u64,
        open: impl FnOnce() -> std::io::Result<BackingId>,
    ) -> std::io::Result<Arc<BackingId>> {
        let mut inodes = self.by_inode.lock().unwrap_or_else(|e| e.into_inner());
        let id = match inodes.get(&ino).and_then(Weak::upgrade) {
            Some(id) => id,
            None => {
                let id = Arc::new(open()?);
                inodes.insert(ino, Arc::downgrade(&id));
                id
            }
        };
        self.by_handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, id.clone());
        Ok(id)
    }

    /// The handle `fh` is closed.
    pub fn release(&self, fh: u64) {
        let gone = self
            .by_handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh);
        if gone.is_some() {
            drop(gone);
            self.by_inode
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, w| w.strong_count() > 0);
        }
    }
}
