//! `scheme = "hf"` (opendal's Hugging Face service) against a local stand-in
//! of the Hub (tests/hf/hub_standin.py, python3): it serves repositories made
//! here from files on disk, answering the Hub paths the service calls (tree
//! listings in pages, paths-info, resolve/ downloads with Range and the LFS
//! redirect to a CDN). The expected bytes are the files on disk. Needs root,
//! /dev/fuse and python3: without python3 these tests are skipped, unless
//! IPFS_KIT_REQUIRE_HF_STANDIN=1 (set by scripts/test.sh), where they fail.

mod support;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{errno, random_bytes, run_cli, run_cli_env, Mounted};

/// Model repository used by every test (ORG/NAME, as on the Hub).
const MODEL: &str = "ikf-test/tiny-model";
/// Files in `many/`: more than two pages of the stand-in's tree listing (20).
const MANY: usize = 45;

/// A running stand-in Hub; killed on drop.
struct Hub {
    child: Child,
    endpoint: String,
    root: tempfile::TempDir,
}

impl Hub {
    /// Starts the stand-in over a fresh set of repositories; `token`: every
    /// request must carry it. None (skip) when python3 is missing and
    /// IPFS_KIT_REQUIRE_HF_STANDIN is not 1 (then a missing python3 panics).
    fn start(token: Option<&str>) -> Option<Hub> {
        let python = Command::new("python3")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !python {
            if std::env::var("IPFS_KIT_REQUIRE_HF_STANDIN").is_ok_and(|v| v == "1") {
                panic!("python3 is missing: it runs the Hub stand-in (scripts/test.sh installs it)");
            }
            eprintln!("skipped: python3 missing (it runs the Hub stand-in)");
            return None;
        }
        let root = support::temp_dir();
        make_repos(root.path());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hf/hub_standin.py");
        let mut cmd = Command::new("python3");
        cmd.arg(&script)
            .arg("--root")
            .arg(root.path().join("repos"))
            .arg("--log")
            .arg(root.path().join("requests.log"))
            .stdout(Stdio::piped());
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        let mut child = cmd
            .spawn()
            .expect("python3 must be installed (scripts/test.sh installs it)");
        let port = support::announced_port(&mut child, "the Hub stand-in");
        Some(Hub {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            root,
        })
    }

    /// A file of a repository on disk (the expected bytes).
    fn file(&self, repo: &str, rel: &str) -> Vec<u8> {
        std::fs::read(self.repo_dir(repo).join(rel)).unwrap()
    }

    fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.path().join("repos").join(repo)
    }

    /// The requests served so far (`METHOD PATH RANGE` lines).
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.path().join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A model, a dataset and a space, shaped as on the Hub (`.gitattributes`,
/// a README, small JSON files, big LFS files, a directory with many files).
fn make_repos(root: &Path) {
    let put = |rel: &str, data: &[u8]| {
        let p = root.join("repos").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    let attrs =
        b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.parquet filter=lfs diff=lfs merge=lfs -text\n";
    let m = format!("models/{MODEL}");
    put(&format!("{m}/.gitattributes"), attrs);
    put(
        &format!("{m}/README.md"),
        b"---\nlicense: mit\n---\n# tiny-model\n",
    );
    put(
        &format!("{m}/config.json"),
        br#"{"architectures": ["TinyModel"], "hidden_size": 64}"#,
    );
    put(
        &format!("{m}/model.safetensors"),
        &random_bytes(1, 3 * 1024 * 1024 + 12_345),
    );
    put(
        &format!("{m}/tokenizer/tokenizer.json"),
        br#"{"version": "1.0", "model": {"type": "BPE"}}"#,
    );
    put(&format!("{m}/tokenizer/vocab.txt"), &random_bytes(2, 100_000));
    for i in 0..MANY {
        put(&format!("{m}/many/f{i:03}.txt"), format!("file {i}\n").as_bytes());
    }
    let d = "datasets/ikf-test/tiny-set";
    put(&format!("{d}/.gitattributes"), attrs);
    put(&format!("{d}/README.md"), b"# tiny-set\n");
    put(
        &format!("{d}/data/train-00000-of-00001.parquet"),
        &random_bytes(3, 700_000),
    );
    let s = "spaces/ikf-test/demo";
    put(&format!("{s}/.gitattributes"), attrs);
    put(&format!("{s}/app.py"), b"import gradio as gr\n");
}

/// Environment of every daemon here: no token from this machine's
/// environment or token file, unless a test gives one.
fn env<'a>(home: &'a str, token: Option<&'a str>) -> Vec<(&'a str, Option<&'a str>)> {
    vec![
        ("HF_TOKEN", token),
        ("HF_HOME", Some(home)),
        ("HF_ENDPOINT", None),
    ]
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn hf_entry(path: &str, endpoint: &str, extra: &str) -> String {
    format!(
        "[[mount]]\npath = \"{path}\"\nscheme = \"hf\"\n[mount.options]\nrepo_id = \"{MODEL}\"\nendpoint = \"{endpoint}\"\n{extra}"
    )
}

/// The commit id the stand-in gives a repository (its second accepted revision).
fn commit_of(hub: &Hub, repo: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sys; sys.argv=['x','--root','r']; sys.path.insert(0, {:?}); import hub_standin as h; print(h.commit_id({:?}))",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hf").display().to_string(),
            hub.repo_dir(repo).display().to_string()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn hf_repos_list_read_and_range_read_through_the_mount() {
    let Some(hub) = Hub::start(None) else {
        return;
    };
    let ep = hub.endpoint.clone();
    let set_rev = commit_of(&hub, "datasets/ikf-test/tiny-set");
    let hf_home = support::temp_dir();
    let home = hf_home.path().display().to_string();
    let m = Mounted::with_config_env(
        |_| {
            Some(format!(
                "{}\n[[mount]]\npath = \"/set\"\nuri = \"hf://datasets/ikf-test/tiny-set@{set_rev}?endpoint={ep}\"\n\n[[mount]]\npath = \"/space\"\nscheme = \"hf\"\n[mount.options]\nrepo_type = \"space\"\nrepo_id = \"ikf-test/demo\"\nrevision = \"main\"\nendpoint = \"{ep}\"\n",
                hf_entry("/model", &ep, "")
            ))
        },
        &[],
        &env(&home, None),
    );
    let model = hub.repo_dir(&format!("models/{MODEL}"));

    // Listings: the repository's own entries, all pages of a long directory.
    assert_eq!(names(&m.path("model")), names(&model));
    assert_eq!(names(&m.path("model/many")).len(), MANY);
    assert_eq!(names(&m.path("model/many")), names(&model.join("many")));
    assert_eq!(names(&m.path("set")), vec![".gitattributes", "README.md", "data"]);
    assert_eq!(names(&m.path("space")), vec![".gitattributes", "app.py"]);
    assert!(hub
        .requests()
        .iter()
        .any(|r| r.contains("/tree/main/many?") && r.contains("cursor=")));

    // Ranged reads of an LFS file nothing has read yet: the bytes at each
    // offset (past the end: the short tail), fetched with Range requests to
    // the CDN the resolve/ answer redirects to, never the whole file.
    let weights = hub.file(&format!("models/{MODEL}"), "model.safetensors");
    let f = std::fs::File::open(m.path("model/model.safetensors")).unwrap();
    for (off, len) in [
        (2_500_000u64, 10_000usize),
        (17, 100),
        (weights.len() as u64 - 50, 4096),
    ] {
        let mut buf = vec![0u8; len];
        let n = f.read_at(&mut buf, off).unwrap();
        let end = (off as usize + len).min(weights.len());
        assert_eq!(n, end - off as usize, "at {off}");
        assert!(buf[..n] == weights[off as usize..end], "bytes at {off} differ");
    }
    drop(f);
    let cdn: Vec<String> = hub
        .requests()
        .into_iter()
        .filter(|r| r.contains("/cdn/"))
        .collect();
    assert!(!cdn.is_empty(), "no CDN request: {:?}", hub.requests());
    assert!(
        cdn.iter().all(|r| r.contains("bytes=")),
        "a CDN read without Range: {cdn:?}"
    );

    // Whole files: small (git) ones and LFS ones, of each repository type.
    for rel in [
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer/tokenizer.json",
        "tokenizer/vocab.txt",
        "many/f044.txt",
    ] {
        let want = hub.file(&format!("models/{MODEL}"), rel);
        let path = m.path(&format!("model/{rel}"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            want.len() as u64,
            "{rel}"
        );
        assert!(std::fs::read(&path).unwrap() == want, "{rel} differs");
    }
    let parquet = "data/train-00000-of-00001.parquet";
    assert!(
        std::fs::read(m.path(&format!("set/{parquet}"))).unwrap()
            == hub.file("datasets/ikf-test/tiny-set", parquet)
    );
    assert_eq!(
        std::fs::read(m.path("space/app.py")).unwrap(),
        b"import gradio as gr\n"
    );
    // The dataset was read at its commit id, not at main.
    assert!(hub
        .requests()
        .iter()
        .any(|r| r.contains(&format!("/resolve/{set_rev}/"))));

    // Read-only: writes answer EROFS.
    assert_eq!(errno(&std::fs::write(m.path("model/new.txt"), b"x")), libc::EROFS);
    assert_eq!(
        errno(&std::fs::remove_file(m.path("model/config.json"))),
        libc::EROFS
    );
}

/// Runs `mount` with `config` in a fresh dir, expecting it to fail: returns
/// its stderr and how long it took.
fn failed_mount(config: &str, envs: &[(&str, Option<&str>)]) -> (String, Duration) {
    let dir = support::temp_dir();
    let (mnt, home) = (dir.path().join("mnt"), dir.path().join("home"));
    std::fs::create_dir_all(&mnt).unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, config).unwrap();
    let t = Instant::now();
    let out = run_cli_env(
        &home,
        &[
            "mount",
            &mnt.display().to_string(),
            "--config",
            &file.display().to_string(),
        ],
        envs,
    );
    let took = t.elapsed();
    if out.status.success() {
        let _ = run_cli(&home, &["unmount", &mnt.display().to_string()]);
        panic!("mount succeeded: {config}");
    }
    (String::from_utf8_lossy(&out.stderr).into_owned(), took)
}

#[test]
fn hf_missing_revision_is_a_clear_error_at_mount_and_backend_add() {
    let Some(hub) = Hub::start(None) else {
        return;
    };
    let ep = hub.endpoint.clone();
    let hf_home = support::temp_dir();
    let home = hf_home.path().display().to_string();
    let envs = env(&home, None);

    // At mount: exit 1, naming the revision with the Hub's message, quickly.
    let (err, took) = failed_mount(&hf_entry("/model", &ep, "revision = \"v9-missing\"\n"), &envs);
    assert!(
        err.contains("v9-missing") && err.contains("Invalid rev id"),
        "{err}"
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
    // An unknown repository too.
    let (err, _) = failed_mount(
        &format!("[[mount]]\npath = \"/x\"\nuri = \"hf://ikf-test/no-such-repo?endpoint={ep}\"\n"),
        &envs,
    );
    assert!(err.contains("Repository not found"), "{err}");

    // `backend add` on a running mount: refused with the same message, the
    // table unchanged; with a good revision it mounts and reads.
    let m = Mounted::with_config_env(|_| None, &[], &envs);
    let endpoint = format!("endpoint={ep}");
    let repo = format!("repo_id={MODEL}");
    // `-m`: other mounts may be running on this machine.
    let mnt = m.mnt.display().to_string();
    let out = run_cli_env(
        &m.home,
        &[
            "backend",
            "add",
            "/hf",
            "hf",
            "-O",
            &repo,
            "-O",
            &endpoint,
            "-O",
            "revision=v9-missing",
            "-m",
            &mnt,
        ],
        &envs,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("Invalid rev id: v9-missing"),
        "{err}"
    );
    assert!(!names(&m.mnt).contains(&"hf".to_string()));
    let out = run_cli_env(
        &m.home,
        &[
            "backend", "add", "/hf", "hf", "-O", &repo, "-O", &endpoint, "-m", &mnt,
        ],
        &envs,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        std::fs::read(m.path("hf/config.json")).unwrap(),
        hub.file(&format!("models/{MODEL}"), "config.json")
    );
    let list =
        String::from_utf8_lossy(&run_cli(&m.home, &["backend", "list", "-m", &mnt]).stdout).into_owned();
    assert!(list.contains("/hf") && list.contains("hf"), "{list}");
}

#[test]
fn hf_token_comes_from_the_config_or_hf_token() {
    let Some(hub) = Hub::start(Some("hf_secret_test_token")) else {
        return;
    };
    let ep = hub.endpoint.clone();
    let hf_home = support::temp_dir();
    let home = hf_home.path().display().to_string();
    let want = hub.file(&format!("models/{MODEL}"), "tokenizer/vocab.txt");

    // No token: the Hub refuses, so does the mount.
    let (err, _) = failed_mount(&hf_entry("/model", &ep, ""), &env(&home, None));
    assert!(err.contains("Invalid credentials"), "{err}");

    // The token in the config.
    let m = Mounted::with_config_env(
        |_| Some(hf_entry("/model", &ep, "token = \"hf_secret_test_token\"\n")),
        &[],
        &env(&home, None),
    );
    assert!(std::fs::read(m.path("model/tokenizer/vocab.txt")).unwrap() == want);
    // It is never shown.
    let mnt = m.mnt.display().to_string();
    let list = String::from_utf8_lossy(&run_cli(&m.home, &["backend", "list", "--json", "-m", &mnt]).stdout)
        .into_owned();
    assert!(
        !list.contains("hf_secret_test_token") && list.contains("repo_id"),
        "{list}"
    );
    drop(m);

    // HF_TOKEN in the daemon's environment.
    let m = Mounted::with_config_env(
        |_| Some(hf_entry("/model", &ep, "")),
        &[],
        &env(&home, Some("hf_secret_test_token")),
    );
    assert!(std::fs::read(m.path("model/tokenizer/vocab.txt")).unwrap() == want);
    assert_eq!(
        names(&m.path("model/tokenizer")),
        vec!["tokenizer.json", "vocab.txt"]
    );
}
