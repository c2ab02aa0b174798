//! Shared by the `control_*` and `ops_*` tests: a real mount run by the built
//! binary in the foreground, in a temp dir with its own data home, runtime
//! directory and config; torn down on drop (SIGTERM, then SIGKILL and a lazy
//! unmount), so a failing test leaves no mount behind.
#![allow(dead_code)]

use ipfs_kit_fuse::control::paths::socket_path_in;
use ipfs_kit_fuse::control::Client;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` to completion.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
        .wait_with_output()
        .expect("wait")
}

/// True when `name` is an executable on PATH (found without forking).
pub fn has_tool(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::metadata(d.join(name)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ipfs-kit-fuse");
/// How long a mount may take to come up on a loaded 2-core machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// True when real mounts can run here (root with a usable /dev/fuse); prints why not.
pub fn can_mount() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let fuse = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .is_ok();
    if !(root && fuse) {
        // scripts/test.sh sets this: under CI a mount test that cannot
        // mount fails instead of passing without having run.
        if std::env::var_os("IPFS_KIT_REQUIRE_MOUNT").is_some() {
            panic!("cannot mount: needs root and /dev/fuse (root={root}, /dev/fuse usable={fuse})");
        }
        eprintln!("skipped: needs root and /dev/fuse (root={root}, /dev/fuse usable={fuse})");
    }
    root && fuse
}

/// A temp dir with `home/`, `run/`, `mnt/`, `backend/` and `config.toml`.
pub struct Place {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub run: PathBuf,
    pub mnt: PathBuf,
    pub backend: PathBuf,
    pub config: PathBuf,
}

impl Place {
    /// A fresh place whose config mounts `backend/` at `/local` (plus `extra` TOML).
    pub fn new(extra: &str) -> Place {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().canonicalize().expect("canonical tempdir");
        let p = Place {
            home: base.join("home"),
            run: base.join("run"),
            mnt: base.join("mnt"),
            backend: base.join("backend"),
            config: base.join("config.toml"),
            dir,
        };
        for d in [&p.home, &p.mnt, &p.backend] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        p.write_config(extra);
        p
    }

    /// Rewrites the config: `/local` on `backend/` with staged writes (the
    /// staging and drain guarantees are what these tests are about), then `extra`. Entries stay
    /// in the kernel's cache for 5 s, so a mount-table change is only seen at
    /// once if the daemon invalidates them.
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "[vfs]\nattr_ttl_secs = 5.0\ndrain_timeout_secs = 60\n\n[[mount]]\npath = \"/local\"\nscheme = \"fs\"\nwrites = \"staged\"\n[mount.options]\nroot = \"{}\"\n\n{extra}",
            self.backend.display()
        );
        std::fs::write(&self.config, text).expect("write config");
    }

    /// The control socket of this place's mount.
    pub fn socket(&self) -> PathBuf {
        socket_path_in(&self.run, &self.mnt)
    }

    /// A command for the binary with this place's environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("IPFS_KIT_HOME", &self.home)
            .env("RUNTIME_DIRECTORY", &self.run)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM");
        c
    }

    /// Starts `mount --foreground` with `args` and waits until its socket answers.
    pub fn start(&self, args: &[&str]) -> Daemon {
        self.start_with(args, |_| {})
    }

    /// As [`Place::start`], with a hook to adjust the command (env, ...).
    pub fn start_with(&self, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Daemon {
        let log = self.dir.path().join(format!("daemon-{}.log", unique()));
        let logf = std::fs::File::create(&log).expect("log file");
        let mut c = self.cmd();
        c.arg("mount")
            .arg(&self.mnt)
            .arg("--foreground")
            .arg("--config")
            .arg(&self.config)
            .arg("--log-level")
            .arg("debug")
            .args(args)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("dup"))
            .stderr(logf);
        adjust(&mut c);
        let child = c.spawn().expect("spawn daemon");
        let mut d = Daemon {
            child: Some(child),
            mnt: self.mnt.clone(),
            socket: self.socket(),
            log,
        };
        d.wait_ready();
        d
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// True when something is mounted at `p`.
pub fn is_mounted(p: &Path) -> bool {
    let want = p.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// A running foreground daemon.
pub struct Daemon {
    child: Option<Child>,
    pub mnt: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(st) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("daemon exited early ({st}); log:\n{}", self.log_text());
            }
            if is_mounted(&self.mnt) && Client::connect(&self.socket).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "daemon not ready in time; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// A client on the control socket.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("connect control socket")
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
    }

    /// Waits for the daemon to exit (panics after `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                self.child = None;
                return st;
            }
            if Instant::now() > deadline {
                panic!("daemon did not exit in {limit:?}; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs the daemon and detaches its dead mount.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        lazy_unmount(&self.mnt);
    }
}

/// Detaches whatever is mounted at `p`.
pub fn lazy_unmount(p: &Path) {
    if is_mounted(p) {
        let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.signal_child(&c);
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        lazy_unmount(&self.mnt);
    }
}

impl Daemon {
    fn signal_child(&self, c: &Child) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// Exit code or signal, for messages.
pub fn describe(st: ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (_, Some(s)) => format!("signal {s}"),
        _ => "unknown".into(),
    }
}

/// Polls `f` until it is true or `limit` passes.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}
