//! The kernel-cache invalidation hook, free of fuser types: the FUSE layer
//! implements [`Invalidator`] with fuser's `Notifier`; the core and the
//! control server only see this trait.

/// Drops kernel-cached directory entries.
pub trait Invalidator: Send + Sync {
    /// Forgets the cached entry `name` in the directory `parent`. A name the
    /// kernel does not hold is not an error worth reporting.
    fn inval_entry(&self, parent: u64, name: &str) -> std::io::Result<()>;
    /// Forgets the cached attributes and data pages of `ino`.
    fn inval_inode(&self, ino: u64) -> std::io::Result<()>;
}
