//! Test support for real-mount tests: a [`Mounted`] guard that runs the built
//! binary's `mount` (daemon mode) in a fresh temp dir and unmounts on drop,
//! plus small helpers (hashing, tree comparison, running tools).
//!
//! Every guard has its own temp dir (data home, mount point, backing dirs), so
//! tests run in parallel. On drop the guard runs `ipfs-kit-fuse unmount`; if
//! the test panicked, or that fails, it detaches the mount lazily and kills
//! the daemon, so no mount or process outlives the test.

#![allow(dead_code)] // each test binary uses a different part of this module

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ipfs-kit-fuse")
}

/// The port a test server child announced as its first stdout line,
/// `listening PORT` (the Python stand-ins and proxies under tests/ do).
pub fn announced_port(child: &mut std::process::Child, what: &str) -> u16 {
    use std::io::BufRead;
    let mut line = String::new();
    let stdout = child
        .stdout
        .take()
        .unwrap_or_else(|| panic!("{what}: stdout not piped"));
    std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
    line.trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{what} did not start (said {line:?})"))
}

/// A fresh temp dir with a recognisable prefix.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ikf-test-")
        .tempdir()
        .expect("temp dir")
}

/// The logs of the daemons that ran with the data home `home`, concatenated.
pub fn daemon_log(home: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(home.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
    }
    out
}

/// Runs `ipfs-kit-fuse ARGS` with `IPFS_KIT_HOME=home`.
pub fn run_cli(home: &Path, args: &[&str]) -> Output {
    run_cli_env(home, args, &[])
}

/// [`run_cli`] with more environment variables (`(name, None)` removes one).
pub fn run_cli_env(home: &Path, args: &[&str], envs: &[(&str, Option<&str>)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).env("IPFS_KIT_HOME", home).env_remove("RUST_LOG");
    for (k, v) in envs {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.output().expect("run ipfs-kit-fuse")
}

/// What is mounted exactly at `path` (fstype, source), from /proc/self/mountinfo.
pub fn mount_entry(path: &Path) -> Option<(String, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let want = path.to_string_lossy().replace(' ', "\\040");
    info.lines().find_map(|line| {
        let f: Vec<&str> = line.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        (f.get(4) == Some(&want.as_str())).then(|| (f[sep + 1].to_string(), f[sep + 2].to_string()))
    })
}

/// A live mount of the binary in its own temp dir; unmounted on drop.
pub struct Mounted {
    /// `ROOT/mnt`: the mount point.
    pub mnt: PathBuf,
    /// `ROOT/home`: the data home (`IPFS_KIT_HOME`).
    pub home: PathBuf,
    done: bool,
    /// The `mount` command line, for [`Mounted::remount`].
    args: Vec<String>,
    // Dropped last, after the mount is gone.
    root: tempfile::TempDir,
}

impl Mounted {
    /// A client on the control socket of this mount.
    pub fn socket_client(&self) -> ipfs_kit_fuse::control::Client {
        let mnt = std::fs::canonicalize(&self.mnt).unwrap();
        let path = ipfs_kit_fuse::control::paths::socket_path(&mnt);
        ipfs_kit_fuse::control::Client::connect(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
    }

    /// Mounts the built-in default config (`/local` fs, `/memory`).
    pub fn new() -> Mounted {
        Self::with_config(|_| None, &[])
    }

    /// Mounts with the config that `config(root)` returns (None: the built-in
    /// default) and `-o` options `opts`. `root` is the guard's temp dir, for
    /// backing directories.
    pub fn with_config(config: impl FnOnce(&Path) -> Option<String>, opts: &[&str]) -> Mounted {
        Self::with_config_env(config, opts, &[])
    }

    /// [`Mounted::with_config`] with more environment variables for the
    /// daemon (see [`run_cli_env`]).
    pub fn with_config_env(
        config: impl FnOnce(&Path) -> Option<String>,
        opts: &[&str],
        envs: &[(&str, Option<&str>)],
    ) -> Mounted {
        let root = temp_dir();
        let mnt = root.path().join("mnt");
        let home = root.path().join("home");
        std::fs::create_dir_all(&mnt).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let mut args: Vec<String> = vec!["mount".into(), mnt.display().to_string()];
        if let Some(text) = config(root.path()) {
            let file = root.path().join("config.toml");
            std::fs::write(&file, text).unwrap();
            args.push("--config".into());
            args.push(file.display().to_string());
        }
        // IKF_TEST_MOUNT_OPTS: options added to every mount, to run a suite
        // in another configuration (scripts/test.sh: `nopassthrough`).
        let mut opts: Vec<String> = opts.iter().map(|o| o.to_string()).collect();
        if let Ok(extra) = std::env::var("IKF_TEST_MOUNT_OPTS") {
            opts.extend(extra.split(',').filter(|o| !o.is_empty()).map(str::to_string));
        }
        if !opts.is_empty() {
            args.push("-o".into());
            args.push(opts.join(","));
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_cli_env(&home, &argv, envs);
        let m = Mounted {
            mnt,
            home,
            done: false,
            args,
            root,
        };
        assert!(
            out.status.success(),
            "mount failed: {}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            m.log()
        );
        m
    }

    /// The guard's temp dir (backing dirs of custom configs live here).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `MNT/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// The backing directory of the default `/local` mount.
    pub fn local_backing(&self) -> PathBuf {
        self.home.join("vfs").join("local")
    }

    /// The daemon's pid, from its pid file.
    pub fn pid(&self) -> Option<i32> {
        let dir = self.home.join("run");
        let e = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .find(|e| e.path().extension().is_some_and(|x| x == "pid"))?;
        std::fs::read_to_string(e.path()).ok()?.trim().parse().ok()
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        daemon_log(&self.home)
    }

    /// The JSON reply of the CLI command `cmd` (`stats`, `status`...) for
    /// this mount (`cmd --json --mount MNT`); panics if it fails.
    pub fn cli_json(&self, cmd: &str) -> serde_json::Value {
        let out = run_cli(
            &self.home,
            &[cmd, "--json", "--mount", &self.mnt.display().to_string()],
        );
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }

    /// Mounts again after [`Mounted::unmount`], with the same command line
    /// and data home (a new daemon, the same disk cache and state).
    pub fn remount(&mut self) {
        let argv: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let out = run_cli(&self.home, &argv);
        assert!(
            out.status.success(),
            "remount failed: {}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        self.done = false;
    }

    /// Unmounts with the CLI and returns its output; the temp dir lives on
    /// until the guard is dropped, which then only removes it.
    pub fn unmount(&mut self) -> Output {
        self.done = true;
        let out = run_cli(
            &self.home,
            &["unmount", &self.mnt.display().to_string(), "--timeout", "60"],
        );
        if !out.status.success() || mount_entry(&self.mnt).is_some() {
            self.force_cleanup();
        }
        out
    }

    fn force_cleanup(&self) {
        if let Ok(c) = std::ffi::CString::new(self.mnt.as_os_str().as_encoded_bytes()) {
            // SAFETY: a valid C string; MNT_DETACH never blocks on busy files.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        if let Some(pid) = self.pid() {
            // SAFETY: plain kill(2) on the daemon this guard started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        if !std::thread::panicking() {
            let out = run_cli(
                &self.home,
                &["unmount", &self.mnt.display().to_string(), "--timeout", "60"],
            );
            if out.status.success() && mount_entry(&self.mnt).is_none() {
                return;
            }
            eprintln!(
                "unmount failed ({}); detaching lazily",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        } else {
            eprintln!("daemon log of the failed test:\n{}", self.log());
        }
        self.force_cleanup();
    }
}

/// Waits until `f` is true or `limit` passes; returns the last value.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True while a process with this pid exists.
pub fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Hex sha256 of bytes.
pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> String {
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

/// `len` pseudo-random bytes from `seed`.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// One node of a tree snapshot: a directory or a file's bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
}

/// Every path under `dir` (relative, `/`-separated) with its kind and bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Node> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                out.insert(rel, Node::Dir);
                walk(base, &p, out);
            } else {
                out.insert(rel, Node::File(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The errno of an io result (0 for success).
pub fn errno<T>(r: &std::io::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

/// The value of the xattr `name` of `path`, or the errno of getxattr(2).
pub fn xattr(path: &Path, name: &str) -> Result<String, i32> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 512];
    // SAFETY: NUL-terminated strings; the buffer pointer and length match.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    Ok(String::from_utf8(buf[..r as usize].to_vec()).unwrap())
}
