//! Virtual paths: the paths MCP tools take (`/local/notes/a.txt`), i.e. paths
//! inside the mount table, not host paths. Parsing normalises them and
//! refuses what could leave the tree: a `..` component, a NUL byte, an empty
//! name. `.` and repeated `/` are dropped; a path without a leading `/` is
//! read from the root (`local/a` is `/local/a`).

use super::error::ToolError;
use std::fmt;
use std::path::PathBuf;

/// A normalised path inside the mount table: its names from the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VPath {
    names: Vec<String>,
}

impl VPath {
    /// The root `/`.
    pub fn root() -> VPath {
        VPath::default()
    }

    /// Parses and normalises `s`; refuses `..`, NUL and empty input.
    pub fn parse(s: &str) -> Result<VPath, ToolError> {
        if s.trim().is_empty() {
            return Err(ToolError::bad("path is empty (use \"/\" for the root)"));
        }
        if s.contains('\0') {
            return Err(ToolError::bad(format!("{s:?}: a path may not contain NUL")));
        }
        let mut names = Vec::new();
        for part in s.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(ToolError::bad(format!(
                        "{s}: \"..\" is not allowed; paths are inside the mount table, e.g. /local/dir/file"
                    )))
                }
                name => names.push(name.to_string()),
            }
        }
        Ok(VPath { names })
    }

    /// The names from the root.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.names.is_empty()
    }

    /// The last name (None for the root).
    pub fn file_name(&self) -> Option<&str> {
        self.names.last().map(String::as_str)
    }

    /// This path with `name` appended.
    pub fn join(&self, name: &str) -> VPath {
        let mut names = self.names.clone();
        names.push(name.to_string());
        VPath { names }
    }

    /// True when `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &VPath) -> bool {
        self.names.len() >= other.names.len() && self.names[..other.names.len()] == other.names[..]
    }

    /// The names after `prefix` as a relative path (`"."` when equal).
    pub fn relative_to(&self, prefix: &VPath) -> PathBuf {
        let rest = &self.names[prefix.names.len().min(self.names.len())..];
        if rest.is_empty() {
            PathBuf::from(".")
        } else {
            rest.iter().collect()
        }
    }
}

impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.names.is_empty() {
            return f.write_str("/");
        }
        for n in &self.names {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_normalises_dots_and_slashes() {
        assert_eq!(VPath::parse("//local/./a//b/").unwrap().to_string(), "/local/a/b");
        assert_eq!(VPath::parse("local/a").unwrap().to_string(), "/local/a");
        assert!(VPath::parse("/").unwrap().is_root());
    }

    #[test]
    fn parse_refuses_dotdot_nul_and_empty() {
        assert!(VPath::parse("/local/../../etc/passwd").is_err());
        assert!(VPath::parse("/local/..").is_err());
        assert!(VPath::parse("/local/a\0b").is_err());
        assert!(VPath::parse("  ").is_err());
    }

    #[test]
    fn relative_to_and_starts_with_work_on_whole_names() {
        let p = VPath::parse("/local/a/b").unwrap();
        let m = VPath::parse("/local").unwrap();
        assert!(p.starts_with(&m));
        assert!(!VPath::parse("/localx/a").unwrap().starts_with(&m));
        assert_eq!(p.relative_to(&m), PathBuf::from("a/b"));
        assert_eq!(m.relative_to(&m), PathBuf::from("."));
    }
}
