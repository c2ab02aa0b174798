//! `scheme = "hf"`: Hugging Face Hub repositories (models, datasets, spaces)
//! at a revision, read through opendal's `hf` service. This module owns what
//! the service does not: the default repository type, and the check at open
//! that the repository and revision exist, so a wrong name fails the mount
//! (or `backend add`) with the Hub's own message instead of showing an
//! empty directory (the service reads "not found" on a listing as empty).
//! The token comes from the `token` option, else `HF_TOKEN`, else the
//! token file (`$HF_HOME/token`), as opendal's service looks for it.

use super::{BackendError, BackendErrorKind};
use opendal::{ErrorKind, Operator};
use std::collections::BTreeMap;
use std::time::Duration;

/// The repository type when the config names none (the Hub's own default).
const DEFAULT_REPO_TYPE: &str = "model";

/// A path every Hub repository has (the Hub creates it with the repository);
/// asking for it names the repository and revision, whether or not it exists.
const PROBE_PATH: &str = ".gitattributes";

/// What opendal's `hf` service (0.59) says when the Hub answers a paths-info
/// request with an empty list: the revision exists but the path does not.
/// Any answer from the Hub itself carries the Hub's message instead.
const PATH_NOT_FOUND: &str = "path not found";

/// How long the check at open may take. A Hub that does not answer in this
/// time (offline machine) does not stop the mount: reads fail later, with
/// the usual timeouts.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// The options handed to opendal: `repo_type` defaults to `model`.
pub(super) fn options(options: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = options.clone();
    out.entry("repo_type".into())
        .or_insert_with(|| DEFAULT_REPO_TYPE.into());
    out
}

/// Asks the Hub for one path of the repository at its revision: Ok when the
/// repository and revision exist (or the Hub cannot be reached, logged), an
/// error with the Hub's message when it says they do not or refuses us.
pub(super) fn check_repository(
    op: &Operator,
    options: &BTreeMap<String, String>,
) -> Result<(), BackendError> {
    let repo = format!(
        "{} {} at revision {}",
        options.get("repo_type").map_or(DEFAULT_REPO_TYPE, String::as_str),
        options.get("repo_id").map_or("", String::as_str),
        options.get("revision").map_or("main", String::as_str),
    );
    let op = op.clone();
    // A thread of its own with its own runtime: opening runs in synchronous
    // code that may itself be inside a runtime, which cannot block on a future.
    let answer = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            tokio::time::timeout(PROBE_TIMEOUT, op.stat(PROBE_PATH))
                .await
                .ok()
        })
    })
    .join()
    .ok()
    .flatten();
    let Some(answer) = answer else {
        tracing::warn!(%repo, "the Hugging Face endpoint did not answer in time; mounted anyway");
        return Ok(());
    };
    match answer {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound && e.message() == PATH_NOT_FOUND => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied) => {
            Err(BackendError::new(
                BackendErrorKind::Config,
                format!("Hugging Face {repo}: {} (the Hub answered)", e.message()),
            ))
        }
        Err(e) => {
            tracing::warn!(%repo, error = %e.message(), "cannot reach the Hugging Face endpoint; mounted anyway");
            Ok(())
        }
    }
}
