//! Renders a `stats` snapshot in the Prometheus text exposition format
//! (version 0.0.4), so the endpoint shows exactly the figures of `stats`.

use super::protocol::StatsReply;
use std::fmt::Write;

/// Metric name prefix.
const PREFIX: &str = "ipfs_kit_fuse";

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The exposition text for `s`.
pub fn render(s: &StatsReply) -> String {
    let mut o = String::new();
    let p = PREFIX;
    let _ = writeln!(
        o,
        "# HELP {p}_in_flight FUSE operations running now.\n# TYPE {p}_in_flight gauge"
    );
    let _ = writeln!(o, "{p}_in_flight {}", s.in_flight);
    let _ = writeln!(
        o,
        "# HELP {p}_op_duration_seconds Latency of FUSE operations.\n# TYPE {p}_op_duration_seconds histogram"
    );
    for op in &s.ops {
        let mut cumulative = 0;
        for (i, n) in op.buckets.iter().enumerate() {
            cumulative += n;
            let le = match s.latency_buckets_us.get(i) {
                Some(us) => format!("{}", *us as f64 / 1e6),
                None => "+Inf".into(),
            };
            let _ = writeln!(
                o,
                "{p}_op_duration_seconds_bucket{{op=\"{}\",le=\"{le}\"}} {cumulative}",
                label(&op.op)
            );
        }
        let _ = writeln!(
            o,
            "{p}_op_duration_seconds_sum{{op=\"{}\"}} {}",
            label(&op.op),
            op.total_us as f64 / 1e6
        );
        let _ = writeln!(
            o,
            "{p}_op_duration_seconds_count{{op=\"{}\"}} {}",
            label(&op.op),
            op.count
        );
    }
    let _ = writeln!(
        o,
        "# HELP {p}_backend_bytes_total Bytes moved per backend mount.\n# TYPE {p}_backend_bytes_total counter"
    );
    for b in &s.backends {
        for (dir, n) in [("read", b.bytes_read), ("written", b.bytes_written)] {
            let _ = writeln!(
                o,
                "{p}_backend_bytes_total{{mount=\"{}\",scheme=\"{}\",direction=\"{dir}\"}} {n}",
                label(&b.mount),
                label(&b.scheme)
            );
        }
    }
    if let Some(c) = &s.cache {
        let _ = writeln!(
            o,
            "# HELP {p}_cache_lookups_total Block cache lookups per tier and result.\n# TYPE {p}_cache_lookups_total counter"
        );
        for (tier, t) in [("memory", c.memory), ("disk", c.disk)] {
            let _ = writeln!(
                o,
                "{p}_cache_lookups_total{{tier=\"{tier}\",result=\"hit\"}} {}",
                t.hits
            );
            let _ = writeln!(
                o,
                "{p}_cache_lookups_total{{tier=\"{tier}\",result=\"miss\"}} {}",
                t.misses
            );
        }
        let _ = writeln!(
            o,
            "# HELP {p}_cache_used_bytes Bytes held per cache tier.\n# TYPE {p}_cache_used_bytes gauge"
        );
        for (tier, t) in [("memory", c.memory), ("disk", c.disk)] {
            let _ = writeln!(o, "{p}_cache_used_bytes{{tier=\"{tier}\"}} {}", t.used_bytes);
        }
        let _ = writeln!(
            o,
            "# HELP {p}_cache_backend_fetch_bytes_total Bytes fetched into the cache from backends.\n# TYPE {p}_cache_backend_fetch_bytes_total counter"
        );
        let _ = writeln!(o, "{p}_cache_backend_fetch_bytes_total {}", c.backend_bytes);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{BackendSnapshot, OpSnapshot};

    #[test]
    fn render_emits_cumulative_buckets_and_backend_bytes() {
        let s = StatsReply {
            cache: None,
            backends: vec![BackendSnapshot {
                mount: "/m".into(),
                scheme: "memory".into(),
                bytes_read: 3,
                bytes_written: 4,
                bytes_streamed: 0,
            }],
            ops: vec![OpSnapshot {
                op: "read".into(),
                count: 3,
                total_us: 1500,
                buckets: vec![1, 2, 0],
            }],
            latency_buckets_us: vec![100, 1000],
            in_flight: 0,
        };
        let t = render(&s);
        assert!(
            t.contains("op_duration_seconds_bucket{op=\"read\",le=\"0.001\"} 3"),
            "{t}"
        );
        assert!(t.contains("le=\"+Inf\"} 3"), "{t}");
        assert!(
            t.contains("mount=\"/m\",scheme=\"memory\",direction=\"written\"} 4"),
            "{t}"
        );
    }
}
