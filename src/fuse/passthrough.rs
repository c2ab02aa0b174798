//! FUSE passthrough (Linux >= 6.9): for a file the core says lives on a
//! local disk and is opened read-only with nothing staged, the kernel is
//! handed the backing file and serves reads itself, at native speed, with no
//! round trip to us.
//!
//! The kernel keeps an inode either in passthrough mode or in page-cache
//! mode, and fails (EIO) an open that asks for the other one. So, per inode,
//! passthrough is offered only while no page-cached handle is open; a writer
//! that opens while a passthrough reader is open is failed by the kernel
//! (which is why passthrough is opt-in). One backing id per inode at a time,
//! shared by its passthrough handles, alive until the last is released. If
//! the kernel refuses a backing file, passthrough is switched off for the
//! mount and opens are served normally.

use fuser::BackingId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

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

    /// Decides and records how the new handle `fh` of `ino` is opened: the
    /// backing id for passthrough, or None for a page-cached open. `open`
    /// makes a backing id; it is called only when passthrough is possible
    /// (`local` is true and no page-cached handle of `ino` is open), and its
    /// result is shared with the inode's other passthrough handles.
    pub fn open(
        &self,
        ino: u64,
        fh: u64,
        local: bool,
        open: impl FnOnce() -> std::io::Result<BackingId>,
    ) -> Option<Arc<BackingId>> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if local && self.enabled() && st.cached.get(&ino).copied().unwrap_or(0) == 0 {
            let id = match st.by_inode.get(&ino).and_then(Weak::upgrade) {
                Some(id) => Ok(id),
                None => open().map(Arc::new),
            };
            match id {
                Ok(id) => {
                    st.by_inode.insert(ino, Arc::downgrade(&id));
                    st.by_handle.insert(fh, (ino, Some(id.clone())));
                    return Some(id);
                }
                Err(e) => {
                    tracing::info!(error = %e, "kernel refused passthrough; serving reads ourselves");
                    self.set_enabled(false);
                }
            }
        }
        *st.cached.entry(ino).or_insert(0) += 1;
        st.by_handle.insert(fh, (ino, None));
        None
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
