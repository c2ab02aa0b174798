//! POSIX attributes of S3 objects, kept as object user metadata under the
//! names and in the formats s3fs uses, so s3fs (and rclone, for `mtime`)
//! and this mount show the same attributes for the same object:
//!
//! - `x-amz-meta-mode`: the whole `st_mode` (file type and permission bits)
//!   in decimal, e.g. `33261` for an executable file, `41471` for a symlink;
//! - `x-amz-meta-uid`, `x-amz-meta-gid`: decimal ids;
//! - `x-amz-meta-mtime`, `-atime`, `-ctime`: seconds since the epoch,
//!   followed by `.` and nine digits of nanoseconds when not whole (what
//!   s3fs writes); any number of fraction digits is read (rclone trims
//!   trailing zeros).
//!
//! Keys here are without the `x-amz-meta-` prefix and lower case, as opendal
//! hands them. A symlink is an object whose body is the target and whose
//! mode has the `S_IFLNK` type (s3fs's layout). Objects without these keys
//! (written by other tools) keep the defaults the core shows.

use super::{Meta, SetMeta};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// User metadata of one object (keys without the `x-amz-meta-` prefix).
pub type UserMeta = HashMap<String, String>;

pub const MODE: &str = "mode";
pub const UID: &str = "uid";
pub const GID: &str = "gid";
pub const MTIME: &str = "mtime";
pub const ATIME: &str = "atime";
pub const CTIME: &str = "ctime";

/// File types an object may stand for: s3fs keeps symlinks, FIFOs and
/// sockets as objects; device nodes are not kept (the mount is `nodev`),
/// so any other type read from metadata is shown as a regular file.
const FILE_TYPES: [u32; 4] = [libc::S_IFREG, libc::S_IFLNK, libc::S_IFIFO, libc::S_IFSOCK];

/// Fills the POSIX fields of `meta` from an object's user metadata; keys
/// that are missing or do not parse leave the field as it was.
pub fn apply(meta: &mut Meta, user: &UserMeta) {
    if let Some(mode) = user.get(MODE).and_then(|v| v.trim().parse::<u32>().ok()) {
        meta.mode = Some(full_mode(mode, meta.is_dir));
    }
    if let Some(uid) = user.get(UID).and_then(|v| v.trim().parse().ok()) {
        meta.uid = Some(uid);
    }
    if let Some(gid) = user.get(GID).and_then(|v| v.trim().parse().ok()) {
        meta.gid = Some(gid);
    }
    if let Some(t) = user.get(MTIME).and_then(|v| parse_time(v)) {
        meta.mtime = Some(t);
    }
    if let Some(t) = user.get(ATIME).and_then(|v| parse_time(v)) {
        meta.atime = Some(t);
    }
    if let Some(t) = user.get(CTIME).and_then(|v| parse_time(v)) {
        meta.ctime = Some(t);
    }
}

/// A stored mode made consistent with what the object is: a directory
/// marker is a directory whatever its mode says, and a file shows one of
/// [`FILE_TYPES`] (a mode without type bits is a regular file).
fn full_mode(mode: u32, is_dir: bool) -> u32 {
    let perm = mode & 0o7777;
    let kind = mode & libc::S_IFMT;
    if is_dir {
        libc::S_IFDIR | perm
    } else if FILE_TYPES.contains(&kind) {
        kind | perm
    } else {
        libc::S_IFREG | perm
    }
}

/// `user` with the changes of `set` applied, for an object of type `kind`
/// (`S_IFMT` bits) last modified at `modified`. The modification time is
/// pinned (to the stored one, else `modified`) unless `set` changes it,
/// because rewriting the metadata gives the object a new Last-Modified;
/// `ctime` becomes `now`, as a change of attributes changes it on a host.
pub fn merged(
    user: &UserMeta,
    set: &SetMeta,
    kind: u32,
    modified: Option<SystemTime>,
    now: SystemTime,
) -> UserMeta {
    let mut out = user.clone();
    if let Some(perm) = set.mode {
        out.insert(MODE.into(), (kind | (perm & 0o7777)).to_string());
    }
    if let Some(uid) = set.uid {
        out.insert(UID.into(), uid.to_string());
    }
    if let Some(gid) = set.gid {
        out.insert(GID.into(), gid.to_string());
    }
    match (set.mtime, modified) {
        (Some(t), _) => {
            out.insert(MTIME.into(), format_time(t));
        }
        (None, Some(t)) if !out.contains_key(MTIME) => {
            out.insert(MTIME.into(), format_time(t));
        }
        _ => {}
    }
    if let Some(t) = set.atime {
        out.insert(ATIME.into(), format_time(t));
    }
    out.insert(CTIME.into(), format_time(now));
    out
}

/// The metadata a new upload of an object carries over from the object it
/// replaces: mode, owner and any other tool's keys, but not the times (the
/// new contents have the upload's time, and the old ones' access time).
pub fn carried(user: &UserMeta) -> UserMeta {
    user.iter()
        .filter(|(k, _)| ![MTIME, ATIME, CTIME].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Seconds since the epoch, with `.` and nine digits of nanoseconds when
/// not whole (s3fs's form). Times before the epoch are written as 0.
pub fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
    }
}

/// Parses `secs[.fraction]` (any number of fraction digits, the first nine
/// kept); None for anything else.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: u64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().take(9).collect();
    let nanos = if digits.is_empty() {
        0
    } else {
        digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32)
    };
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(pairs: &[(&str, &str)]) -> UserMeta {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn times_read_the_forms_s3fs_and_rclone_write() {
        let t = |s, n| UNIX_EPOCH + Duration::new(s, n);
        assert_eq!(parse_time("978307200"), Some(t(978307200, 0)));
        assert_eq!(parse_time("978307200.000000001"), Some(t(978307200, 1)));
        assert_eq!(parse_time("1700000000.5"), Some(t(1700000000, 500_000_000)));
        assert_eq!(
            parse_time("1700000000.1234567891"),
            Some(t(1700000000, 123_456_789))
        );
        assert_eq!(parse_time("soon"), None);
        assert_eq!(parse_time("1.2e3"), None);
        assert_eq!(format_time(t(978307200, 0)), "978307200");
        assert_eq!(format_time(t(1700000000, 5)), "1700000000.000000005");
    }

    #[test]
    fn modes_keep_the_types_an_object_can_be() {
        let mut m = Meta::default();
        apply(
            &mut m,
            &user(&[("mode", "33261"), ("uid", "1000"), ("gid", "100")]),
        );
        assert_eq!(m.mode, Some(libc::S_IFREG | 0o755));
        assert_eq!((m.uid, m.gid), (Some(1000), Some(100)));
        apply(&mut m, &user(&[("mode", "41471")]));
        assert_eq!(m.mode, Some(libc::S_IFLNK | 0o777));
        // No type bits, or a device: a regular file.
        apply(&mut m, &user(&[("mode", "420")]));
        assert_eq!(m.mode, Some(libc::S_IFREG | 0o644));
        apply(&mut m, &user(&[("mode", &(libc::S_IFCHR | 0o600).to_string())]));
        assert_eq!(m.mode, Some(libc::S_IFREG | 0o600));
        let mut d = Meta::dir();
        apply(&mut d, &user(&[("mode", "33188"), ("uid", "x")]));
        assert_eq!(d.mode, Some(libc::S_IFDIR | 0o644));
        assert_eq!(d.uid, None, "a value that does not parse is ignored");
    }

    #[test]
    fn a_merge_pins_the_old_time_and_stamps_ctime() {
        let old = UNIX_EPOCH + Duration::from_secs(1000);
        let now = UNIX_EPOCH + Duration::from_secs(2000);
        let set = SetMeta {
            mode: Some(0o4755),
            ..Default::default()
        };
        let m = merged(&user(&[("other", "kept")]), &set, libc::S_IFREG, Some(old), now);
        assert_eq!(m[MODE], (libc::S_IFREG | 0o4755).to_string());
        assert_eq!(m[MTIME], "1000");
        assert_eq!(m[CTIME], "2000");
        assert_eq!(m["other"], "kept");
        let m = merged(&m, &SetMeta::default(), libc::S_IFREG, Some(now), now);
        assert_eq!(m[MTIME], "1000", "a stored mtime stays");
        assert!(!carried(&m).contains_key(MTIME));
        assert_eq!(carried(&m)[MODE], m[MODE]);
    }
}
