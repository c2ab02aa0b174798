//! DAG parameter sets ("profiles", IPIP-0499) and the rules they imply.
//!
//! A [`Profile`] fixes everything that changes a CID: CID version, leaf
//! encoding, chunk size, file DAG width and when a directory becomes a HAMT.
//! Names round-trip through `FromStr`/`Display`; `storacha` is an alias of
//! `ipfs-car` and displays as `ipfs-car`.

use super::error::CarError;
use std::fmt;
use std::str::FromStr;

/// One KiB; the sizes below are stated in it.
const KIB: usize = 1024;

/// A named set of DAG parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// IPIP-0499 `unixfs-v1-2025`: CIDv1, raw leaves, 1 MiB chunks, 1024 links,
    /// HAMT when the basic directory block would exceed 256 KiB.
    #[default]
    UnixfsV1_2025,
    /// IPIP-0499 `unixfs-v0-2015` (kubo's classic `ipfs add`): CIDv0, dag-pb
    /// leaves, 256 KiB chunks, 174 links, HAMT when name+CID bytes exceed 256 KiB.
    UnixfsV0_2015,
    /// ipfs-car 3 / the Storacha client: files as `unixfs-v1-2025`, HAMT when a
    /// directory has more than 1000 entries.
    IpfsCar,
}

/// When a directory is written as a HAMT instead of one basic node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardRule {
    /// The exact serialized basic directory block exceeds this many bytes.
    BlockBytesOver(usize),
    /// The sum over entries of (name bytes + binary CID bytes) exceeds this.
    LinksBytesOver(usize),
    /// The directory has more than this many entries.
    EntriesOver(usize),
}

impl Profile {
    /// Every profile, for help texts and tests.
    pub const ALL: [Profile; 3] = [
        Profile::UnixfsV1_2025,
        Profile::UnixfsV0_2015,
        Profile::IpfsCar,
    ];

    /// The profile's canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Profile::UnixfsV1_2025 => "unixfs-v1-2025",
            Profile::UnixfsV0_2015 => "unixfs-v0-2015",
            Profile::IpfsCar => "ipfs-car",
        }
    }

    /// CIDv0 (`Qm...`) or CIDv1.
    pub fn cid_v0(self) -> bool {
        self == Profile::UnixfsV0_2015
    }

    /// File leaves as raw blocks (codec 0x55) rather than dag-pb File nodes.
    pub fn raw_leaves(self) -> bool {
        !self.cid_v0()
    }

    /// Fixed chunk size in bytes.
    pub fn chunk_size(self) -> usize {
        match self {
            // kubo's default `size-262144` chunker.
            Profile::UnixfsV0_2015 => 256 * KIB,
            // IPIP-0499 v1-2025 and ipfs-car both use 1 MiB chunks.
            _ => 1024 * KIB,
        }
    }

    /// Maximum links per file node (balanced layout width).
    pub fn max_links(self) -> usize {
        match self {
            // kubo's historic helpers.DefaultLinksPerBlock.
            Profile::UnixfsV0_2015 => 174,
            // IPIP-0499 v1-2025 and ipfs-car's `withWidth(1024)`.
            _ => 1024,
        }
    }

    /// When a directory becomes a HAMT.
    pub fn shard_rule(self) -> ShardRule {
        match self {
            // 256 KiB: kubo's Internal.UnixFSShardingSizeThreshold default.
            Profile::UnixfsV0_2015 => ShardRule::LinksBytesOver(256 * KIB),
            Profile::UnixfsV1_2025 => ShardRule::BlockBytesOver(256 * KIB),
            // ipfs-car's SHARD_THRESHOLD: "shard directory after > 1,000 items".
            Profile::IpfsCar => ShardRule::EntriesOver(1000),
        }
    }

    /// Byte length of a root CID this profile produces (sha2-256 in both
    /// versions): 34 for CIDv0, 36 for CIDv1. CAR writers reserve header space with it.
    pub fn root_cid_len(self) -> usize {
        if self.cid_v0() {
            34
        } else {
            36
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = CarError;

    fn from_str(s: &str) -> Result<Self, CarError> {
        match s {
            "unixfs-v1-2025" => Ok(Profile::UnixfsV1_2025),
            "unixfs-v0-2015" => Ok(Profile::UnixfsV0_2015),
            "ipfs-car" | "storacha" => Ok(Profile::IpfsCar),
            other => Err(CarError::Invalid(format!(
                "unknown profile {other:?} (expected unixfs-v1-2025, unixfs-v0-2015, ipfs-car or storacha)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_when_parsed_and_displayed() {
        for p in Profile::ALL {
            assert_eq!(p.to_string().parse::<Profile>().unwrap(), p);
        }
        assert_eq!("storacha".parse::<Profile>().unwrap(), Profile::IpfsCar);
        assert!("v2".parse::<Profile>().is_err());
    }
}
