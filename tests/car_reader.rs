//! Bad input for the CAR reader, the unpacker and the decoders: truncated
//! and corrupt CARs, wrong hashes, absurd lengths, hostile names. Each must
//! give a clear error (naming the block/offset), never a panic.

use ipfs_kit_fuse::car::{
    cid_of_block, pack_file, walk_car, BlockSink, CarError, CarReader, CarStore, CarWriter, DirBuilder,
    Order, Profile, WalkOptions, DAG_PB, RAW,
};
use std::io::Cursor;

fn small_car(dir: &std::path::Path) -> Vec<u8> {
    let input = dir.join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    std::fs::write(input.join("a"), vec![7u8; 3000]).unwrap();
    std::fs::write(input.join("sub/b"), b"hello").unwrap();
    let car = dir.join("x.car");
    pack_file(
        Profile::UnixfsV1_2025,
        &input,
        &WalkOptions::default(),
        &car,
        Order::RootLast,
        false,
        &|_| {},
    )
    .unwrap();
    std::fs::read(car).unwrap()
}

fn read_all(bytes: &[u8]) -> Result<usize, CarError> {
    let mut r = CarReader::new(Cursor::new(bytes))?;
    let mut n = 0;
    while r.next_block()?.is_some() {
        n += 1;
    }
    Ok(n)
}

#[test]
fn reader_errors_when_car_truncated_anywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let car = small_car(tmp.path());
    assert_eq!(read_all(&car).unwrap(), 4);
    let ends = section_ends(&car);
    assert_eq!(ends.len(), 5, "header and 4 blocks");
    for cut in 0..car.len() {
        match (read_all(&car[..cut]), ends.iter().position(|&e| e == cut)) {
            // A cut exactly after a section is a valid shorter CAR with the
            // blocks before it (the header is section 0).
            (Ok(n), Some(i)) => assert_eq!(n, i, "cut at {cut}"),
            (Ok(n), None) => panic!("truncated CAR (cut at byte {cut}) read as {n} blocks"),
            (Err(e), Some(_)) => panic!("a CAR cut between sections (at {cut}) refused: {e}"),
            (Err(e), None) => {
                let msg = e.to_string();
                assert!(msg.contains("byte"), "error without offset: {msg}");
            }
        }
    }
}

/// The end offset of each section (header, then each block), from the
/// length prefixes (unsigned LEB128 varints, as the CARv1 spec frames them).
fn section_ends(car: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut pos = 0;
    while pos < car.len() {
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let b = car[pos];
            pos += 1;
            len |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        pos += len;
        ends.push(pos);
    }
    ends
}

#[test]
fn reader_names_block_when_hash_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let mut car = small_car(tmp.path());
    let last = car.len() - 3;
    car[last] ^= 0x55;
    match read_all(&car) {
        Err(CarError::HashMismatch { index, offset, .. }) => {
            assert_eq!(index, 3);
            assert!(offset > 0);
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
}

#[test]
fn reader_refuses_when_lengths_are_absurd() {
    // Header length 2^62.
    assert!(read_all(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]).is_err());
    let tmp = tempfile::tempdir().unwrap();
    let car = small_car(tmp.path());
    let header_len = car[0] as usize + 1;
    let mut bad = car[..header_len].to_vec();
    bad.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let e = read_all(&bad).unwrap_err().to_string();
    assert!(e.contains("section length"), "{e}");
    assert!(read_all(b"").is_err());
    assert!(read_all(&[0x01, 0xa0]).is_err());
}

#[test]
fn reader_accepts_when_rootless_or_carv2() {
    let cid = cid_of_block(false, RAW, b"abc");
    let mut w = CarWriter::new(Vec::new(), &[], false).unwrap();
    w.put(&cid, b"abc").unwrap();
    let v1 = w.into_inner().unwrap();
    let r = CarReader::new(Cursor::new(&v1)).unwrap();
    assert!(r.roots().is_empty());
    assert_eq!(read_all(&v1).unwrap(), 1);

    // CARv2: pragma, 40-byte header, padding, the CARv1 payload, then junk "index".
    let mut v2 = vec![0x0a, 0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x02];
    let data_offset = 51u64 + 5;
    let mut h = [0u8; 40];
    h[16..24].copy_from_slice(&data_offset.to_le_bytes());
    h[24..32].copy_from_slice(&(v1.len() as u64).to_le_bytes());
    h[32..40].copy_from_slice(&(data_offset + v1.len() as u64).to_le_bytes());
    v2.extend_from_slice(&h);
    v2.extend_from_slice(&[0u8; 5]);
    v2.extend_from_slice(&v1);
    v2.extend_from_slice(&[0xde, 0xad]);
    let r = CarReader::new(Cursor::new(&v2)).unwrap();
    assert_eq!(r.version(), 2);
    assert_eq!(read_all(&v2).unwrap(), 1);
    // A data size that runs past the file is an error, not a hang.
    let mut short = v2.clone();
    short.truncate(v2.len() - 6);
    assert!(read_all(&short).is_err());
}

fn car_with(blocks: &[(cid::Cid, Vec<u8>)], root: cid::Cid, dir: &std::path::Path) -> std::path::PathBuf {
    let mut w = CarWriter::new(Vec::new(), &[root], false).unwrap();
    for (c, b) in blocks {
        w.put(c, b).unwrap();
    }
    let p = dir.join("h.car");
    std::fs::write(&p, w.into_inner().unwrap()).unwrap();
    p
}

#[test]
fn unpack_refuses_when_entry_name_escapes() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = cid_of_block(false, RAW, b"pwned");
    // A hand-made directory node with a ".." entry (DirBuilder refuses to make one).
    let mut node = Vec::new();
    let cid_bytes = leaf.to_bytes();
    let mut link = vec![0x0a, cid_bytes.len() as u8];
    link.extend_from_slice(&cid_bytes);
    link.extend_from_slice(&[0x12, 0x02, b'.', b'.', 0x18, 0x05]);
    node.push(0x12);
    node.push(link.len() as u8);
    node.extend_from_slice(&link);
    node.extend_from_slice(&[0x0a, 0x02, 0x08, 0x01]);
    let dir = cid_of_block(false, DAG_PB, &node);
    let car = car_with(&[(leaf, b"pwned".to_vec()), (dir, node)], dir, tmp.path());
    let mut store = CarStore::open(&car).unwrap();
    let out = tmp.path().join("out");
    let e = walk_car(&mut store, &dir, Some(&out)).unwrap_err().to_string();
    assert!(e.contains(".."), "{e}");
    assert!(!tmp.path().join("pwned").exists());
}

#[test]
fn unpack_errors_when_block_missing_or_not_unixfs() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = cid_of_block(false, RAW, b"gone");
    let mut d = DirBuilder::new(Profile::UnixfsV1_2025);
    d.add("f", leaf, 4).unwrap();
    let mut sink = ipfs_kit_fuse::car::MemorySink::default();
    let root = d.finish(&mut sink).unwrap().cid;
    let car = car_with(&sink.blocks, root, tmp.path());
    let mut store = CarStore::open(&car).unwrap();
    let e = walk_car(&mut store, &root, None).unwrap_err();
    assert!(matches!(e, CarError::MissingBlock(_)), "{e}");

    let garbage = vec![0xff, 0x01];
    let bad = cid_of_block(false, DAG_PB, &garbage);
    let car = car_with(&[(bad, garbage)], bad, tmp.path());
    let mut store = CarStore::open(&car).unwrap();
    assert!(walk_car(&mut store, &bad, None).is_err());
}

#[test]
fn unpack_stops_when_file_dag_exceeds_declared_size() {
    use ipfs_kit_fuse::car::{encode_dagpb, DataType, PbLink, UnixfsData};
    let tmp = tempfile::tempdir().unwrap();
    let leaf_bytes = vec![1u8; 1000];
    let leaf = cid_of_block(false, RAW, &leaf_bytes);
    // A node that lists the same leaf 4 times but claims 10 bytes; stacking
    // such nodes is how a small CAR expands into an enormous file.
    let mut data = UnixfsData::new(DataType::File);
    data.filesize = Some(10);
    data.blocksizes = vec![1000; 4];
    let links: Vec<PbLink> = (0..4)
        .map(|_| PbLink {
            cid: leaf,
            name: String::new(),
            tsize: 1000,
        })
        .collect();
    let node = encode_dagpb(&links, &data.encode());
    let root = cid_of_block(false, DAG_PB, &node);
    let car = car_with(&[(leaf, leaf_bytes), (root, node)], root, tmp.path());
    let mut store = CarStore::open(&car).unwrap();
    let e = walk_car(&mut store, &root, Some(&tmp.path().join("out"))).unwrap_err();
    assert!(e.to_string().contains("filesize"), "{e}");
}
