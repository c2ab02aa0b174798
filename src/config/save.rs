//! Writing the mount table back to the config file (`save: true` on a
//! mount-table change).
//!
//! Invariants: only the `[[mount]]` array is replaced; every other section
//! of the file is kept as parsed (comments are not); the file is replaced
//! atomically (temp file in the same directory, fsync, rename), so a crash
//! leaves the old or the new file, never a torn one; a new file is created
//! with mode 0600 (options may hold secrets), an existing file keeps its mode
//! unless the table holds a secret-looking option, when group and other
//! lose their access.

use super::{ConfigError, MountEntry};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

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
            let doc: toml::Table = toml::from_str(&text).map_err(|e| parse(e.message().to_string()))?;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o7777;
            (doc, mode)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (toml::Table::new(), NEW_FILE_MODE),
        Err(e) => return Err(io(e)),
    };
    let secret = mounts
        .iter()
        .any(|m| m.options.keys().any(|k| crate::control::redact::is_secret(k)));
    let mode = if secret { mode & 0o700 } else { mode };
    let array = toml::Value::try_from(mounts).map_err(|e| parse(e.to_string()))?;
    doc.insert("mount".into(), array);
    let text = toml::to_string(&doc).map_err(|e| parse(e.to_string()))?;
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
        };
        save_mounts(&p, std::slice::from_ref(&m)).unwrap();
        let cfg = Config::parse(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(cfg.mounts, vec![m]);
        assert_eq!(cfg.vfs.attr_ttl_secs, 3.0);
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
