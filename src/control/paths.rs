//! Where control sockets live and what they are called.
//!
//! Directory: `$RUNTIME_DIRECTORY` (set by systemd's `RuntimeDirectory=`),
//! else `/run/ipfs-kit-fuse` for root, else `$XDG_RUNTIME_DIR/ipfs-kit-fuse`,
//! else `$IPFS_KIT_HOME/run`. File: the escaped mount point plus `.sock`
//! (`/mnt/vfs` -> `mnt-vfs.sock`); a name too long for a socket address is
//! shortened with a hash, so every mount point has exactly one socket path.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Room for a socket path: `sun_path` holds 108 bytes including the NUL.
const SUN_PATH_MAX: usize = 107;
/// Hex digits of the hash kept in a shortened socket name: 64 bits, no
/// collision between the mount points of one machine.
const HASH_HEX: usize = 16;

/// File-name form of a mount point (`/mnt/vfs` -> `mnt-vfs`, `-` doubled).
pub fn escape(mp: &Path) -> String {
    let s = mp.to_string_lossy();
    let t = s.trim_matches('/');
    if t.is_empty() {
        "root".into()
    } else {
        t.replace('-', "--").replace('/', "-")
    }
}

/// The directory holding control sockets for this user.
pub fn socket_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RUNTIME_DIRECTORY").filter(|d| !d.is_empty()) {
        // systemd may pass several, colon-separated; the first is ours.
        let first = d
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        return PathBuf::from(first);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/ipfs-kit-fuse");
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("ipfs-kit-fuse");
    }
    crate::config::data_home()
        .map(|h| h.join("run"))
        .unwrap_or_else(|_| std::env::temp_dir().join("ipfs-kit-fuse"))
}

/// The socket path of the mount at `mountpoint` (canonical) inside `dir`.
pub fn socket_path_in(dir: &Path, mountpoint: &Path) -> PathBuf {
    let name = escape(mountpoint);
    let room = SUN_PATH_MAX.saturating_sub(dir.as_os_str().len() + 1 + ".sock".len());
    if name.len() <= room {
        return dir.join(format!("{name}.sock"));
    }
    let hash = hex::encode(Sha256::digest(mountpoint.as_os_str().as_encoded_bytes()));
    let keep = room.saturating_sub(HASH_HEX + 1);
    let mut prefix: String = name
        .chars()
        .rev()
        .take(keep)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    while prefix.len() > keep {
        prefix.remove(0);
    }
    dir.join(format!("{prefix}~{}.sock", &hash[..HASH_HEX]))
}

/// The socket path of the mount at `mountpoint` in the default directory.
pub fn socket_path(mountpoint: &Path) -> PathBuf {
    socket_path_in(&socket_dir(), mountpoint)
}

/// Sockets present in `dir`, sorted.
pub fn discover(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_maps_slashes_and_doubles_dashes() {
        assert_eq!(escape(Path::new("/mnt/vfs")), "mnt-vfs");
        assert_eq!(escape(Path::new("/mnt/a-b")), "mnt-a--b");
        assert_eq!(escape(Path::new("/")), "root");
    }

    #[test]
    fn socket_path_fits_sun_path_when_mountpoint_is_long() {
        let long = PathBuf::from(format!("/{}", "x/".repeat(200)));
        let p = socket_path_in(Path::new("/run/ipfs-kit-fuse"), &long);
        assert!(p.as_os_str().len() <= SUN_PATH_MAX, "{}", p.display());
        let other = PathBuf::from(format!("/{}y", "x/".repeat(200)));
        assert_ne!(p, socket_path_in(Path::new("/run/ipfs-kit-fuse"), &other));
        assert_eq!(
            socket_path_in(Path::new("/run/k"), Path::new("/mnt/vfs")),
            PathBuf::from("/run/k/mnt-vfs.sock")
        );
    }
}
