//! [`Invalidator`] over fuser's `Notifier`: the only place the core's
//! invalidation hook meets the kernel.

use crate::fs::Invalidator;
use fuser::{INodeNo, Notifier};
use std::ffi::OsStr;

/// Sends FUSE_NOTIFY_INVAL_ENTRY through the session's channel.
pub struct NotifierInvalidator {
    notifier: Notifier,
}

impl NotifierInvalidator {
    pub fn new(notifier: Notifier) -> Self {
        Self { notifier }
    }
}

impl Invalidator for NotifierInvalidator {
    fn inval_entry(&self, parent: u64, name: &str) -> std::io::Result<()> {
        self.notifier.inval_entry(INodeNo(parent), OsStr::new(name))
    }

    fn inval_inode(&self, ino: u64) -> std::io::Result<()> {
        // Offset 0, length 0: every cached page, and the attributes.
        self.notifier.inval_inode(INodeNo(ino), 0, 0)
    }
}
