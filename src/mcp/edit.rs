//! `vfs_edit`'s text work: apply exact-text replacements in order and show
//! the change as a unified diff. Pure (no I/O), so it is tested alone.
//!
//! Each edit's `old_text` must occur exactly once in the text as the earlier
//! edits left it: not found and found several times are errors (the caller
//! adds context to make it unique), so an edit never lands in the wrong place.

use super::error::ToolError;
use serde::Deserialize;

/// One replacement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct Edit {
    /// Text to find; must occur exactly once.
    #[serde(alias = "oldText")]
    pub old_text: String,
    /// Text to put in its place.
    #[serde(alias = "newText")]
    pub new_text: String,
}

/// Lines of context around each change in the diff (the `diff -u` default).
const DIFF_CONTEXT: usize = 3;

/// `text` with every edit applied, in order.
pub fn apply(text: &str, edits: &[Edit]) -> Result<String, ToolError> {
    if edits.is_empty() {
        return Err(ToolError::bad(
            "edits is empty: give at least one {old_text, new_text}",
        ));
    }
    let mut out = text.to_string();
    for (i, e) in edits.iter().enumerate() {
        if e.old_text.is_empty() {
            return Err(ToolError::bad(format!("edit {}: old_text is empty", i + 1)));
        }
        let mut hits = out.match_indices(&e.old_text);
        let Some((at, _)) = hits.next() else {
            return Err(ToolError::bad(format!(
                "edit {}: old_text not found (it must match the file exactly, whitespace included)",
                i + 1
            )));
        };
        if hits.next().is_some() {
            return Err(ToolError::bad(format!(
                "edit {}: old_text occurs more than once; add surrounding lines to make it unique",
                i + 1
            )));
        }
        out.replace_range(at..at + e.old_text.len(), &e.new_text);
    }
    Ok(out)
}

/// The unified diff from `old` to `new`, headed with `name`.
pub fn unified_diff(name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(DIFF_CONTEXT)
        .header(&format!("a{name}"), &format!("b{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(o: &str, n: &str) -> Edit {
        Edit {
            old_text: o.into(),
            new_text: n.into(),
        }
    }

    #[test]
    fn apply_replaces_in_order_and_refuses_missing_or_ambiguous_text() {
        let t = "alpha\nbeta\ngamma\n";
        assert_eq!(
            apply(t, &[e("beta", "BETA"), e("BETA\ngamma", "x")]).unwrap(),
            "alpha\nx\n"
        );
        assert!(apply(t, &[e("delta", "d")]).is_err());
        assert!(apply("a a", &[e("a", "b")]).is_err());
        assert!(apply(t, &[]).is_err());
    }

    #[test]
    fn unified_diff_names_the_file_and_marks_lines() {
        let d = unified_diff("/local/f", "a\nb\n", "a\nc\n");
        assert!(d.starts_with("--- a/local/f\n+++ b/local/f\n"), "{d}");
        assert!(d.contains("-b\n+c\n"), "{d}");
    }
}
