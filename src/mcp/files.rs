//! The file tools' work on the daemon's kernel mount: reads (text with
//! head/tail, bytes with offset/length), writes, edits, stat, listings,
//! mkdir/rmdir, copy and move. Blocking code, run on blocking threads; every
//! path comes in as a checked [`Place`] and every open goes through its
//! confining `cap_std` directory.
//!
//! Reads are capped at [`MAX_READ`] bytes per call: past it the tool answers
//! an error naming the size and the way to read in parts, never a partial
//! result that looks whole.

use super::edit::{self, Edit};
use super::error::ToolError;
use super::place::Place;
use super::progress::Reporter;
use super::walk;
use base64::Engine;
use cap_std::fs::{Dir, File, Metadata, OpenOptions};
use serde_json::{json, Value};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, IntoRawFd};

/// Most bytes one read returns (and the most `vfs_edit` loads): an MCP reply
/// lands in a model's context, where 8 MiB is already far more than useful,
/// and it keeps one JSON reply (base64 adds a third) near 11 MiB.
pub const MAX_READ: u64 = 8 << 20;
/// Block size of backward reads for `tail` (a few pages per read call).
const TAIL_CHUNK: u64 = 64 << 10;
/// Copy buffer: large enough that FUSE requests are full-size (1 MiB max).
const COPY_BUF: usize = 1 << 20;
/// Report copy progress at most once per this many bytes within a file.
const PROGRESS_BYTES: u64 = 8 << 20;
/// The xattr the mount gives files whose CID it knows.
const CID_XATTR: &str = "user.ipfs.cid";

fn io(p: &Place) -> impl Fn(std::io::Error) -> ToolError + '_ {
    move |e| ToolError::io(&p.vpath, e)
}

fn over_cap(p: &Place, what: &str, n: u64) -> ToolError {
    ToolError::bad(format!(
        "{}: {what} is {n} bytes, over the read cap of {MAX_READ} bytes ({} MiB); read it in parts with encoding \"base64\", offset and length, or use head/tail",
        p.vpath,
        MAX_READ >> 20
    ))
}

/// Opens a regular file for reading.
fn open_file(p: &Place, dir: &Dir) -> Result<(File, Metadata), ToolError> {
    let f = dir.open(&p.rel).map_err(io(p))?;
    let md = f.metadata().map_err(io(p))?;
    if md.is_dir() {
        return Err(ToolError::bad(format!(
            "{}: is a directory (list it with vfs_ls)",
            p.vpath
        )));
    }
    Ok((f, md))
}

fn utf8(p: &Place, bytes: Vec<u8>) -> Result<String, ToolError> {
    String::from_utf8(bytes).map_err(|_| {
        ToolError::bad(format!(
            "{}: not UTF-8 text; read it with encoding \"base64\"",
            p.vpath
        ))
    })
}

/// The file as text: whole (up to the cap), its first `head` or last `tail` lines.
pub fn read_text(p: &Place, head: Option<u64>, tail: Option<u64>) -> Result<String, ToolError> {
    let dir = p.dir()?;
    let (mut f, md) = open_file(p, &dir)?;
    let bytes = match (head, tail) {
        (Some(_), Some(_)) => return Err(ToolError::bad("give head or tail, not both")),
        (Some(n), None) => read_head(p, &mut f, n)?,
        (None, Some(n)) => read_tail(p, &mut f, md.len(), n)?,
        (None, None) => {
            if md.len() > MAX_READ {
                return Err(over_cap(p, "the file", md.len()));
            }
            let mut buf = Vec::with_capacity(md.len() as usize);
            // take(): the size may grow between stat and read.
            (&mut f).take(MAX_READ + 1).read_to_end(&mut buf).map_err(io(p))?;
            if buf.len() as u64 > MAX_READ {
                return Err(over_cap(p, "the file", buf.len() as u64));
            }
            buf
        }
    };
    close_checked(p, f)?;
    utf8(p, bytes)
}

fn read_head(p: &Place, f: &mut File, lines: u64) -> Result<Vec<u8>, ToolError> {
    let mut out = Vec::new();
    let mut seen = 0u64;
    let mut buf = vec![0u8; TAIL_CHUNK as usize];
    while seen < lines {
        let n = f.read(&mut buf).map_err(io(p))?;
        if n == 0 {
            break;
        }
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                seen += 1;
                if seen == lines {
                    out.extend_from_slice(&buf[..=i]);
                    return Ok(out);
                }
            }
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() as u64 > MAX_READ {
            return Err(over_cap(p, &format!("the first {lines} lines"), out.len() as u64));
        }
    }
    Ok(out)
}

fn read_tail(p: &Place, f: &mut File, size: u64, lines: u64) -> Result<Vec<u8>, ToolError> {
    // Walk back from the end in chunks until `lines` line breaks precede the
    // kept part (a final newline ends the last line, it does not start one).
    let mut kept: Vec<u8> = Vec::new();
    let mut pos = size;
    let mut breaks = 0u64;
    let mut skip_final = true;
    while pos > 0 {
        let step = TAIL_CHUNK.min(pos);
        pos -= step;
        let mut chunk = vec![0u8; step as usize];
        f.seek(SeekFrom::Start(pos)).map_err(io(p))?;
        f.read_exact(&mut chunk).map_err(io(p))?;
        for i in (0..chunk.len()).rev() {
            if chunk[i] == b'\n' {
                if skip_final && pos + i as u64 == size - 1 {
                    continue;
                }
                breaks += 1;
                if breaks == lines {
                    chunk.drain(..=i);
                    chunk.extend_from_slice(&kept);
                    return Ok(chunk);
                }
            }
        }
        skip_final = false;
        chunk.extend_from_slice(&kept);
        kept = chunk;
        if kept.len() as u64 > MAX_READ {
            return Err(over_cap(p, &format!("the last {lines} lines"), kept.len() as u64));
        }
    }
    if lines == 0 {
        return Ok(Vec::new());
    }
    Ok(kept)
}

/// Bytes `[offset, offset+length)` as base64, with the file size and an end flag.
pub fn read_bytes(p: &Place, offset: Option<u64>, length: Option<u64>) -> Result<Value, ToolError> {
    let dir = p.dir()?;
    let (mut f, md) = open_file(p, &dir)?;
    let size = md.len();
    let offset = offset.unwrap_or(0);
    let rest = size.saturating_sub(offset);
    let want = length.unwrap_or(rest).min(rest);
    if length.unwrap_or(rest) > MAX_READ {
        let what = if length.is_some() {
            "the requested length"
        } else {
            "the rest of the file"
        };
        return Err(over_cap(p, what, length.unwrap_or(rest)));
    }
    let mut buf = Vec::with_capacity(want as usize);
    f.seek(SeekFrom::Start(offset)).map_err(io(p))?;
    (&mut f).take(want).read_to_end(&mut buf).map_err(io(p))?;
    close_checked(p, f)?;
    let got = buf.len() as u64;
    Ok(json!({
        "path": p.vpath.to_string(),
        "offset": offset,
        "length": got,
        "size": size,
        "eof": offset + got >= size,
        "base64": base64::engine::general_purpose::STANDARD.encode(&buf),
    }))
}

/// Closes `f` and reports the error `close(2)` returns: for staged writes,
/// that is where a failed upload shows (dropping a `File` would hide it).
fn close_checked(p: &Place, f: File) -> Result<(), ToolError> {
    let fd = f.into_std().into_raw_fd();
    // SAFETY: `fd` was just released from a File we owned; closed exactly once.
    if unsafe { libc::close(fd) } != 0 {
        return Err(ToolError::io(&p.vpath, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Creates the parents of `p` inside its mount.
fn make_parents(p: &Place, dir: &Dir) -> Result<(), ToolError> {
    if let Some(parent) = p.rel.parent().filter(|x| !x.as_os_str().is_empty()) {
        dir.create_dir_all(parent).map_err(io(p))?;
    }
    Ok(())
}

fn refuse_mount_root(p: &Place, what: &str) -> Result<(), ToolError> {
    if p.is_mount_root() {
        return Err(ToolError::bad(format!(
            "{}: is a mount's root directory; {what}",
            p.vpath
        )));
    }
    Ok(())
}

/// Writes `data` (replacing or appending), creating parent directories.
pub fn write(p: &Place, data: &[u8], append: bool) -> Result<Value, ToolError> {
    refuse_mount_root(p, "give a file path inside it")?;
    let dir = p.dir()?;
    make_parents(p, &dir)?;
    let mut o = OpenOptions::new();
    o.write(true).create(true);
    if append {
        o.append(true);
    } else {
        o.truncate(true);
    }
    let mut f = dir.open_with(&p.rel, &o).map_err(io(p))?;
    f.write_all(data).map_err(io(p))?;
    let size = f.metadata().map_err(io(p))?.len();
    close_checked(p, f)?;
    Ok(json!({"path": p.vpath.to_string(), "written": data.len(), "size": size, "append": append}))
}

/// Applies `edits`; writes back unless `dry_run`; returns the unified diff.
pub fn edit(p: &Place, edits: &[Edit], dry_run: bool) -> Result<String, ToolError> {
    let old = read_text(p, None, None)?;
    let new = edit::apply(&old, edits)?;
    let diff = edit::unified_diff(&p.vpath.to_string(), &old, &new);
    if !dry_run {
        write(p, new.as_bytes(), false)?;
    }
    Ok(diff)
}

fn kind(md: &Metadata) -> &'static str {
    if md.is_dir() {
        "directory"
    } else if md.is_file() {
        "file"
    } else if md.file_type().is_symlink() {
        "symlink"
    } else {
        "other"
    }
}

fn time(t: std::io::Result<cap_std::time::SystemTime>) -> Value {
    match t {
        Ok(t) => Value::String(chrono::DateTime::<chrono::Utc>::from(t.into_std()).to_rfc3339()),
        Err(_) => Value::Null,
    }
}

/// The `user.ipfs.cid` attribute of an open file or directory, if it has one.
fn cid_of(fd: impl AsFd) -> Option<String> {
    let name = std::ffi::CString::new(CID_XATTR).ok()?;
    let mut buf = [0u8; 256]; // a CID string is under 100 bytes
                              // SAFETY: valid fd, NUL-terminated name, buffer pointer and length match.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_fd().as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n as usize]).trim().to_string())
}

/// Type, size, times, mode, owning mount and the CID: the mount's when it
/// knows it, else, for a file and when `compute` names a profile, the CID
/// `ipfs add --only-hash` gives, from the file's bytes read through the mount.
pub fn stat(
    p: &Place,
    compute: Option<crate::car::Profile>,
    reporter: &Reporter,
) -> Result<Value, ToolError> {
    use cap_std::fs::MetadataExt;
    let dir = p.dir()?;
    let md = dir.metadata(&p.rel).map_err(io(p))?;
    let mut cid = if md.is_dir() {
        dir.open_dir(&p.rel).ok().and_then(cid_of)
    } else {
        dir.open(&p.rel).ok().and_then(cid_of)
    };
    let mut cid_source = cid.as_ref().map(|_| "mount");
    if let (None, Some(profile), true) = (&cid, compute, md.is_file()) {
        let f = dir.open(&p.rel).map_err(io(p))?;
        let mut reader = f.into_std();
        let mut sink = crate::car::Discard;
        let mut b = crate::car::FileBuilder::new(profile, &mut sink);
        let size = md.len() as f64;
        let report = |done: u64| reporter.report(done as f64, Some(size), "hashing");
        b.write_from(&mut reader, &report)
            .map_err(|e| ToolError(format!("{}: computing the CID: {e}", p.vpath)))?;
        let built = b
            .finish()
            .map_err(|e| ToolError(format!("{}: computing the CID: {e}", p.vpath)))?;
        cid = Some(built.cid.to_string());
        cid_source = Some("computed");
    }
    Ok(json!({
        "path": p.vpath.to_string(),
        "type": kind(&md),
        "size": md.len(),
        "modified": time(md.modified()),
        "accessed": time(md.accessed()),
        "mode": format!("{:o}", md.mode() & 0o7777),
        "mount": p.mount.as_ref().map(|m| m.path.clone()),
        "scheme": p.mount.as_ref().map(|m| m.scheme.clone()),
        "read_only": p.mount.as_ref().is_none_or(|m| m.read_only),
        "cid": cid,
        "cid_source": cid_source,
    }))
}

/// One line per entry, `[DIR] name` / `[FILE] name`, with sizes and a total when asked.
pub fn ls(p: &Place, sizes: bool) -> Result<String, ToolError> {
    let dir = p.dir()?;
    let mut entries = walk::entries(p, &dir)?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    let (mut files, mut dirs, mut bytes) = (0u64, 0u64, 0u64);
    for e in &entries {
        let tag = if e.is_dir { "[DIR] " } else { "[FILE]" };
        if e.is_dir {
            dirs += 1;
        } else {
            files += 1;
            bytes += e.size;
        }
        if sizes && !e.is_dir {
            out.push_str(&format!("{tag} {:<40} {:>12}\n", e.name, e.size));
        } else {
            out.push_str(&format!("{tag} {}\n", e.name));
        }
    }
    if sizes {
        out.push_str(&format!(
            "\nTotal: {files} files, {dirs} directories, {bytes} bytes ({})\n",
            bytesize::ByteSize(bytes)
        ));
    }
    if entries.is_empty() {
        out.push_str("(empty directory)\n");
    }
    Ok(out)
}

/// Creates a directory (with its parents when `parents`).
pub fn mkdir(p: &Place, parents: bool) -> Result<Value, ToolError> {
    let dir = p.dir()?;
    if p.is_mount_root() {
        return Ok(json!({"path": p.vpath.to_string(), "created": false}));
    }
    let existed = dir.is_dir(&p.rel);
    let r = if parents {
        dir.create_dir_all(&p.rel)
    } else {
        dir.create_dir(&p.rel)
    };
    r.map_err(io(p))?;
    Ok(json!({"path": p.vpath.to_string(), "created": !existed}))
}

/// Removes a directory: empty, or with everything in it when `recursive`.
pub fn rmdir(p: &Place, recursive: bool) -> Result<Value, ToolError> {
    refuse_mount_root(p, "remove the mount with vfs_unmount instead")?;
    let dir = p.dir()?;
    let md = dir.symlink_metadata(&p.rel).map_err(io(p))?;
    if !md.is_dir() {
        return Err(ToolError::bad(format!("{}: not a directory", p.vpath)));
    }
    if recursive {
        dir.remove_dir_all(&p.rel).map_err(io(p))?;
    } else {
        dir.remove_dir(&p.rel).map_err(io(p))?;
    }
    Ok(json!({"path": p.vpath.to_string(), "removed": true, "recursive": recursive}))
}

/// Copies one file's bytes between two places, then closes both checked.
fn copy_file(
    src: &Place,
    sdir: &Dir,
    dst: &Place,
    ddir: &Dir,
    prog: &mut CopyProgress,
) -> Result<(), ToolError> {
    let mut from = sdir.open(&src.rel).map_err(io(src))?;
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true);
    let mut to = ddir.open_with(&dst.rel, &o).map_err(io(dst))?;
    let mut buf = vec![0u8; COPY_BUF];
    let mut since = 0u64;
    loop {
        let n = from.read(&mut buf).map_err(io(src))?;
        if n == 0 {
            break;
        }
        to.write_all(&buf[..n]).map_err(io(dst))?;
        prog.bytes += n as u64;
        since += n as u64;
        if since >= PROGRESS_BYTES {
            since = 0;
            prog.send(&dst.vpath.to_string());
        }
    }
    close_checked(src, from)?;
    close_checked(dst, to)?;
    prog.files += 1;
    prog.send(&dst.vpath.to_string());
    Ok(())
}

struct CopyProgress<'a> {
    reporter: &'a Reporter,
    total: u64,
    bytes: u64,
    files: u64,
}

impl CopyProgress<'_> {
    fn send(&self, what: &str) {
        self.reporter.report(
            self.bytes as f64,
            Some(self.total as f64),
            format!("{} files, {} bytes: {what}", self.files, self.bytes),
        );
    }
}

fn refuse_into_itself(src: &Place, dst: &Place) -> Result<(), ToolError> {
    if dst.vpath.starts_with(&src.vpath) {
        return Err(ToolError::bad(format!(
            "{} is inside {}: a directory cannot be copied or moved into itself",
            dst.vpath, src.vpath
        )));
    }
    Ok(())
}

fn refuse_existing(dst: &Place, ddir: &Dir, overwrite: bool) -> Result<(), ToolError> {
    if let Ok(md) = ddir.symlink_metadata(&dst.rel) {
        if md.is_dir() || !overwrite {
            return Err(ToolError::bad(format!(
                "{}: already exists{}",
                dst.vpath,
                if md.is_dir() {
                    ""
                } else {
                    " (overwrite: true replaces a file)"
                }
            )));
        }
    }
    Ok(())
}

/// Copies a file or a directory tree, within or across mounts.
pub fn copy(src: &Place, dst: &Place, overwrite: bool, reporter: &Reporter) -> Result<Value, ToolError> {
    refuse_mount_root(dst, "copy into a path inside it")?;
    refuse_into_itself(src, dst)?;
    let sdir = src.dir()?;
    let ddir = dst.dir()?;
    let md = sdir.metadata(&src.rel).map_err(io(src))?;
    refuse_existing(dst, &ddir, overwrite)?;
    make_parents(dst, &ddir)?;
    let mut prog = CopyProgress {
        reporter,
        total: 0,
        bytes: 0,
        files: 0,
    };
    if md.is_dir() {
        let files = walk::files_under(src, &sdir)?;
        prog.total = files.iter().map(|(_, e)| e.size).sum();
        ddir.create_dir_all(&dst.rel).map_err(io(dst))?;
        for (rel, e) in files {
            let (s, d) = (walk::descend(src, &rel)?, walk::descend(dst, &rel)?);
            if e.is_dir {
                ddir.create_dir_all(&d.rel).map_err(io(&d))?;
            } else {
                copy_file(&s, &sdir, &d, &ddir, &mut prog)?;
            }
        }
    } else {
        prog.total = md.len();
        copy_file(src, &sdir, dst, &ddir, &mut prog)?;
    }
    Ok(json!({
        "source": src.vpath.to_string(),
        "destination": dst.vpath.to_string(),
        "files": prog.files,
        "bytes": prog.bytes,
    }))
}

/// Moves (renames) a file or directory; across mounts, copies then removes.
pub fn rename(src: &Place, dst: &Place, overwrite: bool, reporter: &Reporter) -> Result<Value, ToolError> {
    refuse_mount_root(src, "a mount is moved with vfs_unmount and vfs_mount")?;
    refuse_mount_root(dst, "move into a path inside it")?;
    refuse_into_itself(src, dst)?;
    let sdir = src.dir()?;
    let ddir = dst.dir()?;
    sdir.symlink_metadata(&src.rel).map_err(io(src))?;
    refuse_existing(dst, &ddir, overwrite)?;
    make_parents(dst, &ddir)?;
    match sdir.rename(&src.rel, &ddir, &dst.rel) {
        Ok(()) => Ok(json!({
            "source": src.vpath.to_string(),
            "destination": dst.vpath.to_string(),
            "copied": false,
        })),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let mut out = copy(src, dst, overwrite, reporter)?;
            let md = sdir.symlink_metadata(&src.rel).map_err(io(src))?;
            if md.is_dir() {
                sdir.remove_dir_all(&src.rel).map_err(io(src))?;
            } else {
                sdir.remove_file(&src.rel).map_err(io(src))?;
            }
            out["copied"] = Value::Bool(true);
            Ok(out)
        }
        Err(e) => Err(ToolError::io(format!("{} -> {}", src.vpath, dst.vpath), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::protocol::MountInfo;
    use crate::mcp::place::{Access, Scope};
    use crate::mcp::vpath::VPath;

    fn place_of(dir: &std::path::Path, name: &str) -> Place {
        std::fs::create_dir_all(dir.join("m")).unwrap();
        let scope = Scope {
            mountpoint: dir.to_path_buf(),
            mounts: vec![MountInfo {
                path: "/m".into(),
                scheme: "memory".into(),
                read_only: false,
                options: Default::default(),
            }],
            roots: None,
        };
        scope
            .place(&VPath::parse(&format!("/m/{name}")).unwrap(), Access::Write)
            .unwrap()
    }

    /// The first / last `n` lines as `str::split_inclusive` cuts them.
    fn expect(text: &str, n: usize, from_end: bool) -> String {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let keep = n.min(lines.len());
        if from_end {
            lines[lines.len() - keep..].concat()
        } else {
            lines[..keep].concat()
        }
    }

    #[test]
    fn head_and_tail_match_line_splitting_across_chunk_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        // Lines of varying length, over several TAIL_CHUNKs, with and without a final newline.
        let mut long = String::new();
        for i in 0..20_000 {
            long.push_str(&"x".repeat(i % 37));
            long.push_str(&format!("{i}\n"));
        }
        let cases = [
            long.clone(),
            format!("{long}tail without newline"),
            "one".into(),
            "\n\n".into(),
            String::new(),
        ];
        for (k, text) in cases.iter().enumerate() {
            let p = place_of(dir.path(), &format!("f{k}"));
            write(&p, text.as_bytes(), false).unwrap();
            for n in [0usize, 1, 2, 3, 1000, 19_999, 25_000] {
                let got = read_text(&p, None, Some(n as u64)).unwrap();
                assert_eq!(got, expect(text, n, true), "case {k} tail {n}");
                let got = read_text(&p, Some(n as u64), None).unwrap();
                assert_eq!(got, expect(text, n, false), "case {k} head {n}");
            }
            assert_eq!(read_text(&p, None, None).unwrap(), *text);
        }
    }

    #[test]
    fn reads_past_the_cap_are_refused_and_parts_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = place_of(dir.path(), "big");
        let f = std::fs::File::create(dir.path().join("m/big")).unwrap();
        f.set_len(MAX_READ + 1).unwrap();
        assert!(read_text(&p, None, None)
            .unwrap_err()
            .0
            .contains("over the read cap"));
        assert!(read_bytes(&p, None, None)
            .unwrap_err()
            .0
            .contains("over the read cap"));
        let v = read_bytes(&p, Some(MAX_READ - 1), Some(10)).unwrap();
        assert_eq!(v["length"], 2);
        assert_eq!(v["eof"], true);
    }
}
