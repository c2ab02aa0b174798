//! Cache configuration: the `[cache]` table of the config file.
//!
//! Keys: `memory`, `disk`, `block_size` (sizes as `"256MiB"`-style strings or
//! plain integers of bytes) and `dir`. Missing keys take the defaults below;
//! unknown keys and unparsable sizes are errors naming the key and the value.
//! [`CacheConfig::validate`] checks the ranges before the cache opens.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::CacheError;

/// One mebibyte.
const MIB: u64 = 1 << 20;

/// 256 MiB of RAM holds a 64 MiB readahead window for a few files at once and
/// stays small beside the 24 GiB machines we target.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 * MIB;
/// 10 GiB of disk keeps a working set of large files without surprising users.
pub const DEFAULT_DISK_BYTES: u64 = 10 * 1024 * MIB;
/// 1 MiB blocks: the chunk size of the default UnixFS profile, and large enough
/// that per-request latency to S3/IPFS is amortised.
pub const DEFAULT_BLOCK_SIZE: u64 = MIB;
/// Smallest block: one page; anything smaller multiplies per-block overhead.
pub const MIN_BLOCK_SIZE: u64 = 4 * 1024;
/// Largest block: a block is held whole in memory and fetched in one request;
/// 64 MiB is the readahead maximum, so a larger block could never be prefetched.
pub const MAX_BLOCK_SIZE: u64 = 64 * MIB;

/// How much free space the disk tier leaves on its filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FreeSpaceMargin {
    /// The larger of 1 GiB and 5% of the filesystem (see `disk.rs`).
    #[default]
    Auto,
    /// Exactly this many bytes must stay free after a write.
    Bytes(u64),
}

/// Configuration of the block cache.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Memory tier budget in bytes (0 disables caching in memory; single
    /// flight still applies).
    #[serde(rename = "memory", deserialize_with = "size")]
    pub memory_bytes: u64,
    /// Disk tier budget in bytes (0 disables the disk tier).
    #[serde(rename = "disk", deserialize_with = "size")]
    pub disk_bytes: u64,
    /// Block size in bytes.
    #[serde(deserialize_with = "size")]
    pub block_size: u64,
    /// Directory of the disk tier (the product passes `$IPFS_KIT_HOME/cache`).
    pub dir: PathBuf,
    /// Free space to leave on the disk tier's filesystem: `min_free = "auto"`
    /// (the default) or a size such as `"2GiB"` (`0` turns the check off).
    #[serde(rename = "min_free", deserialize_with = "margin")]
    pub free_space_margin: FreeSpaceMargin,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            disk_bytes: DEFAULT_DISK_BYTES,
            block_size: DEFAULT_BLOCK_SIZE,
            dir: default_dir(),
            free_space_margin: FreeSpaceMargin::Auto,
        }
    }
}

impl CacheConfig {
    /// Defaults with the disk tier under `dir`.
    pub fn with_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            ..Self::default()
        }
    }

    /// Check ranges; the error names the bad key.
    pub fn validate(&self) -> Result<(), CacheError> {
        if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&self.block_size) {
            return Err(CacheError::Config(format!(
                "cache.block_size = {} is out of range: must be between {} and {}",
                self.block_size,
                bytesize::ByteSize(MIN_BLOCK_SIZE).display().iec(),
                bytesize::ByteSize(MAX_BLOCK_SIZE).display().iec()
            )));
        }
        if self.disk_bytes > 0 && self.dir.as_os_str().is_empty() {
            return Err(CacheError::Config(
                "cache.dir is empty but the disk tier is enabled (cache.disk > 0)".into(),
            ));
        }
        Ok(())
    }
}

/// `$IPFS_KIT_HOME/cache`, else `~/.ipfs_kit/cache`, else `.ipfs_kit/cache`.
fn default_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("IPFS_KIT_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home).join("cache");
    }
    let base = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_default();
    base.join(".ipfs_kit").join("cache")
}

/// Parse a size such as `"256MiB"`, `"10 GiB"`, `"1.5GB"` or `"4096"` into bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty size".into());
    }
    if let Ok(n) = trimmed.parse::<u64>() {
        return Ok(n);
    }
    trimmed
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| {
            format!("invalid size {text:?} ({e}); use e.g. \"256MiB\", \"10GiB\" or a number of bytes")
        })
}

/// Serde adapter for `min_free`: `"auto"` or a size.
fn margin<'de, D: Deserializer<'de>>(d: D) -> Result<FreeSpaceMargin, D::Error> {
    struct MarginVisitor;
    impl Visitor<'_> for MarginVisitor {
        type Value = FreeSpaceMargin;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("\"auto\" or a size such as \"2GiB\"")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<FreeSpaceMargin, E> {
            Ok(FreeSpaceMargin::Bytes(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<FreeSpaceMargin, E> {
            u64::try_from(v)
                .map(FreeSpaceMargin::Bytes)
                .map_err(|_| E::custom(format!("size must not be negative, got {v}")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<FreeSpaceMargin, E> {
            if v.trim().eq_ignore_ascii_case("auto") {
                return Ok(FreeSpaceMargin::Auto);
            }
            parse_size(v).map(FreeSpaceMargin::Bytes).map_err(E::custom)
        }
    }
    d.deserialize_any(MarginVisitor)
}

/// Serde adapter: a size as a string or a non-negative integer.
fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct SizeVisitor;
    impl Visitor<'_> for SizeVisitor {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a size such as \"256MiB\" or a number of bytes")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("size must not be negative, got {v}")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            parse_size(v).map_err(E::custom)
        }
    }
    d.deserialize_any(SizeVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        cache: CacheConfig,
    }

    fn parse(toml_text: &str) -> Result<CacheConfig, String> {
        toml::from_str::<File>(toml_text)
            .map(|f| f.cache)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn sizes_parse_when_given_as_strings_or_integers() {
        let cfg =
            parse("[cache]\nmemory = \"256MiB\"\ndisk = \"10 GiB\"\nblock_size = 65536\ndir = \"/tmp/c\"\n")
                .unwrap();
        assert_eq!(cfg.memory_bytes, 256 << 20);
        assert_eq!(cfg.disk_bytes, 10 << 30);
        assert_eq!(cfg.block_size, 65536);
        assert_eq!(cfg.dir, PathBuf::from("/tmp/c"));
        cfg.validate().unwrap();
    }

    #[test]
    fn defaults_apply_when_keys_are_missing() {
        let cfg = parse("[cache]\ndir = \"/x\"\n").unwrap();
        assert_eq!(cfg.memory_bytes, DEFAULT_MEMORY_BYTES);
        assert_eq!(cfg.disk_bytes, DEFAULT_DISK_BYTES);
        assert_eq!(cfg.block_size, DEFAULT_BLOCK_SIZE);
        assert_eq!(cfg.free_space_margin, FreeSpaceMargin::Auto);
    }

    #[test]
    fn min_free_takes_auto_or_a_size_and_names_a_bad_value() {
        let auto = parse("[cache]\nmin_free = \"auto\"\n").unwrap();
        assert_eq!(auto.free_space_margin, FreeSpaceMargin::Auto);
        let fixed = parse("[cache]\nmin_free = \"2GiB\"\n").unwrap();
        assert_eq!(fixed.free_space_margin, FreeSpaceMargin::Bytes(2 << 30));
        let off = parse("[cache]\nmin_free = 0\n").unwrap();
        assert_eq!(off.free_space_margin, FreeSpaceMargin::Bytes(0));
        let err = parse("[cache]\nmin_free = \"lots\"\n").unwrap_err();
        assert!(err.contains("lots") && err.contains("min_free"), "{err}");
    }

    #[test]
    fn error_names_the_value_when_size_is_garbage() {
        let err = parse("[cache]\nmemory = \"12 potatoes\"\n").unwrap_err();
        assert!(err.contains("12 potatoes"), "{err}");
        assert!(err.contains("memory"), "{err}");
    }

    #[test]
    fn error_when_size_is_negative() {
        let err = parse("[cache]\ndisk = -1\n").unwrap_err();
        assert!(err.contains("negative"), "{err}");
    }

    #[test]
    fn error_when_key_is_unknown() {
        let err = parse("[cache]\nmemroy = \"1MiB\"\n").unwrap_err();
        assert!(err.contains("memroy"), "{err}");
    }

    #[test]
    fn validate_rejects_block_size_when_out_of_range() {
        let cfg = CacheConfig {
            block_size: 100,
            ..CacheConfig::with_dir("/tmp/x")
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("block_size"), "{err}");
    }

    #[test]
    fn parse_size_accepts_decimal_and_binary_units() {
        assert_eq!(parse_size("1KiB").unwrap(), 1024);
        assert_eq!(parse_size("1KB").unwrap(), 1000);
        assert_eq!(parse_size(" 7 ").unwrap(), 7);
        assert!(parse_size("").is_err());
    }
}
