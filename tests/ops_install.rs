//! Installation pieces: the systemd units pass `systemd-analyze verify`, the
//! fstab helper mounts with mount(8)-style arguments, and `unmount` drains
//! over the control socket before it unmounts.

#[path = "ops_support/mod.rs"]
mod ops_support;

use ops_support::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn unit_files_pass_systemd_analyze_verify() {
    if !has_tool("systemd-analyze") {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install -y systemd)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for unit in ["ipfs-kit-fuse.service", "ipfs-kit-fuse@.service"] {
        let text = std::fs::read_to_string(repo().join("systemd").join(unit)).expect("unit file");
        assert!(
            text.contains("Type=notify") && text.contains("--foreground"),
            "{unit}"
        );
        // Point ExecStart at the built binary, as install.sh does with its PREFIX.
        let text = text.replace("/usr/local/bin/ipfs-kit-fuse", BIN);
        std::fs::write(dir.path().join(unit), text).expect("write unit");
    }
    let out = output(
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.path().join("ipfs-kit-fuse.service"))
            .arg(dir.path().join("ipfs-kit-fuse@mnt-vfs.service"))
            .env("SYSTEMD_LOG_LEVEL", "warning"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = err.lines().filter(|l| l.contains("ipfs-kit-fuse")).collect();
    assert!(out.status.success() && complaints.is_empty(), "{err}");
}

#[test]
fn fstab_helper_mounts_and_unmount_drains_first() {
    if !can_mount() {
        return;
    }
    let place = Place::new("");
    let helper = repo().join("scripts/mount.fuse.ipfs-kit-fuse");
    let opts = format!(
        "rw,noatime,_netdev,nofail,x-systemd.automount,config={}",
        place.config.display()
    );
    let out = output(
        Command::new("sh")
            .arg(&helper)
            .arg("none")
            .arg(&place.mnt)
            .arg("-o")
            .arg(&opts)
            .env("IPFS_KIT_FUSE_BIN", BIN)
            .env("IPFS_KIT_HOME", &place.home)
            .env("RUNTIME_DIRECTORY", &place.run),
    );
    let guard = Guard(&place.mnt);
    assert!(
        out.status.success(),
        "helper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(is_mounted(&place.mnt));
    std::fs::write(place.mnt.join("local/fstab.txt"), b"via fstab").expect("write");
    let out = output(place.cmd().arg("unmount").arg(&place.mnt));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(eventually(Duration::from_secs(30), || !is_mounted(&place.mnt)));
    assert_eq!(
        std::fs::read(place.backend.join("fstab.txt")).expect("backend"),
        b"via fstab"
    );
    drop(guard);
}

/// Detaches the mount if the test fails half-way.
struct Guard<'a>(&'a Path);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if is_mounted(self.0) {
            let _ = output(Command::new(BIN).arg("unmount").arg(self.0));
            lazy_unmount(self.0);
        }
    }
}

#[test]
fn install_script_lays_out_binary_units_helper_and_a_valid_config() {
    let dest = tempfile::tempdir().expect("tempdir");
    let out = output(
        Command::new("sh")
            .arg(repo().join("scripts/install.sh"))
            .env("DESTDIR", dest.path())
            .env("BIN", BIN),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in [
        "usr/local/bin/ipfs-kit-fuse",
        "etc/systemd/system/ipfs-kit-fuse.service",
        "etc/systemd/system/ipfs-kit-fuse@.service",
        "sbin/mount.fuse.ipfs-kit-fuse",
        "usr/local/share/doc/ipfs-kit-fuse/OPERATIONS.md",
    ] {
        assert!(dest.path().join(f).is_file(), "{f} missing");
    }
    let text = std::fs::read_to_string(dest.path().join("etc/ipfs-kit-fuse/config.toml")).expect("config");
    let cfg = ipfs_kit_fuse::config::Config::parse(&text).expect("default config parses");
    cfg.validate().expect("default config is valid");
}
