//! `-o` mount options: the usual FUSE ones and ours, parsed into fuser's
//! `Config` and the core's owner settings.
//!
//! `allow_other` lets every local user into the mount, so it turns on
//! `default_permissions` (the kernel checks each entry's mode, owner and
//! group, as on any local filesystem). Only `allow_other_unchecked`, whose
//! name says the risk, lets others in without those checks.

use fuser::{Config, MountOption, SessionACL};

/// Mount options as given with `-o`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MountOptions {
    pub read_only: bool,
    pub allow_other: bool,
    /// `allow_other_unchecked`: others may enter and the kernel checks no
    /// permission bits (every user acts with the daemon's rights).
    pub unchecked: bool,
    pub allow_root: bool,
    pub default_permissions: bool,
    /// Owner shown for every file (default: the mounting user).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Kernel attribute/entry cache time, seconds (overrides the config).
    pub attr_ttl: Option<f64>,
    /// `nopassthrough`: never hand the kernel backing files. By default the
    /// kernel reads and writes the files of `fs` mounts that are read-only
    /// or take direct writes itself (FUSE passthrough, where it offers it).
    pub no_passthrough: bool,
    /// `read_ahead_kb=N`: the kernel's readahead for the mount, KiB (0: the
    /// kernel's default; unset: [`super::readahead::DEFAULT_READ_AHEAD_KB`]).
    pub read_ahead_kb: Option<u32>,
}

/// A bad `-o` value.
#[derive(Debug, thiserror::Error)]
#[error("bad mount option {0:?}: {1}")]
pub struct OptionError(pub String, pub &'static str);

impl MountOptions {
    /// Parses comma-separated option lists (several `-o` allowed).
    pub fn parse<S: AsRef<str>>(lists: &[S]) -> Result<MountOptions, OptionError> {
        let mut o = MountOptions::default();
        for list in lists {
            for opt in list.as_ref().split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (k, v) = match opt.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (opt, None),
                };
                let num = |v: Option<&str>| -> Result<u32, OptionError> {
                    v.and_then(|v| v.parse().ok())
                        .ok_or(OptionError(opt.into(), "needs a number"))
                };
                match k {
                    "ro" => o.read_only = true,
                    "passthrough" => o.no_passthrough = false,
                    "nopassthrough" => o.no_passthrough = true,
                    "rw" => o.read_only = false,
                    "allow_other" => o.allow_other = true,
                    "allow_other_unchecked" => {
                        o.allow_other = true;
                        o.unchecked = true;
                    }
                    "allow_root" => o.allow_root = true,
                    "default_permissions" => o.default_permissions = true,
                    "uid" => o.uid = Some(num(v)?),
                    "read_ahead_kb" => o.read_ahead_kb = Some(num(v)?),
                    "gid" => o.gid = Some(num(v)?),
                    "attr_timeout" | "entry_timeout" => {
                        let t = v
                            .and_then(|v| v.parse::<f64>().ok())
                            .filter(|t| t.is_finite() && *t >= 0.0)
                            .ok_or(OptionError(opt.into(), "needs seconds"))?;
                        o.attr_ttl = Some(t);
                    }
                    // Accepted for fstab compatibility; meaningless here.
                    "dev" | "nodev" | "suid" | "nosuid" | "exec" | "noexec" | "auto" | "noauto" | "user"
                    | "nouser" | "_netdev" | "nofail" | "defaults" => {}
                    _ => return Err(OptionError(opt.into(), "unknown option")),
                }
            }
        }
        if o.allow_other && !o.unchecked {
            o.default_permissions = true;
        }
        Ok(o)
    }

    /// Why these options are risky, if they are (logged as a warning at mount).
    pub fn warning(&self) -> Option<&'static str> {
        (self.unchecked && !self.default_permissions).then_some(
            "allow_other_unchecked: every local user may read, change and delete every file \
             in the mount with the daemon's rights (no permission checks)",
        )
    }

    /// fuser's configuration for these options.
    pub fn fuser_config(&self, worker_threads: usize) -> Config {
        let mut mount_options = vec![
            MountOption::FSName("ipfs-kit-fuse".into()),
            MountOption::Subtype("ipfs-kit-fuse".into()),
            MountOption::NoDev,
            MountOption::NoSuid,
        ];
        if self.read_only {
            mount_options.push(MountOption::RO);
        }
        if self.default_permissions {
            mount_options.push(MountOption::DefaultPermissions);
        }
        let mut c = Config::default();
        c.mount_options = mount_options;
        c.acl = if self.allow_other {
            SessionACL::All
        } else if self.allow_root {
            SessionACL::RootAndOwner
        } else {
            SessionACL::Owner
        };
        c.n_threads = Some(worker_threads.max(1));
        c.clone_fd = true;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_fuse_and_own_options() {
        let o = MountOptions::parse(&["ro,allow_other", "uid=1000,gid=100,attr_timeout=2.5"]).unwrap();
        assert!(o.read_only && o.allow_other);
        assert_eq!((o.uid, o.gid, o.attr_ttl), (Some(1000), Some(100), Some(2.5)));
        assert_eq!(o.read_ahead_kb, None);
        let r = MountOptions::parse(&["read_ahead_kb=0"]).unwrap();
        assert_eq!(r.read_ahead_kb, Some(0));
        assert!(MountOptions::parse(&["read_ahead_kb=lots"]).is_err());
    }

    #[test]
    fn allow_other_implies_permission_checks_unless_unchecked() {
        let o = MountOptions::parse(&["allow_other"]).unwrap();
        assert!(o.allow_other && o.default_permissions && o.warning().is_none());
        let u = MountOptions::parse(&["allow_other_unchecked"]).unwrap();
        assert!(u.allow_other && !u.default_permissions && u.warning().is_some());
        // Asking for the checks explicitly wins over the unchecked opt-out.
        let both = MountOptions::parse(&["allow_other_unchecked,default_permissions"]).unwrap();
        assert!(both.default_permissions && both.warning().is_none());
        assert!(!MountOptions::parse(&["allow_root"]).unwrap().default_permissions);
        assert!(MountOptions::parse(&["allow_other"])
            .unwrap()
            .fuser_config(1)
            .mount_options
            .contains(&MountOption::DefaultPermissions));
    }

    #[test]
    fn passthrough_is_on_unless_turned_off() {
        assert!(!MountOptions::parse::<&str>(&[]).unwrap().no_passthrough);
        assert!(!MountOptions::parse(&["passthrough"]).unwrap().no_passthrough);
        assert!(MountOptions::parse(&["nopassthrough"]).unwrap().no_passthrough);
        assert!(
            !MountOptions::parse(&["nopassthrough,passthrough"])
                .unwrap()
                .no_passthrough
        );
    }

    #[test]
    fn parse_rejects_unknown_and_bad_numbers() {
        assert!(MountOptions::parse(&["frobnicate"]).is_err());
        assert!(MountOptions::parse(&["uid=abc"]).is_err());
        assert!(MountOptions::parse(&["attr_timeout=-1"]).is_err());
    }
}
