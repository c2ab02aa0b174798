//! The tools' argument types: their JSON schemas (and the one-line
//! descriptions of each field) are derived from these structs. Unknown
//! fields are refused, so a misspelt argument is an error, not ignored.

use super::edit::Edit;
use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MountArgs {
    /// Where the backend appears, e.g. "/scratch".
    pub path: String,
    /// Backend scheme: "fs", "memory", "s3" (or give uri).
    pub scheme: Option<String>,
    /// URI shorthand: "memory://", "fs:///srv/data", "s3://bucket/prefix?region=us-east-1".
    pub uri: Option<String>,
    /// Backend options, e.g. {"root": "/srv/data"}.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Refuse every change under the path.
    #[serde(default)]
    pub read_only: bool,
    /// Also write the new table to the config file.
    #[serde(default)]
    pub save: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmountArgs {
    /// The mount path to remove from the table, e.g. "/scratch".
    pub path: String,
    /// Also write the new table to the config file.
    #[serde(default)]
    pub save: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Text,
    Base64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadArgs {
    /// File path inside the mount table, e.g. "/local/notes.txt".
    pub path: String,
    /// "text" (default; UTF-8) or "base64" (bytes, with offset/length).
    pub encoding: Option<Encoding>,
    /// Text: only the first N lines.
    pub head: Option<u64>,
    /// Text: only the last N lines.
    pub tail: Option<u64>,
    /// Bytes: where to start (default 0); implies base64.
    pub offset: Option<u64>,
    /// Bytes: how many (default: to the end; at most the read cap); implies base64.
    pub length: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadManyArgs {
    /// Text files to read; one failing does not stop the others.
    pub paths: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    Replace,
    Append,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    /// File path; missing parent directories are created.
    pub path: String,
    /// The content (text, or base64 with encoding "base64").
    pub content: String,
    /// "text" (default) or "base64".
    pub encoding: Option<Encoding>,
    /// "replace" (default) or "append".
    pub mode: Option<WriteMode>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditArgs {
    /// Text file to edit.
    pub path: String,
    /// Replacements applied in order; each old_text must occur exactly once.
    pub edits: Vec<Edit>,
    /// Only show the diff; change nothing.
    #[serde(default, alias = "dryRun")]
    pub dry_run: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyArgs {
    /// File or directory to copy (or move).
    pub source: String,
    /// New path; must not exist unless overwrite replaces a file.
    pub destination: String,
    /// Replace an existing destination file.
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathArgs {
    /// Path inside the mount table, e.g. "/local/dir".
    pub path: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatArgs {
    /// Path inside the mount table, e.g. "/local/file".
    pub path: String,
    /// For a file without a known CID: compute it by reading the file (as `ipfs add --only-hash`).
    #[serde(default)]
    pub compute_cid: bool,
    /// Profile of a computed CID: "unixfs-v1-2025" (default), "unixfs-v0-2015", "ipfs-car".
    pub profile: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LsArgs {
    /// Directory to list ("/" lists the mounts).
    pub path: String,
    /// Show file sizes and a total.
    #[serde(default)]
    pub sizes: bool,
    /// A JSON tree of the levels below, limited by depth and max_entries.
    #[serde(default)]
    pub recursive: bool,
    /// Levels of the recursive tree (default 3, at most 32).
    pub depth: Option<u32>,
    /// Most entries in the recursive tree (default 1000).
    pub max_entries: Option<usize>,
    /// Glob patterns of names or relative paths to leave out of the tree.
    #[serde(default, alias = "excludePatterns")]
    pub exclude: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MkdirArgs {
    /// Directory to create.
    pub path: String,
    /// Create missing parents too; an existing directory is fine (default true).
    pub parents: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RmdirArgs {
    /// Directory to remove.
    pub path: String,
    /// Remove everything in it too (default: it must be empty).
    #[serde(default)]
    pub recursive: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Directory to search below.
    pub path: String,
    /// Glob on the path relative to `path` ("**/*.md"); without "/" it also matches names ("*.md").
    pub pattern: String,
    /// Globs of names or relative paths to skip (with everything under them).
    #[serde(default, alias = "excludePatterns")]
    pub exclude: Vec<String>,
    /// Most matches returned (default 1000).
    pub max_results: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncToArgs {
    /// File or directory to add to IPFS.
    pub path: String,
    /// DAG profile: "unixfs-v1-2025" (default), "unixfs-v0-2015", "ipfs-car".
    pub profile: Option<String>,
    /// Include names starting with ".".
    #[serde(default)]
    pub hidden: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncFromArgs {
    /// The CID to fetch.
    pub cid: String,
    /// Where to write it inside the mount table.
    pub path: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketArgs {
    /// The bucket's name; absent: every bucket.
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrepareCarArgs {
    /// The bucket's name; absent: every bucket.
    pub name: Option<String>,
    /// Split the CAR into shards of at most this many bytes (as the Storacha client does).
    pub shard_size: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketFilesArgs {
    /// The bucket's name.
    pub name: String,
    /// Only paths starting with this prefix.
    pub prefix: Option<String>,
    /// Most files returned (the rest is counted in `omitted`).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindCidArgs {
    /// The CID to look up in every bucket's index.
    pub cid: String,
}
