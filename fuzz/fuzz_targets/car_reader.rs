//! Fuzz the CAR reader: any bytes must give blocks or an error, never a
//! panic, a hang or an allocation beyond the reader's section limit.
#![no_main]

use ipfs_kit_fuse::car::CarReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut r) = CarReader::new(std::io::Cursor::new(data)) {
        let _ = r.roots();
        while let Ok(Some(_)) = r.next_block() {}
    }
});
