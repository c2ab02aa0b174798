//! Metadata-only changes of an S3 object: a server-side `CopyObject` of the
//! object onto itself with `x-amz-metadata-directive: REPLACE` and the new
//! user metadata, so `chmod`, `chown` and `utimens` send no object bytes;
//! and the HEAD of a directory's `dir/` marker object, which holds the
//! directory's attributes.
//!
//! opendal's `copy` (0.59) always copies the source's metadata and has no
//! way to replace it, and its `stat` of a `dir/` path lists the prefix
//! instead of asking for the marker (so no metadata comes back); these two
//! requests are built and signed here, with
//! the crates opendal's own S3 service signs with (reqsign, AWS SigV4) and
//! the same options (`endpoint`, `region`, `bucket`, `root`, keys or the
//! default AWS credential chain, `enable_virtual_host_style`). A copy onto
//! itself works for objects up to 5 GiB (S3's limit for one CopyObject);
//! larger objects answer an error (see docs/SEMANTICS.md).

use super::s3meta::UserMeta;
use super::{BackendError, BackendErrorKind};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqsign_aws_v4::{Credential, DefaultCredentialProvider, RequestSigner, StaticCredentialProvider};
use reqsign_core::{Context, OsEnv, Signer};
use std::collections::BTreeMap;
use std::time::Duration;

/// Characters left as they are in an object key in a URL: the unreserved
/// ones (RFC 3986) and `/`, as S3 (and opendal) encode keys.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');
/// Region when the options name none (opendal's default too).
const DEFAULT_REGION: &str = "us-east-1";
/// The longest a body of an error answer is quoted in a message.
const ERROR_BODY_MAX: usize = 300;

/// Sends signed metadata-replacing copies to one bucket.
#[derive(Clone)]
pub struct MetaCopier {
    /// None when the options ask for unsigned requests (`allow_anonymous`,
    /// `skip_signature`).
    signer: Option<Signer<Credential>>,
    client: reqwest::Client,
    /// URL of the bucket, without a trailing slash.
    base: String,
    bucket: String,
    /// Key prefix of the mount (`root` without its slashes), with a trailing slash, or empty.
    root: String,
    timeout: Duration,
}

impl std::fmt::Debug for MetaCopier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaCopier")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn config_error(what: impl Into<String>) -> BackendError {
    BackendError::new(BackendErrorKind::Config, what)
}

fn truthy(options: &BTreeMap<String, String>, key: &str) -> bool {
    options
        .get(key)
        .is_some_and(|v| v == "true" || v == "on" || v == "1")
}

impl MetaCopier {
    /// Built from the options of an `s3` mount (as opendal names them);
    /// `timeout` bounds each request.
    pub fn new(options: &BTreeMap<String, String>, timeout: Duration) -> Result<MetaCopier, BackendError> {
        let bucket = options
            .get("bucket")
            .filter(|b| !b.is_empty())
            .ok_or_else(|| config_error("s3 needs a bucket"))?
            .clone();
        let region = options
            .get("region")
            .cloned()
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let endpoint = options
            .get("endpoint")
            .cloned()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = endpoint.trim_end_matches('/');
        let base = if truthy(options, "enable_virtual_host_style") {
            let (scheme, host) = endpoint
                .split_once("://")
                .ok_or_else(|| config_error(format!("endpoint {endpoint} has no scheme")))?;
            format!("{scheme}://{bucket}.{host}")
        } else {
            format!("{endpoint}/{bucket}")
        };
        let root = options.get("root").map(|r| r.trim_matches('/')).unwrap_or("");
        let root = if root.is_empty() {
            String::new()
        } else {
            format!("{root}/")
        };
        let anonymous = truthy(options, "allow_anonymous") || truthy(options, "skip_signature");
        let signer = (!anonymous).then(|| {
            let ctx = Context::new()
                .with_file_read(reqsign_file_read_tokio::TokioFileRead)
                .with_http_send(opendal::HttpTransporter::default())
                .with_env(OsEnv);
            let mut chain = DefaultCredentialProvider::builder();
            if truthy(options, "disable_config_load") {
                chain = chain.no_env().no_profile();
            }
            let mut provider = chain.build();
            if let (Some(ak), Some(sk)) = (options.get("access_key_id"), options.get("secret_access_key")) {
                let fixed = match options.get("session_token") {
                    Some(token) => StaticCredentialProvider::new(ak, sk).with_session_token(token),
                    None => StaticCredentialProvider::new(ak, sk),
                };
                provider = provider.push_front(fixed);
            }
            Signer::new(ctx, provider, RequestSigner::new("s3", &region))
        });
        // reqwest panics without a TLS provider: install it (once) first.
        super::install_tls_provider();
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| config_error(format!("HTTP client: {e}")))?;
        Ok(MetaCopier {
            signer,
            client,
            base,
            bucket,
            root,
            timeout,
        })
    }

    /// The user metadata and Content-Type of the object at `path`
    /// (relative to the mount's root, `dir/` for a marker); None if absent.
    pub async fn head(&self, path: &str) -> Result<Option<Head>, BackendError> {
        let key = utf8_percent_encode(&format!("{}{path}", self.root), KEY).to_string();
        let req = http::Request::head(format!("{}/{key}", self.base))
            .header("x-amz-content-sha256", reqsign_aws_v4::EMPTY_STRING_SHA256);
        let resp = self.send(req, path, "HEAD").await?;
        let status = resp.status();
        if status.as_u16() == 404 {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(BackendError::new(
                status_kind(status.as_u16()),
                format!("HEAD {path}: HTTP {status}"),
            ));
        }
        let headers = resp.headers();
        let user = headers
            .iter()
            .filter_map(|(k, v)| {
                let name = k.as_str().strip_prefix("x-amz-meta-")?;
                Some((name.to_string(), v.to_str().ok()?.to_string()))
            })
            .collect();
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Some(Head { user, content_type }))
    }

    /// Signs and sends `req` (no body), bounded by the request timeout.
    async fn send(
        &self,
        req: http::request::Builder,
        path: &str,
        what: &str,
    ) -> Result<reqwest::Response, BackendError> {
        let (mut parts, ()) = req
            .body(())
            .map_err(|e| {
                BackendError::new(BackendErrorKind::Other, format!("{what} request for {path}: {e}"))
            })?
            .into_parts();
        if let Some(signer) = &self.signer {
            signer.sign(&mut parts, None).await.map_err(|e| {
                BackendError::new(
                    BackendErrorKind::PermissionDenied,
                    format!("signing {what} of {path}: {e}"),
                )
            })?;
        }
        self.client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| {
                let kind = if e.is_timeout() {
                    BackendErrorKind::TimedOut
                } else {
                    BackendErrorKind::Other
                };
                BackendError::new(kind, format!("{what} {path}: {e}"))
            })
    }

    /// Replaces the user metadata (and keeps `content_type`) of the object
    /// at `path` (relative to the mount's root) by copying it onto itself.
    pub async fn replace(
        &self,
        path: &str,
        content_type: Option<&str>,
        user: &UserMeta,
    ) -> Result<(), BackendError> {
        let key = utf8_percent_encode(&format!("{}{path}", self.root), KEY).to_string();
        let url = format!("{}/{key}", self.base);
        let mut req = http::Request::put(&url)
            .header("x-amz-copy-source", format!("{}/{key}", self.bucket))
            .header("x-amz-metadata-directive", "REPLACE")
            .header("x-amz-content-sha256", reqsign_aws_v4::EMPTY_STRING_SHA256)
            .header(http::header::CONTENT_LENGTH, "0");
        if let Some(ct) = content_type {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        let mut keys: Vec<_> = user.iter().collect();
        keys.sort();
        for (k, v) in keys {
            req = req.header(format!("x-amz-meta-{k}"), v);
        }
        let resp = self.send(req, path, "copy onto itself").await?;
        let status = resp.status();
        // S3 can answer 200 with an error in the body when a copy fails late.
        let body = resp.text().await.unwrap_or_default();
        if status.is_success() && !body.contains("<Error>") {
            return Ok(());
        }
        let kind = status_kind(status.as_u16());
        let excerpt: String = body.chars().take(ERROR_BODY_MAX).collect();
        Err(BackendError::new(
            kind,
            format!("copying {path} onto itself (new metadata): HTTP {status}: {excerpt}"),
        ))
    }
}

/// What a HEAD tells of an object.
#[derive(Debug, Clone)]
pub struct Head {
    pub user: UserMeta,
    pub content_type: Option<String>,
}

/// The error kind of an HTTP status.
fn status_kind(status: u16) -> BackendErrorKind {
    match status {
        404 => BackendErrorKind::NotFound,
        403 => BackendErrorKind::PermissionDenied,
        429 | 503 => BackendErrorKind::RateLimited,
        _ => BackendErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_mount_options() {
        let opts = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let c = MetaCopier::new(
            &opts(&[
                ("bucket", "b"),
                ("endpoint", "http://127.0.0.1:9000/"),
                ("root", "/p/q/"),
            ]),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(
            (c.base.as_str(), c.root.as_str()),
            ("http://127.0.0.1:9000/b", "p/q/")
        );
        let c = MetaCopier::new(
            &opts(&[
                ("bucket", "b"),
                ("region", "eu-west-1"),
                ("enable_virtual_host_style", "true"),
            ]),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(c.base, "https://b.s3.eu-west-1.amazonaws.com");
        assert!(MetaCopier::new(&opts(&[]), Duration::from_secs(5)).is_err());
        assert_eq!(
            utf8_percent_encode("a b/ü+x~.txt", KEY).to_string(),
            "a%20b/%C3%BC%2Bx~.txt"
        );
    }
}
