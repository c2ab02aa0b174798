//! The control socket end to end against a real mount run by the binary:
//! mount-table changes seen by `ls`, secrets hidden, `save`, bad requests,
//! peer-uid refusal, flush progress, the CLI and `shutdown`.

#[path = "ops_support/mod.rs"]
mod ops_support;

use ipfs_kit_fuse::control::protocol::{
    code, AddMount, CacheDropReply, ChangeReply, FlushReply, MountsReply, RemoveMount, ShutdownReply,
    StatsReply, StatusReply,
};
use ipfs_kit_fuse::control::{ClientError, Request};
use ops_support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn mount_table_changes_show_in_ls_when_made_over_the_socket() {
    if !can_mount() {
        return;
    }
    let place = Place::new("");
    let d = place.start(&[]);
    let mut c = d.client();
    assert_eq!(names(&d.mnt), vec!["local"]);

    let r: ChangeReply = c
        .call(&Request::MountsAdd(AddMount {
            path: "/mem/scratch".into(),
            uri: Some("memory://".into()),
            ..Default::default()
        }))
        .expect("add");
    assert_eq!(r.path, "/mem/scratch");
    assert_eq!(names(&d.mnt), vec!["local", "mem"]);
    let f = d.mnt.join("mem/scratch/a.txt");
    std::fs::write(&f, b"hello").expect("write through the new mount");
    assert_eq!(std::fs::read(&f).expect("read back"), b"hello");

    let list: MountsReply = c.call(&Request::MountsList).expect("list");
    let paths: Vec<&str> = list.mounts.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(paths, vec!["/local", "/mem/scratch"]);
    assert_eq!(list.mounts[1].scheme, "memory");

    let st: StatusReply = c.call(&Request::Status).expect("status");
    assert_eq!(st.mounts, 2);
    assert_eq!(st.mountpoint, d.mnt.display().to_string());

    let mut held = std::fs::File::open(&f).expect("open before removal");
    let _: ChangeReply = c
        .call(&Request::MountsRemove(RemoveMount {
            path: "/mem/scratch".into(),
            save: false,
        }))
        .expect("remove");
    assert_eq!(names(&d.mnt), vec!["local"]);
    assert!(std::fs::metadata(&f).is_err(), "removed mount still reachable");
    let mut buf = Vec::new();
    let err = std::io::Read::read_to_end(&mut held, &mut buf).expect_err("read from a removed mount");
    assert_eq!(err.raw_os_error(), Some(libc::ESTALE), "{err}");

    let err = c
        .call::<ChangeReply>(&Request::MountsRemove(RemoveMount {
            path: "/nope".into(),
            save: false,
        }))
        .unwrap_err();
    assert!(matches!(err, ClientError::Remote(e) if e.code == code::TABLE));
    let err = c
        .call::<ChangeReply>(&Request::MountsAdd(AddMount {
            path: "/local/inner".into(),
            scheme: Some("memory".into()),
            ..Default::default()
        }))
        .unwrap_err();
    assert!(matches!(err, ClientError::Remote(e) if e.code == code::TABLE));
}

#[test]
fn secrets_stay_hidden_and_save_writes_the_config_when_asked() {
    if !can_mount() {
        return;
    }
    let place = Place::new("");
    let d = place.start(&[]);
    let mut c = d.client();
    let other = place.dir.path().join("other");
    let _: ChangeReply = c
        .call(&Request::MountsAdd(AddMount {
            path: "/other".into(),
            scheme: Some("fs".into()),
            options: BTreeMap::from([
                ("root".to_string(), other.display().to_string()),
                ("secret_token".to_string(), "hunter2-sekrit".to_string()),
            ]),
            read_only: true,
            save: true,
            ..Default::default()
        }))
        .expect("add with save");
    let list: MountsReply = c.call(&Request::MountsList).expect("list");
    let m = list.mounts.iter().find(|m| m.path == "/other").expect("listed");
    assert_eq!(m.options["secret_token"], "***");
    assert!(m.read_only);
    let saved = std::fs::read_to_string(&place.config).expect("config");
    assert!(saved.contains("/other") && saved.contains("/local"), "{saved}");
    let cfg = ipfs_kit_fuse::config::Config::parse(&saved).expect("saved config parses");
    cfg.validate().expect("saved config is valid");
    assert!(
        std::fs::write(d.mnt.join("other/x"), b"x").is_err(),
        "read-only mount took a write"
    );

    let _: ChangeReply = c
        .call(&Request::MountsRemove(RemoveMount {
            path: "/other".into(),
            save: true,
        }))
        .expect("remove with save");
    let saved = std::fs::read_to_string(&place.config).expect("config");
    assert!(!saved.contains("/other"), "{saved}");
    assert!(!d.log_text().contains("hunter2-sekrit"), "secret in the log");
}

fn roundtrip(rd: &mut BufReader<UnixStream>, wr: &mut UnixStream, line: &[u8]) -> Value {
    wr.write_all(line).expect("send");
    let mut reply = String::new();
    rd.read_line(&mut reply).expect("reply");
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("bad reply {reply:?}: {e}"))
}

#[test]
fn bad_requests_get_error_replies_and_the_connection_keeps_serving() {
    if !can_mount() {
        return;
    }
    let place = Place::new("");
    let d = place.start(&[]);
    let s = UnixStream::connect(&d.socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut wr = s.try_clone().expect("clone");
    let mut rd = BufReader::new(s);

    let r = roundtrip(&mut rd, &mut wr, b"{not json\n");
    assert_eq!(r["error"]["code"], code::PARSE_ERROR);
    let r = roundtrip(
        &mut rd,
        &mut wr,
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"frob\"}\n",
    );
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (1.into(), code::METHOD_NOT_FOUND.into())
    );
    let r = roundtrip(
        &mut rd,
        &mut wr,
        b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"mounts.add\",\"params\":{\"path\":5}}\n",
    );
    assert_eq!(r["error"]["code"], code::INVALID_PARAMS);
    let mut big = vec![b'a'; 2 << 20];
    big.push(b'\n');
    let r = roundtrip(&mut rd, &mut wr, &big);
    assert_eq!(r["error"]["code"], code::LINE_TOO_LONG);
    assert!(r["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("longer than"));

    let r = roundtrip(
        &mut rd,
        &mut wr,
        b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"status\"}\n",
    );
    assert_eq!(r["id"], 3);
    assert!(r["result"]["uptime_secs"].is_u64(), "{r}");
    // The daemon serves new connections too.
    let _: StatusReply = d
        .client()
        .call(&Request::Status)
        .expect("status on a new connection");
}

#[test]
fn socket_is_private_and_other_uids_are_refused() {
    if !can_mount() {
        return;
    }
    let place = Place::new("");
    let d = place.start(&[]);
    let mode = std::fs::metadata(&d.socket).expect("socket").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    if !has_tool("setpriv") {
        eprintln!("skipped the uid check: setpriv is not installed");
        return;
    }
    // Open the path so only SO_PEERCRED stands in the way.
    for dir in [place.dir.path(), place.run.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    }
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod socket");
    let out = output(
        std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                BIN,
                "status",
                "--socket",
            ])
            .arg(&d.socket),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "nobody was served: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains("permission denied"), "{err}");
    let _: StatusReply = d.client().call(&Request::Status).expect("root still served");
}

#[test]
fn flush_reports_progress_and_uploads_a_file_still_open() {
    if !can_mount() {
        return;
    }
    let place = Place::new("");
    let d = place.start(&[]);
    let path = d.mnt.join("local/open.bin");
    let data = vec![7u8; 3 << 20];
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(&data).expect("write");
    let st: StatusReply = d.client().call(&Request::Status).expect("status");
    assert_eq!(st.staged_files, 1);
    assert_eq!(st.staged_bytes, data.len() as u64);
    let mut seen = Vec::new();
    let r: FlushReply = d
        .client()
        .call_with_progress(&Request::Flush, |p| seen.push(p.files_remaining))
        .expect("flush");
    assert_eq!(r.files, 1);
    assert!(seen.contains(&1), "progress: {seen:?}");
    assert_eq!(
        std::fs::read(place.backend.join("open.bin")).expect("backend"),
        data
    );
    drop(f);
    let stats: StatsReply = d.client().call(&Request::Stats).expect("stats");
    let local = stats
        .backends
        .iter()
        .find(|b| b.mount == "/local")
        .expect("local counted");
    assert!(local.bytes_written >= data.len() as u64, "{stats:?}");
    assert!(
        stats.ops.iter().any(|o| o.op == "write" && o.count > 0),
        "{stats:?}"
    );
    assert!(stats.cache.is_some(), "the mount has a block cache: {stats:?}");
    let dropped: CacheDropReply = d.client().call(&Request::CacheDrop).expect("cache.drop");
    assert!(dropped.dropped);
}

#[test]
fn cli_commands_print_tables_and_json_when_one_mount_runs() {
    if !can_mount() {
        return;
    }
    let place = Place::new("");
    let d = place.start(&[]);
    let run = |args: &[&str]| {
        let out = output(place.cmd().args(args));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {}{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    assert!(run(&["status"]).contains(&d.mnt.display().to_string()));
    let added = run(&["backend", "add", "/scratch", "memory://"]);
    assert!(added.contains("added /scratch"), "{added}");
    assert!(names(&d.mnt).contains(&"scratch".to_string()));
    let list = run(&["backend", "list"]);
    assert!(list.contains("/scratch") && list.contains("memory"), "{list}");
    let json: Value = serde_json::from_str(&run(&["backend", "list", "--json"])).expect("json list");
    assert_eq!(json["mounts"].as_array().map(Vec::len), Some(2));
    let status: Value = serde_json::from_str(&run(&["status", "--json"])).expect("json status");
    assert_eq!(status["protocol"], 1);
    assert!(run(&["stats"]).contains("BACKEND"));
    assert!(run(&["flush"]).contains("flushed"));
    run(&["backend", "remove", "/scratch"]);
    assert!(!names(&d.mnt).contains(&"scratch".to_string()));
}

#[test]
fn shutdown_request_drains_unmounts_and_exits_zero() {
    if !can_mount() {
        return;
    }
    let place = Place::new("");
    let mut d = place.start(&[]);
    std::fs::write(d.mnt.join("local/a.txt"), b"abc").expect("write");
    let r: ShutdownReply = d.client().call(&Request::Shutdown).expect("shutdown");
    assert!(r.stopping);
    let st = d.wait_exit(Duration::from_secs(60));
    assert!(st.success(), "{}; log:\n{}", describe(st), d.log_text());
    assert!(!is_mounted(&place.mnt));
    assert!(!d.socket.exists(), "socket left behind");
    assert_eq!(
        std::fs::read(place.backend.join("a.txt")).expect("backend"),
        b"abc"
    );
}
