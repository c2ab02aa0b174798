//! Hiding secrets: backend option values whose key looks secret are replaced
//! before they reach a reply or a log line.

use std::collections::BTreeMap;

/// What a hidden value shows.
pub const HIDDEN: &str = "***";

/// True for keys whose values must never be shown (`secret*`, `*key*`,
/// `*token*`, `*password*`, `*credential*`, `*session*`), case-insensitive.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("secret")
        || ["key", "token", "password", "passwd", "credential", "session"]
            .iter()
            .any(|w| k.contains(w))
}

/// `options` with secret values hidden.
pub fn redact(options: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    options
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret(k) {
                HIDDEN.to_string()
            } else {
                v.clone()
            };
            (k.clone(), shown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_secret_looking_keys_only() {
        let o = BTreeMap::from([
            ("secret_access_key".to_string(), "s".to_string()),
            ("access_key_id".to_string(), "a".to_string()),
            ("Token".to_string(), "t".to_string()),
            ("password".to_string(), "p".to_string()),
            ("region".to_string(), "eu".to_string()),
            ("bucket".to_string(), "b".to_string()),
        ]);
        let r = redact(&o);
        assert_eq!(r["region"], "eu");
        assert_eq!(r["bucket"], "b");
        for k in ["secret_access_key", "access_key_id", "Token", "password"] {
            assert_eq!(r[k], HIDDEN, "{k}");
        }
    }
}
