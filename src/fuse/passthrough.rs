//! FUSE passthrough (Linux >= 6.9): for a file the core says lives on a
//! local disk and is opened read-only with nothing staged, the kernel is
//! handed the backing file and serves reads itself, at native speed, with no
//! round trip to us.
//!
//! The kernel keeps an inode either in passthrough mode or in page-cache
//! mode, and fails (EIO) an open that asks for the other one. So, per inode:
//! passthrough is offered only while no page-cached handle is open; while a
//! passthrough handle is open, other opens (writers) get direct I/O, which
//! the kernel lets coexist with passthrough. One backing id per inode at a
//! time, shared by its passthrough handles, alive until the last is released.
//! If the kernel refuses a backing file, passthrough is switched off for the
//! mount and opens are served normally.

use fuser::BackingId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// How a handle was opened, as the kernel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// The kernel reads the backing file itself.
    Passthrough,
    /// Requests come to us, through the page cache.
    Cached,
    /// Requests come to us, bypassing the page cache (coexists with passthrough).
    Direct,
}

#[derive(Default)]
struct State {
    by_handle: HashMap<u64, (u64, Option<Arc<BackingId>>)>,
    by_inode: HashMap<u64, Weak<BackingId>>,
    cached: HashMap<u64, u32>,
}

/// Io modes and backing ids of open handles.
#[derive(Default)]
pub struct Backings {
    enabled: AtomicBool,
    state: Mutex<State>,
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

    /// Decides and records the io mode of the new handle `fh` of `ino`.
    /// `open` makes a backing id; it is called only when passthrough is
    /// possible (`local` is true and no page-cached handle of `ino` is open),
    /// and its result is shared with the inode's other passthrough handles.
    pub fn open(
        &self,
        ino: u64,
        fh: u64,
        local: bool,
        open: impl FnOnce() -> std::io::Result<BackingId>,
    ) -> (IoMode, Option<Arc<BackingId>>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let live = st.by_inode.get(&ino).and_then(Weak::upgrade);
        if local && self.enabled() && st.cached.get(&ino).copied().unwrap_or(0) == 0 {
            let id = match live.clone() {
                Some(id) => Ok(id),
                None => open().map(Arc::new),
            };
            match id {
                Ok(id) => {
                    st.by_inode.insert(ino, Arc::downgrade(&id));
                    st.by_handle.insert(fh, (ino, Some(id.clone())));
                    return (IoMode::Passthrough, Some(id));
                }
                Err(e) => {
                    tracing::info!(error = %e, "kernel refused passthrough; serving reads ourselves");
                    self.set_enabled(false);
                }
            }
        }
        if live.is_some() {
            return (IoMode::Direct, None);
        }
        *st.cached.entry(ino).or_insert(0) += 1;
        st.by_handle.insert(fh, (ino, None));
        (IoMode::Cached, None)
    }

    /// The handle `fh` is closed.
    pub fn release(&self, fh: u64) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match st.by_handle.remove(&fh) {
            Some((ino, None)) => {
                if let Some(n) = st.cached.get_mut(&ino) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        st.cached.remove(&ino);
                    }
                }
            }
            Some((_, Some(id))) => {
                drop(id);
                st.by_inode.retain(|_, w| w.strong_count() > 0);
            }
            None => {}
        }
    }
}
