//! `scheme = "ipfs-mfs"` against a real Kubo-RPC node (js-ipfs 0.66.1 from
//! scripts/kubo-rpc.sh): write, read, mkdir, rename and unlink through the
//! mount land in the node's MFS, and a written file's MFS CID names its bytes
//! in the node (`cat`). Needs root, /dev/fuse and the node.

mod car_common;
mod ipfs_common;
mod support;

use support::{errno, Mounted};

#[test]
fn ipfs_mfs_mount_writes_reads_renames_and_unlinks_in_the_node() {
    let Some(node) = ipfs_common::KuboNode::start() else {
        return;
    };
    let api = node.api.clone();
    let m = Mounted::with_config(
        |_| {
            Some(format!(
                "[[mount]]\npath = \"/mfs\"\nscheme = \"ipfs-mfs\"\n[mount.options]\napi = \"{api}\"\nroot = \"/ikf\"\n"
            ))
        },
        &[],
    );
    let data = car_common::pseudo(700_000, 5);
    std::fs::create_dir(m.path("mfs/dir")).unwrap();
    std::fs::write(m.path("mfs/dir/a.bin"), &data).unwrap();
    std::fs::write(m.path("mfs/small.txt"), b"hello mfs\n").unwrap();
    assert_eq!(std::fs::read(m.path("mfs/dir/a.bin")).unwrap(), data);

    // The node has it.
    let stat: serde_json::Value = serde_json::from_slice(&node.rpc("files/stat?arg=/ikf/dir/a.bin")).unwrap();
    assert_eq!(stat["Size"].as_u64(), Some(data.len() as u64));
    // The CID names those bytes in the node (js-ipfs's MFS DAG shape differs
    // from its `add`, so the CID itself is not compared with `add`).
    let hash = stat["Hash"].as_str().unwrap().to_string();
    assert_eq!(
        node.rpc(&format!("cat?arg={hash}")),
        data,
        "{hash} does not hold the bytes"
    );
    assert_eq!(node.rpc("files/read?arg=/ikf/small.txt"), b"hello mfs\n");

    // Overwrite with other bytes of the same size: the new bytes are read.
    std::fs::write(m.path("mfs/small.txt"), b"HELLO MFS\n").unwrap();
    assert_eq!(std::fs::read(m.path("mfs/small.txt")).unwrap(), b"HELLO MFS\n");

    // Rename and unlink.
    std::fs::rename(m.path("mfs/small.txt"), m.path("mfs/dir/moved.txt")).unwrap();
    assert_eq!(errno(&std::fs::metadata(m.path("mfs/small.txt"))), libc::ENOENT);
    assert_eq!(
        std::fs::read(m.path("mfs/dir/moved.txt")).unwrap(),
        b"HELLO MFS\n"
    );
    assert_eq!(node.rpc("files/read?arg=/ikf/dir/moved.txt"), b"HELLO MFS\n");
    std::fs::remove_file(m.path("mfs/dir/a.bin")).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(m.path("mfs/dir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["moved.txt"]);
    let ls = String::from_utf8(node.rpc("files/ls?arg=/ikf/dir")).unwrap();
    assert!(ls.contains("moved.txt") && !ls.contains("a.bin"), "{ls}");
}
