//! FUSE passthrough (Linux >= 6.9): for a file the core says always lives
//! in a local backing file (an `fs` mount that is read-only or takes direct
//! writes), the kernel is handed that file and serves reads, writes and
//! mmap itself, at native speed, with no round trip to us. Opens, closes,
//! getattr, truncate and fsync still come to us.
//!
//! The kernel keeps an inode either in passthrough mode or in page-cache
//! mode, and fails (EIO) an open that asks for the other one. Since the
//! core offers a backing file for every open of an inode or for none (it
//! decides per mount), mixing only happens when passthrough fails midway;
//! so, per inode: while a page-cached handle is open, new opens are
//! page-cached too; while a passthrough handle is open, new opens join its
//! backing id. One backing id per inode at a time, shared by its
//! passthrough handles, alive until the last is released. If the kernel
//! refuses a backing file, passthrough is switched off for the mount (one
//! log line) and opens are served by us.

use fuser::BackingId;
use std::collections::HashMap;
use std::fs::File;
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
    /// backing id for passthrough, or None for a page-cached open. `file`
    /// is the open backing file the core offers (None: serve it ourselves);
    /// `register` turns it into a backing id, and is called only when
    /// passthrough is possible (no page-cached handle of `ino` is open). The
    /// id is shared with the inode's other passthrough handles. A kernel
    /// refusal turns passthrough off for the mount.
    pub fn open(
        &self,
        ino: u64,
        fh: u64,
        file: Option<&File>,
        register: impl FnOnce(&File) -> std::io::Result<BackingId>,
    ) -> Option<Arc<BackingId>> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = st.by_inode.get(&ino).and_then(Weak::upgrade) {
            // The inode is in passthrough mode: any other open would fail.
            st.by_handle.insert(fh, (ino, Some(id.clone())));
            return Some(id);
        }
        if let Some(file) = file.filter(|_| self.enabled() && st.cached.get(&ino).copied().unwrap_or(0) == 0)
        {
            match register(file) {
                Ok(id) => {
                    let id = Arc::new(id);
                    st.by_inode.insert(ino, Arc::downgrade(&id));
                    st.by_handle.insert(fh, (ino, Some(id.clone())));
                    return Some(id);
                }
                Err(e) => {
                    if self.enabled.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "kernel refused FUSE passthrough; serving reads and writes ourselves from now on");
                    }
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
