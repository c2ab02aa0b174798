//! `ipfs push` of a bucket's mount path pushes the bucket whole: its CAR is
//! prepared as `bucket prepare-car` does and imported into a real Kubo-RPC
//! node (js-ipfs 0.66.1 from scripts/kubo-rpc.sh), and the CID printed is
//! the bucket's root CID, which is also the node's own `add` of the same
//! files; the node pins it and serves every file. Over the control socket
//! the push reports packing, then the CAR's upload up to its size. Needs root, /dev/fuse and
//! the node (IPFS_KIT_REQUIRE_KUBO_RPC=1 makes a missing install a failure).

mod car_common;
mod ipfs_common;
mod support;

use ipfs_kit_fuse::control::protocol::{IpfsPush, IpfsPushReply};
use ipfs_kit_fuse::control::Request;
use serde_json::Value;
use support::{random_bytes, run_cli, Mounted};

/// The node's CIDv1 settings that match our default profile (unixfs-v1-2025).
const V1: &str = "cid-version=1&raw-leaves=true&chunker=size-1048576&cid-base=base32";

#[test]
fn ipfs_push_of_a_bucket_pushes_its_root_cid() {
    let Some(node) = ipfs_common::KuboNode::start() else {
        return;
    };
    let api = node.api.clone();
    let m = Mounted::with_config(
        |root| {
            let media = root.join("media");
            std::fs::create_dir_all(&media).unwrap();
            Some(format!(
                "[[mount]]\npath = \"/buckets/media\"\nscheme = \"fs\"\nbucket = \"media\"\n[mount.options]\nroot = \"{}\"\n",
                media.display()
            ))
        },
        &[],
    );
    let dir = m.path("buckets/media");
    let big = random_bytes(11, 2 * 1024 * 1024 + 77);
    std::fs::write(dir.join("a.txt"), b"hello bucket\n").unwrap();
    std::fs::create_dir_all(dir.join("d/e")).unwrap();
    std::fs::write(dir.join("d/b.bin"), &big).unwrap();
    std::fs::write(dir.join("d/e/c.txt"), b"c").unwrap();

    let mnt = m.mnt.display().to_string();
    let out = run_cli(
        &m.home,
        &["ipfs", "push", "/buckets/media", "--api", &api, "-m", &mnt],
    );
    assert!(
        out.status.success(),
        "push: {}\nlog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        m.log()
    );
    let pushed = String::from_utf8_lossy(&out.stdout).trim().to_string();

    // The bucket's root CID, as `bucket list` reports it.
    let out = run_cli(&m.home, &["bucket", "list", "--json", "-m", &mnt]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["buckets"][0]["name"], "media");
    assert_eq!(
        list["buckets"][0]["root_cid"].as_str(),
        Some(pushed.as_str()),
        "{list}"
    );
    // The same files added by the node itself give that CID.
    assert_eq!(
        node.add(&m.root().join("media"), V1),
        pushed,
        "node's own add differs"
    );

    // The node pinned it and serves the files under it.
    let pins =
        String::from_utf8(node.rpc(&format!("pin/ls?arg={pushed}&type=recursive&cid-base=base32"))).unwrap();
    assert!(pins.contains(&pushed), "not pinned: {pins}");
    assert_eq!(node.rpc(&format!("cat?arg={pushed}/a.txt")), b"hello bucket\n");
    assert!(
        node.rpc(&format!("cat?arg={pushed}/d/b.bin")) == big,
        "d/b.bin differs in the node"
    );
    assert_eq!(node.rpc(&format!("cat?arg={pushed}/d/e/c.txt")), b"c");

    // Over the socket: the bucket's files are packed, then the CAR is sent
    // with `uploading` notifications that end at the CAR's size.
    let mut stages = Vec::new();
    let reply: IpfsPushReply = m
        .socket_client()
        .call_with_progress(
            &Request::IpfsPush(IpfsPush {
                path: "/buckets/media".into(),
                api: api.clone(),
                profile: None,
                hidden: false,
            }),
            |p| stages.push((p.stage.clone().unwrap_or_default(), p.done, p.total)),
        )
        .unwrap();
    assert_eq!(reply.root, pushed);
    let first_upload = stages
        .iter()
        .position(|s| s.0 == "uploading")
        .unwrap_or_else(|| panic!("no upload progress: {stages:?}"));
    assert!(
        stages[..first_upload].iter().any(|s| s.0 == "packing")
            && stages[first_upload..].iter().all(|s| s.0 == "uploading"),
        "packing, then uploading: {stages:?}"
    );
    assert_eq!(
        stages.last().map(|s| (s.1, s.2)),
        Some((Some(reply.car_bytes), Some(reply.car_bytes))),
        "{stages:?}"
    );

    // A profile other than the bucket's is refused, not silently used.
    let out = run_cli(
        &m.home,
        &[
            "ipfs",
            "push",
            "/buckets/media",
            "--api",
            &api,
            "-m",
            &mnt,
            "--profile",
            "unixfs-v0-2015",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("own profile"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
