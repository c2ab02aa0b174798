//! What a mount asks an S3 server, counted by the server itself (moto's
//! request recorder, on 127.0.0.1): a small object read cold costs one GET
//! and no HEAD, after a listing (`readdirplus`) as after a lookup by name;
//! a large one is not fetched whole by its stat; and the stats remembered
//! for that never hide a change made through the mount, nor one made
//! behind its back for longer than the attribute TTL.

mod common_s3;
mod support;

use common_s3::{Recorded, S3Server};
use std::time::Duration;
use support::*;

const BUCKET: &str = "req";
/// Small objects: far below the 64 KiB a stat fetches whole.
const SMALL: usize = 4096;
const NSMALL: usize = 24;
/// A large object: above what a stat fetches whole.
const LARGE: usize = 300 << 10;
/// Longer than the mount's attribute TTL (1 s by default), so nothing
/// remembered from before is used.
const PAST_TTL: Duration = Duration::from_millis(1600);
/// The attribute TTL of the mounts that count requests: what is promised is
/// "no second request within the TTL", and reading the files one by one
/// can outlast the default 1 s on a loaded machine.
const COUNTING_TTL: &str = "[vfs]\nattr_ttl_secs = 30.0\n";

fn small_name(i: usize) -> String {
    format!("f{i:02}.txt")
}

fn put(s3: &S3Server, key: &str, body: &[u8]) {
    let code = s3.request("PUT", &format!("/{BUCKET}/{key}"), body);
    assert_eq!(code, 200, "PUT {key}");
}

fn start(extra: &str) -> Option<(S3Server, Mounted)> {
    let s3 = S3Server::start()?;
    s3.create_bucket(BUCKET);
    for i in 0..NSMALL {
        put(
            &s3,
            &format!("d/{}", small_name(i)),
            &random_bytes(i as u64, SMALL),
        );
    }
    put(&s3, "d/large.bin", &random_bytes(99, LARGE));
    put(&s3, "d/empty", b"");
    let cfg = format!("{}{extra}", s3.mount_toml("/s3", BUCKET));
    let m = Mounted::with_config(move |_| Some(cfg), &[]);
    Some((s3, m))
}

/// The requests of `rec` on the object `key`, by method.
fn on<'a>(rec: &'a [Recorded], method: &str, key: &str) -> Vec<&'a Recorded> {
    let path = format!("/{BUCKET}/{key}");
    rec.iter()
        .filter(|r| r.method == method && r.path.split('?').next() == Some(path.as_str()))
        .collect()
}

#[test]
fn a_listed_small_object_costs_one_get_and_no_head() {
    let Some((s3, m)) = start(COUNTING_TTL) else {
        return;
    };
    let dir = m.path("s3/d");
    s3.start_recording();
    // As `find d -type f | xargs cat` does: one listing, then each file read.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), NSMALL + 2, "{names:?}");
    for i in 0..NSMALL {
        let got = std::fs::read(dir.join(small_name(i))).unwrap();
        assert_eq!(got, random_bytes(i as u64, SMALL), "{}", small_name(i));
    }
    assert_eq!(
        std::fs::read(dir.join("large.bin")).unwrap(),
        random_bytes(99, LARGE)
    );
    assert!(std::fs::read(dir.join("empty")).unwrap().is_empty());
    let rec = s3.recording();
    for i in 0..NSMALL {
        let key = format!("d/{}", small_name(i));
        let gets = on(&rec, "GET", &key);
        assert_eq!(gets.len(), 1, "{key}: GETs {gets:?} of {rec:#?}");
        assert!(on(&rec, "HEAD", &key).is_empty(), "{key}: a HEAD was sent");
    }
    // The large object's stat was a HEAD: no ranged GET of 64 KiB for it.
    let large = on(&rec, "GET", "d/large.bin");
    assert!(
        large.iter().all(|r| r.range.as_deref() != Some("bytes=0-65535")),
        "large.bin fetched by its stat: {large:?}"
    );
    assert_eq!(on(&rec, "HEAD", "d/large.bin").len(), 1, "{rec:?}");
}

#[test]
fn a_small_object_looked_up_by_name_costs_one_get_and_no_head() {
    let Some((s3, m)) = start(COUNTING_TTL) else {
        return;
    };
    let dir = m.path("s3/d");
    // Nothing listed or looked up before: the first contact is a lookup.
    s3.start_recording();
    let st = std::fs::metadata(dir.join(small_name(3))).unwrap();
    assert_eq!(st.len(), SMALL as u64);
    let got = std::fs::read(dir.join(small_name(3))).unwrap();
    assert_eq!(got, random_bytes(3, SMALL));
    let rec = s3.recording();
    let key = format!("d/{}", small_name(3));
    assert_eq!(on(&rec, "GET", &key).len(), 1, "{rec:?}");
    assert!(on(&rec, "HEAD", &key).is_empty(), "{rec:?}");
    // An empty object (a ranged GET of it is refused) and a large one, by name.
    assert_eq!(std::fs::metadata(dir.join("empty")).unwrap().len(), 0);
    assert!(std::fs::read(dir.join("empty")).unwrap().is_empty());
    assert_eq!(
        std::fs::metadata(dir.join("large.bin")).unwrap().len(),
        LARGE as u64
    );
    assert_eq!(
        std::fs::read(dir.join("large.bin")).unwrap(),
        random_bytes(99, LARGE)
    );
    // A name that is a directory, not an object, is still one.
    assert!(m.path("s3/d").is_dir());
    assert!(!m.path("s3/nothing").exists());
}

#[test]
fn remembered_stats_never_hide_writes_through_the_mount_nor_outside_ones_past_the_ttl() {
    // The default attribute TTL.
    let Some((s3, m)) = start("") else { return };
    let dir = m.path("s3/d");
    let a = dir.join(small_name(0));
    let b = dir.join(small_name(1));
    std::fs::read_dir(&dir).unwrap().for_each(drop);
    assert_eq!(std::fs::read(&a).unwrap(), random_bytes(0, SMALL));
    assert_eq!(std::fs::read(&b).unwrap(), random_bytes(1, SMALL));
    // Through the mount: seen at once, by size and bytes.
    std::fs::write(&a, b"new through the mount").unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), b"new through the mount");
    assert_eq!(std::fs::metadata(&a).unwrap().len(), 21);
    std::fs::remove_file(&a).unwrap();
    assert!(!a.exists());
    // Behind the mount's back: seen once the attribute TTL has passed.
    put(&s3, &format!("d/{}", small_name(1)), b"changed outside");
    std::thread::sleep(PAST_TTL);
    assert_eq!(std::fs::read(&b).unwrap(), b"changed outside");
    put(&s3, "d/new.txt", b"made outside");
    std::thread::sleep(PAST_TTL);
    assert_eq!(std::fs::read(dir.join("new.txt")).unwrap(), b"made outside");
}
