//! One indexed file: what the index, the journal and the listings carry.
//!
//! `path` is relative to the bucket's root, `/`-separated, without a leading
//! slash; the index keeps rows sorted by it. The derived columns of the
//! Parquet file (`file_id`, `name`, `vfs_path`, `mime_type`, ...) are computed
//! from a row when the file is written, not stored twice here.

use serde::{Deserialize, Serialize};

/// The only kind indexed today: regular files. Directories exist in a
/// bucket's DAG as the parents of its files (empty directories are not part
/// of it, as with ipfs-car).
pub const KIND_FILE: &str = "file";

/// One file of a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Path inside the bucket, e.g. `docs/a.txt`.
    pub path: String,
    /// Root CID of the file's UnixFS DAG under the bucket's profile.
    pub cid: String,
    /// Content bytes.
    pub size: u64,
    /// Cumulative DAG bytes (the `Tsize` its parent directory links with).
    pub dag_size: u64,
    /// Modification time in the backend, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ms: Option<i64>,
    /// The backend's version of the object (etag) when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// When the row was indexed, milliseconds since the epoch.
    pub indexed_ms: i64,
}

impl Row {
    /// The file name (last path component).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// Whether the backend's current metadata still describes the indexed
    /// bytes: same size, and the same etag where both have one, else the
    /// same mtime.
    pub fn matches(&self, size: u64, mtime_ms: Option<i64>, etag: Option<&str>) -> bool {
        if size != self.size {
            return false;
        }
        match (self.etag.as_deref(), etag) {
            (Some(a), Some(b)) => a == b,
            _ => self.mtime_ms.is_some() && self.mtime_ms == mtime_ms,
        }
    }
}

/// Milliseconds since the epoch of `t` (0 before it).
pub fn millis(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    millis(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            path: "a/b.txt".into(),
            cid: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku".into(),
            size: 3,
            dag_size: 3,
            mtime_ms: Some(1000),
            etag: None,
            indexed_ms: 5,
        }
    }

    #[test]
    fn matches_uses_etag_when_both_have_one_else_mtime() {
        let mut r = row();
        assert!(r.matches(3, Some(1000), None));
        assert!(!r.matches(4, Some(1000), None));
        assert!(!r.matches(3, Some(1001), None));
        r.etag = Some("e1".into());
        assert!(r.matches(3, Some(9), Some("e1")));
        assert!(!r.matches(3, Some(1000), Some("e2")));
        assert_eq!(r.name(), "b.txt");
    }
}
