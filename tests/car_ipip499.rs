//! IPIP-0499 "UnixFS CID Profiles" published vectors (kubo's
//! test/cli/cid_profiles_test.go). Inputs are recreated here from the seeds
//! (ChaCha20 keystream keyed by sha256(seed), zero nonce); the expected CIDs
//! are the published ones. The two 1 GiB v1 vectors are in
//! scripts/ipip499-big.sh instead.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use ipfs_kit_fuse::car::{cid_of_bytes, cid_of_path, DirBuilder, Discard, Profile};
use sha2::{Digest, Sha256};

const K: usize = 262_144;
const M: usize = 1_048_576;
/// kubo's name alphabet (39 runes, '0' twice).
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz01234567890-_";

fn stream(seed: &str) -> ChaCha20 {
    let key: [u8; 32] = Sha256::digest(seed.as_bytes()).into();
    ChaCha20::new(&key.into(), &[0u8; 12].into())
}

fn bytes(size: usize, seed: &str) -> Vec<u8> {
    let mut buf = vec![0u8; size];
    stream(seed).apply_keystream(&mut buf);
    buf
}

fn names(n: usize, len: usize, last_len: usize, seed: &str) -> Vec<String> {
    let mut s = stream(seed);
    (0..n)
        .map(|i| {
            let mut b = vec![0u8; if i == n - 1 { last_len } else { len }];
            s.apply_keystream(&mut b);
            b.iter()
                .map(|&c| ALPHABET[c as usize % ALPHABET.len()] as char)
                .collect()
        })
        .collect()
}

fn dir_cid(profile: Profile, names: &[String]) -> String {
    let x = cid_of_bytes(profile, b"x").unwrap();
    let x_size = if profile == Profile::UnixfsV0_2015 {
        9
    } else {
        1
    };
    let mut d = DirBuilder::new(profile);
    for n in names {
        d.add(n, x, x_size).unwrap();
    }
    d.finish(&mut Discard).unwrap().cid.to_string()
}

#[test]
fn file_vectors_match_when_profile_v0() {
    let p = Profile::UnixfsV0_2015;
    assert_eq!(
        cid_of_bytes(p, b"hello world").unwrap().to_string(),
        "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
    );
    let c = bytes(K + 1, "chunk-v0-seed");
    assert_eq!(
        cid_of_bytes(p, &c[..K]).unwrap().to_string(),
        "QmWmRj3dFDZdb6ABvbmKhEL6TmPbAfBZ1t5BxsEyJrcZhE"
    );
    assert_eq!(
        cid_of_bytes(p, &c).unwrap().to_string(),
        "QmYyLxtzZyW22zpoVAtKANLRHpDjZtNeDjQdJrcQNWoRkJ"
    );
    let w = bytes(174 * K + 1, "v0-seed");
    assert_eq!(
        cid_of_bytes(p, &w[..174 * K]).unwrap().to_string(),
        "QmUbBALi174SnogsUzLpYbD4xPiBSFANF4iztWCsHbMKh2"
    );
    assert_eq!(
        cid_of_bytes(p, &w).unwrap().to_string(),
        "QmV81WL765sC8DXsRhE5fJv2rwhS4icHRaf3J9Zk5FdRnW"
    );
}

#[test]
fn file_vectors_match_when_profile_v1() {
    let p = Profile::UnixfsV1_2025;
    assert_eq!(
        cid_of_bytes(p, b"hello world").unwrap().to_string(),
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    );
    let c = bytes(M + 1, "chunk-v1-seed");
    assert_eq!(
        cid_of_bytes(p, &c[..M]).unwrap().to_string(),
        "bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta"
    );
    assert_eq!(
        cid_of_bytes(p, &c).unwrap().to_string(),
        "bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64"
    );
}

#[test]
fn directory_vectors_match_when_profile_v0() {
    let p = Profile::UnixfsV0_2015;
    let basic = names(4096, 30, 30, "hamt-unixfs-v0-2015");
    assert_eq!(
        dir_cid(p, &basic),
        "QmX5GtRk3TSSEHtdrykgqm4eqMEn3n2XhfkFAis5fjyZmN"
    );
    let hamt = names(4033, 31, 31, "hamt-unixfs-v0-2015");
    assert_eq!(
        dir_cid(p, &hamt),
        "QmeMiJzmhpJAUgynAcxTQYek5PPKgdv3qEvFsdV3XpVnvP"
    );
}

#[test]
fn directory_vectors_match_when_profile_v1() {
    let p = Profile::UnixfsV1_2025;
    let basic = names(4766, 11, 21, "hamt-unixfs-v1-2025");
    assert_eq!(
        dir_cid(p, &basic),
        "bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4"
    );
    let hamt = names(4766, 11, 22, "hamt-unixfs-v1-2025");
    assert_eq!(
        dir_cid(p, &hamt),
        "bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu"
    );
}

#[test]
fn directory_vector_matches_when_read_from_disk() {
    let tmp = tempfile::tempdir().unwrap();
    for n in names(4766, 11, 22, "hamt-unixfs-v1-2025") {
        std::fs::write(tmp.path().join(n), b"x").unwrap();
    }
    let cid = cid_of_path(Profile::UnixfsV1_2025, tmp.path(), false).unwrap();
    assert_eq!(
        cid.to_string(),
        "bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu"
    );
}

/// Feed `size` keystream bytes of `seed` into a FileBuilder, 1 MiB at a time.
fn streamed_cid(profile: Profile, size: usize, seed: &str) -> String {
    let mut s = stream(seed);
    let mut sink = Discard;
    let mut b = ipfs_kit_fuse::car::FileBuilder::new(profile, &mut sink);
    let mut buf = vec![0u8; M];
    let mut left = size;
    while left > 0 {
        let n = left.min(M);
        buf[..n].fill(0);
        s.apply_keystream(&mut buf[..n]);
        b.write(&buf[..n]).unwrap();
        left -= n;
    }
    b.finish().unwrap().cid.to_string()
}

/// The two 1 GiB vectors: run by scripts/ipip499-big.sh (`--ignored`, release).
#[test]
#[ignore = "1 GiB inputs; run scripts/ipip499-big.sh"]
fn big_file_vectors_match_when_profile_v1() {
    let p = Profile::UnixfsV1_2025;
    assert_eq!(
        streamed_cid(p, 1024 * M, "v1-2025-seed"),
        "bafybeihmf37wcuvtx4hpu7he5zl5qaf2ineo2lqlfrapokkm5zzw7zyhvm"
    );
    assert_eq!(
        streamed_cid(p, 1024 * M + 1, "v1-2025-seed"),
        "bafybeibdsi225ugbkmpbdohnxioyab6jsqrmkts3twhpvfnzp77xtzpyhe"
    );
}
