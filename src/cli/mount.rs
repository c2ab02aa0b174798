//! `mount` and `unmount`: daemonizing with a readiness pipe, pid files and
//! log files in the data home.
//!
//! `mount` forks before any runtime or thread exists; the daemon reports over
//! a pipe once the kernel mount is live (or why it failed), and only then
//! does the parent exit (0 or 1 with the reason).

use crate::config::{data_home, Config};
use crate::control::paths;
use crate::daemon::{self, MountSpec, RunOptions};
use crate::fuse::MountOptions;
use clap::Args;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `mount`.
#[derive(Args, Debug)]
pub struct MountArgs {
    /// Where to mount (an existing, empty directory).
    pub mountpoint: PathBuf,
    /// Config file (default: $IPFS_KIT_HOME/config.toml, else the built-in default).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Mount options: ro, allow_other, allow_other_unchecked, allow_root, default_permissions, uid=N, gid=N,
    /// attr_timeout=S, nopassthrough, read_ahead_kb=N (kernel readahead, default 4096; 0 keeps the kernel's).
    #[arg(short = 'o', value_name = "OPT[,OPT...]")]
    pub options: Vec<String>,
    /// Stay in the foreground (for systemd and debugging).
    #[arg(long, short = 'f')]
    pub foreground: bool,
    /// Log filter (e.g. info, debug, ipfs_kit_fuse=trace); RUST_LOG also works.
    #[arg(long)]
    pub log_level: Option<String>,
    /// Serve Prometheus metrics (the `stats` figures) on this address, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Control socket path (default: the runtime directory, named after the mount point).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// Arguments of `unmount`.
#[derive(Args, Debug)]
pub struct UnmountArgs {
    /// The mount point.
    pub mountpoint: PathBuf,
    /// Seconds to wait for the daemon to finish uploads and exit.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// The mount's control socket (default: found from the mount point).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ipfs-kit-fuse: {msg}");
    ExitCode::FAILURE
}

/// The exit code for the result of a daemon run: 0, [`daemon::EXIT_LEFT_STAGED`]
/// when it stopped with data still staged, else 1.
fn exit_of(res: anyhow::Result<()>) -> ExitCode {
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if e.downcast_ref::<daemon::LeftStaged>().is_some() {
                ExitCode::from(daemon::EXIT_LEFT_STAGED)
            } else {
                ExitCode::FAILURE
            };
            eprintln!("ipfs-kit-fuse: {e:#}");
            code
        }
    }
}

fn escape(mp: &Path) -> String {
    paths::escape(mp)
}

fn pid_file(home: &Path, mp: &Path) -> PathBuf {
    home.join("run").join(format!("{}.pid", escape(mp)))
}

/// Logs to stderr. Under systemd (`JOURNAL_STREAM` set) lines carry no
/// timestamp (journald adds its own) and no colours; a daemon writing to its
/// log file gets no colours either.
fn init_tracing(level: Option<&str>, to_file: bool) {
    let filter = level
        .map(tracing_subscriber::EnvFilter::new)
        .or_else(|| tracing_subscriber::EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let ansi = !journald && !to_file && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if journald {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}

/// `ipfs-kit-fuse mount`.
pub fn run_mount(a: MountArgs) -> ExitCode {
    tune_allocator();
    // SIGTERM/SIGINT/SIGHUP wait (pending) until the daemon has its handlers
    // (`daemon::run_with` unblocks them then): a stop sent during start-up is
    // a clean stop, never the default death. Threads started before that
    // keep them blocked, so they reach the thread that unblocked them.
    if let Err(e) = daemon::block_stop_signals() {
        return fail(format!("cannot block signals during start-up: {e}"));
    }
    let home = match data_home() {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let options = match MountOptions::parse(&a.options) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    // The daemon runs in `/`: keep the config path valid there (save, SIGHUP).
    let config_file = match a.config.as_deref().map(std::path::absolute).transpose() {
        Ok(p) => p,
        Err(e) => return fail(format!("--config: {e}")),
    };
    let config = match Config::load(config_file.as_deref(), &home) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mountpoint = match daemon::preflight(&a.mountpoint) {
        Ok(p) => p,
        Err(e) => return fail(format!("{e:#}")),
    };
    let spec = MountSpec {
        mountpoint: mountpoint.clone(),
        config,
        options,
        home: home.clone(),
    };
    let run_opts = RunOptions {
        config_file,
        metrics_addr: a.metrics,
        socket: a.socket.clone(),
    };
    if a.foreground {
        init_tracing(a.log_level.as_deref(), false);
        return exit_of(daemon::run_with(spec, run_opts, |_| {}));
    }
    daemonize_and_run(spec, run_opts, &home, &mountpoint, a.log_level)
}

fn daemonize_and_run(
    spec: MountSpec,
    run_opts: RunOptions,
    home: &Path,
    mountpoint: &Path,
    log_level: Option<String>,
) -> ExitCode {
    for d in ["run", "logs"] {
        if let Err(e) = std::fs::create_dir_all(home.join(d)) {
            return fail(format!("cannot create {}: {e}", home.join(d).display()));
        }
    }
    let log_path = home.join("logs").join(format!("{}.log", escape(mountpoint)));
    let log = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
    {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot open log {}: {e}", log_path.display())),
    };
    let log2 = match log.try_clone() {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let (rx, tx): (OwnedFd, OwnedFd) = match nix::unistd::pipe() {
        Ok(p) => p,
        Err(e) => return fail(format!("pipe: {e}")),
    };
    let pidf = pid_file(home, mountpoint);
    let outcome = daemonize::Daemonize::new()
        .pid_file(&pidf)
        .working_directory("/")
        .stdout(log)
        .stderr(log2)
        .execute();
    match outcome {
        daemonize::Outcome::Parent(Ok(_)) => {
            // The parent only waits for the daemon's word: Ctrl-C ends it.
            let _ = daemon::unblock_stop_signals();
            drop(tx);
            wait_ready(File::from(rx), &log_path)
        }
        daemonize::Outcome::Parent(Err(e)) => fail(format!("cannot start daemon: {e}")),
        daemonize::Outcome::Child(Err(e)) => {
            let mut tx = File::from(tx);
            let _ = writeln!(tx, "ERR cannot daemonize: {e}");
            ExitCode::FAILURE
        }
        daemonize::Outcome::Child(Ok(_)) => {
            drop(rx);
            init_tracing(log_level.as_deref(), true);
            let mut tx = Some(File::from(tx));
            let res = daemon::run_with(spec, run_opts, |r| {
                if let Some(mut tx) = tx.take() {
                    let _ = match r {
                        Ok(()) => writeln!(tx, "OK"),
                        Err(m) => writeln!(tx, "ERR {}", m.replace('\n', " ")),
                    };
                }
            });
            let _ = std::fs::remove_file(&pidf);
            exit_of(res)
        }
    }
}

fn wait_ready(mut rx: File, log_path: &Path) -> ExitCode {
    let mut msg = String::new();
    let _ = rx.read_to_string(&mut msg);
    let line = msg.lines().next().unwrap_or("");
    if line == "OK" {
        ExitCode::SUCCESS
    } else if let Some(err) = line.strip_prefix("ERR ") {
        fail(err)
    } else {
        fail(format!(
            "the daemon exited before the mount was ready (see {})",
            log_path.display()
        ))
    }
}

/// `ipfs-kit-fuse unmount`.
pub fn run_unmount(a: UnmountArgs) -> ExitCode {
    let mp = match a.mountpoint.canonicalize() {
        Ok(p) => p,
        Err(e) => return fail(format!("{}: {e}", a.mountpoint.display())),
    };
    match daemon::mounted_at(&mp) {
        Ok(Some((t, src))) if daemon::is_ours(&t, &src) => {}
        Ok(Some((t, src))) => {
            return fail(format!(
                "{} is a {t} mount of {src}, not an ipfs-kit-fuse mount",
                mp.display()
            ))
        }
        Ok(None) => return fail(format!("{} is not mounted", mp.display())),
        Err(e) => return fail(format!("{e:#}")),
    }
    let home = data_home().ok();
    let pid = home
        .as_ref()
        .and_then(|h| std::fs::read_to_string(pid_file(h, &mp)).ok());
    let pid: Option<i32> = pid.and_then(|p| p.trim().parse().ok());
    // Drain first over the control socket (with progress), so nothing waits
    // on the unmount; the daemon drains again after the kernel ends the session.
    let socket = a.socket.clone().unwrap_or_else(|| paths::socket_path(&mp));
    if socket.exists() {
        if let Err(e) = super::control::flush_socket(&socket, false) {
            eprintln!("ipfs-kit-fuse: flush before unmount: {e}; unmounting anyway (staged data is kept)");
        }
    }
    if let Err(e) = crate::fuse::unmount_path(&mp, false) {
        return fail(format!("cannot unmount {}: {e}", mp.display()));
    }
    if let Some(pid) = pid {
        let deadline = Instant::now() + Duration::from_secs(a.timeout);
        let target = nix::unistd::Pid::from_raw(pid);
        while nix::sys::signal::kill(target, None).is_ok() {
            if Instant::now() > deadline {
                return fail(format!(
                    "daemon {pid} still running after {}s (uploads pending?)",
                    a.timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // The daemon is gone: what it could not upload is in its staging directory.
    match home.and_then(|h| daemon::left_staged(&daemon::staging_dir(&h, &mp))) {
        Some(left) => {
            eprintln!("ipfs-kit-fuse: unmounted {}, but {left}", mp.display());
            ExitCode::from(daemon::EXIT_LEFT_STAGED)
        }
        None => ExitCode::SUCCESS,
    }
}

/// Heap arenas for the mount daemon. glibc gives each thread that allocates
/// under contention an arena of its own (up to 8 per core); our 1 MiB cache
/// blocks are freed on other threads than the ones that allocated them, and
/// freed blocks stay resident in every arena: a cold 1 GiB S3 read peaked at
/// ~590 MiB by default, ~415 MiB with 2 arenas (~500 MiB with 4). A fixed
/// mmap threshold instead (a mapping per block) also held RSS down, but paid
/// page faults on every buffer: S3 writes cost twice the CPU.
const ARENAS: libc::c_int = 2;

fn tune_allocator() {
    // SAFETY: mallopt only changes allocator tuning; it runs before the
    // daemon starts any thread, and a refusal (returns 0) keeps the default.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}
