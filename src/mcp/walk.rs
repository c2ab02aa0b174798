//! Walks below a place: one directory's entries, every file under a tree
//! (for copy), a depth- and entry-limited tree (`vfs_ls` recursive) and glob
//! search with exclusions. Entries are reached through [`Place::child`], so
//! each one passes the confinement checks; an entry refused by them (a
//! symlink out of an `fs` backend's directory) is left out of the walk.

use super::error::ToolError;
use super::place::Place;
use super::progress::Reporter;
use cap_std::fs::Dir;
use glob::{MatchOptions, Pattern};
use serde_json::{json, Value};

/// One directory entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
}

/// Glob matching: `*` and `?` stay within one name, `**` crosses names.
const GLOB: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// Report search progress once per this many directories.
const PROGRESS_DIRS: u64 = 50;

/// The entries of the directory at `p`, unsorted; refused entries left out.
pub fn entries(p: &Place, dir: &Dir) -> Result<Vec<Entry>, ToolError> {
    let rd = dir.read_dir(&p.rel).map_err(|e| ToolError::io(&p.vpath, e))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| ToolError::io(&p.vpath, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if p.child(&name).is_err() {
            continue;
        }
        let md = e
            .metadata()
            .map_err(|err| ToolError::io(p.vpath.join(&name), err))?;
        out.push(Entry {
            name,
            is_dir: md.is_dir(),
            size: if md.is_dir() { 0 } else { md.len() },
        });
    }
    Ok(out)
}

/// The place `rel` (names) below `p`.
pub fn descend(p: &Place, rel: &[String]) -> Result<Place, ToolError> {
    let mut cur = p.clone();
    for n in rel {
        cur = cur.child(n)?;
    }
    Ok(cur)
}

/// Every entry below `p`, directories before their contents, as names
/// relative to `p`.
pub fn files_under(p: &Place, dir: &Dir) -> Result<Vec<(Vec<String>, Entry)>, ToolError> {
    let mut out = Vec::new();
    let mut stack: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(rel) = stack.pop() {
        let here = descend(p, &rel)?;
        let mut es = entries(&here, dir)?;
        es.sort_by(|a, b| a.name.cmp(&b.name));
        for e in es {
            let mut r = rel.clone();
            r.push(e.name.clone());
            if e.is_dir {
                stack.push(r.clone());
            }
            out.push((r, e));
        }
    }
    // Parents first: a shorter path that is a prefix sorts before its children.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Compiles glob patterns, naming the bad one.
pub fn patterns(list: &[String]) -> Result<Vec<Pattern>, ToolError> {
    list.iter()
        .map(|s| Pattern::new(s).map_err(|e| ToolError::bad(format!("bad glob pattern {s:?}: {e}"))))
        .collect()
}

/// True when `rel` (a `/`-joined relative path) or its last name matches.
fn matches(p: &Pattern, rel: &str, name: &str) -> bool {
    p.matches_with(rel, GLOB) || (!p.as_str().contains('/') && p.matches_with(name, GLOB))
}

/// A tree of `p` down to `depth` levels, at most `max_entries` entries in
/// all; names matching an exclusion are left out (with what is under them).
pub fn tree(p: &Place, depth: u32, max_entries: usize, exclude: &[Pattern]) -> Result<Value, ToolError> {
    let dir = p.dir()?;
    let mut count = 0usize;
    let mut truncated = false;
    let children = tree_level(
        p,
        &dir,
        "",
        depth,
        max_entries,
        exclude,
        &mut count,
        &mut truncated,
    )?;
    Ok(json!({
        "path": p.vpath.to_string(),
        "entries": count,
        "truncated": truncated,
        "tree": children,
    }))
}

#[allow(clippy::too_many_arguments)] // one recursive step; the counters are shared
fn tree_level(
    p: &Place,
    dir: &Dir,
    prefix: &str,
    depth: u32,
    max: usize,
    exclude: &[Pattern],
    count: &mut usize,
    truncated: &mut bool,
) -> Result<Vec<Value>, ToolError> {
    let mut es = entries(p, dir)?;
    es.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::new();
    for e in es {
        let rel = format!("{prefix}{}", e.name);
        if exclude.iter().any(|x| matches(x, &rel, &e.name)) {
            continue;
        }
        if *count >= max {
            *truncated = true;
            break;
        }
        *count += 1;
        if e.is_dir {
            let kids = if depth > 1 {
                let child = p.child(&e.name)?;
                tree_level(
                    &child,
                    dir,
                    &format!("{rel}/"),
                    depth - 1,
                    max,
                    exclude,
                    count,
                    truncated,
                )?
            } else {
                Vec::new()
            };
            out.push(json!({"name": e.name, "type": "directory", "children": kids}));
        } else {
            out.push(json!({"name": e.name, "type": "file", "size": e.size}));
        }
    }
    Ok(out)
}

/// Virtual paths below `p` whose relative path (or, for a pattern without
/// `/`, whose name) matches `pattern`; excluded names are not entered.
pub fn search(
    p: &Place,
    pattern: &Pattern,
    exclude: &[Pattern],
    max_results: usize,
    reporter: &Reporter,
) -> Result<Value, ToolError> {
    let dir = p.dir()?;
    let mut found = Vec::new();
    let mut truncated = false;
    let mut dirs = 0u64;
    let mut stack: Vec<(Place, String)> = vec![(p.clone(), String::new())];
    'walk: while let Some((here, prefix)) = stack.pop() {
        dirs += 1;
        if dirs.is_multiple_of(PROGRESS_DIRS) {
            reporter.report(dirs as f64, None, format!("{dirs} directories searched"));
        }
        let mut es = entries(&here, &dir)?;
        es.sort_by(|a, b| b.name.cmp(&a.name)); // popped in name order
        for e in es {
            let rel = format!("{prefix}{}", e.name);
            if exclude.iter().any(|x| matches(x, &rel, &e.name)) {
                continue;
            }
            let child = here.child(&e.name)?;
            if matches(pattern, &rel, &e.name) {
                if found.len() >= max_results {
                    truncated = true;
                    break 'walk;
                }
                found.push(child.vpath.to_string());
            }
            if e.is_dir {
                stack.push((child, format!("{rel}/")));
            }
        }
    }
    found.sort();
    Ok(
        json!({"path": p.vpath.to_string(), "pattern": pattern.as_str(), "matches": found, "truncated": truncated}),
    )
}
