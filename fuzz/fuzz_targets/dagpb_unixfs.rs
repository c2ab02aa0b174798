//! Fuzz the dag-pb and UnixFS decoders (and their round trip).
#![no_main]

use ipfs_kit_fuse::car::{decode_dagpb, UnixfsData};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(node) = decode_dagpb(data) {
        if let Some(d) = node.data.as_deref() {
            if let Ok(u) = UnixfsData::decode(d) {
                assert_eq!(UnixfsData::decode(&u.encode()).ok(), Some(u));
            }
        }
    }
    let _ = UnixfsData::decode(data);
});
