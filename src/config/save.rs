//! Writing the mount table back to the config file (`save: true` on a
//! mount-table change).
//!
//! Invariants: only the `[[mount]]` array changes; everything else in the
//! file (sections, comments, layout) is kept byte for byte, and so is each
//! `[[mount]]` table whose entry is unchanged, comments included (the file
//! is edited with `toml_edit`, not re-serialized); the file is replaced
//! atomically (temp file in the same directory, fsync, rename), so a crash
//! leaves the old or the new file, never a torn one; a new file is created
//! with mode 0600 (options may hold secrets), an existing file keeps its mode
//! unless the table holds a secret-looking option, when group and other
//! lose their access.

use super::{ConfigError, MountEntry};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table};

/// Mode of a config file we create: options may hold secrets.
const NEW_FILE_MODE: u32 = 0o600;

/// Replaces the `[[mount]]` table of the config file at `path` with `mounts`.
pub fn save_mounts(path: &Path, mounts: &[MountEntry]) -> Result<(), ConfigError> {
    let io = |source: std::io::Error| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let parse = |message: String| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let (mut doc, mode) = match std::fs::read_to_string(path) {
        Ok(text) => {
            let doc: DocumentMut = text
                .parse()
                .map_err(|e: toml_edit::TomlError| parse(e.to_string()))?;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o7777;
            (doc, mode)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (DocumentMut::new(), NEW_FILE_MODE),
        Err(e) => return Err(io(e)),
    };
    let secret = mounts
        .iter()
        .any(|m| m.options.keys().any(|k| crate::control::redact::is_secret(k)));
    let mode = if secret { mode & 0o700 } else { mode };
    let array = mount_tables(&doc, mounts).map_err(parse)?;
    doc.insert("mount", Item::ArrayOfTables(array));
    let text = doc.to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension(format!("toml.tmp.{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// The new `[[mount]]` array: the file's own table for every entry it
/// already holds unchanged (keeping its comments), a fresh one otherwise.
fn mount_tables(doc: &DocumentMut, mounts: &[MountEntry]) -> Result<ArrayOfTables, String> {
    let old: Vec<&Table> = doc
        .get("mount")
        .and_then(Item::as_array_of_tables)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut out = ArrayOfTables::new();
    for m in mounts {
        let kept = old.iter().find(|t| {
            toml_edit::de::from_document::<MountEntry>(DocumentMut::from((**t).clone())).as_ref() == Ok(m)
        });
        let table = match kept {
            Some(t) => (*t).clone(),
            None => {
                let d = toml_edit::ser::to_document(m).map_err(|e| e.to_string())?;
                let mut t = d.as_table().clone();
                t.set_implicit(false);
                t
            }
        };
        out.push(table);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::collections::BTreeMap;

    #[test]
    fn save_replaces_mounts_and_keeps_other_sections() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.toml");
        std::fs::write(
            &p,
            "[vfs]\nattr_ttl_secs = 3.0\n[[mount]]\npath = \"/old\"\nscheme = \"memory\"\n",
        )
        .unwrap();
        let m = MountEntry {
            path: "/new".into(),
            scheme: None,
            uri: Some("fs:///tmp/x".into()),
            read_only: true,
            writes: None,
            options: BTreeMap::new(),
            bucket: None,
            profile: None,
        };
        save_mounts(&p, std::slice::from_ref(&m)).unwrap();
        let cfg = Config::parse(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(cfg.mounts, vec![m]);
        assert_eq!(cfg.vfs.attr_ttl_secs, 3.0);
    }

    #[test]
    fn save_keeps_comments_and_unchanged_entries_as_written() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.toml");
        let text = "# my mounts\n[vfs]\nattr_ttl_secs = 3.0 # tuned\n\n\
                    # the scratch area\n[[mount]]\npath = \"/keep\" # here\nscheme = \"memory\"\n\n\
                    [[mount]]\npath = \"/gone\"\nscheme = \"memory\"\n";
        std::fs::write(&p, text).unwrap();
        let cfg = Config::parse(text).unwrap();
        let added = MountEntry {
            path: "/s3".into(),
            scheme: Some("s3".into()),
            uri: None,
            read_only: false,
            writes: None,
            options: BTreeMap::from([("bucket".to_string(), "b".to_string())]),
            bucket: None,
            profile: None,
        };
        save_mounts(&p, &[cfg.mounts[0].clone(), added.clone()]).unwrap();
        let out = std::fs::read_to_string(&p).unwrap();
        for kept in [
            "# my mounts",
            "attr_ttl_secs = 3.0 # tuned",
            "# the scratch area",
            "path = \"/keep\" # here",
        ] {
            assert!(out.contains(kept), "lost {kept:?}:\n{out}");
        }
        assert!(!out.contains("/gone"), "{out}");
        let back = Config::parse(&out).unwrap();
        assert_eq!(back.mounts, vec![cfg.mounts[0].clone(), added]);
        assert_eq!(back.vfs.attr_ttl_secs, 3.0);
    }

    #[test]
    fn save_makes_the_file_private_when_options_hold_secrets() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.toml");
        std::fs::write(&p, "").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let m = MountEntry {
            path: "/s3".into(),
            scheme: Some("s3".into()),
            uri: None,
            read_only: false,
            writes: None,
            options: BTreeMap::from([("secret_access_key".to_string(), "x".to_string())]),
            bucket: None,
            profile: None,
        };
        save_mounts(&p, &[m]).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn save_creates_a_private_file_when_none_exists() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/config.toml");
        save_mounts(&p, &[]).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, NEW_FILE_MODE);
    }
}
