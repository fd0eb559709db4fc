//! The Prometheus text exposition format (version 0.0.4) of the statistics
//! and latency histograms, served at `/metrics`.
//!
//! Counters become `ringsip_<group>_<name>` (`ringsip_core_rcv_requests_invite`);
//! levels (`tm:current`, `usrloc:*`) are gauges. Latency is a summary per
//! message key (`ringsip_latency_seconds{message="INVITE",quantile="0.99"}`)
//! and script time a summary per route, with `_count` and `_sum` (sum from
//! bucket middles).

use std::fmt::Write;

use super::histogram::Snapshot;
use super::methods::{statistics, Ctl};
use super::metrics::{key_name, KEYS};

const QUANTILES: [(f64, &str); 4] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")];

fn metric_name(group: &str, name: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect()
    };
    format!("ringsip_{}_{}", clean(group), clean(name))
}

fn is_level(group: &str, name: &str) -> bool {
    group == "usrloc" || (group == "tm" && name == "current")
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn summary(out: &mut String, name: &str, label_name: &str, label_value: &str, s: &Snapshot) {
    let l = label(label_value);
    for (q, qs) in QUANTILES {
        let v = s.quantile(q).unwrap_or(0) as f64 / 1e9;
        let _ = writeln!(out, "{name}{{{label_name}=\"{l}\",quantile=\"{qs}\"}} {v}");
    }
    let sum = s.mean().unwrap_or(0.0) * s.count() as f64 / 1e9;
    let _ = writeln!(out, "{name}_sum{{{label_name}=\"{l}\"}} {sum}");
    let _ = writeln!(out, "{name}_count{{{label_name}=\"{l}\"}} {}", s.count());
}

/// The whole exposition.
pub fn render(ctl: &Ctl) -> String {
    let mut out = String::with_capacity(16 * 1024);
    for (group, name, v) in statistics(ctl) {
        let m = metric_name(group, &name);
        let kind = if is_level(group, &name) {
            "gauge"
        } else {
            "counter"
        };
        let _ = writeln!(out, "# TYPE {m} {kind}");
        let _ = writeln!(out, "{m} {v}");
    }
    let _ = writeln!(
        out,
        "# TYPE ringsip_uptime_seconds gauge\nringsip_uptime_seconds {}",
        ctl.started.elapsed().as_secs()
    );
    let l = ctl.metrics.latency();
    let name = "ringsip_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from a message's arrival to its forwarded copy or reply handed to the socket."
    );
    let _ = writeln!(out, "# TYPE {name} summary");
    for k in 0..KEYS {
        if l.by_key[k].count() > 0 {
            summary(&mut out, name, "message", &key_name(k), &l.by_key[k]);
        }
    }
    let name = "ringsip_script_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Script execution time per route (sampled, see cfg ctl.script_sample)."
    );
    let _ = writeln!(out, "# TYPE {name} summary");
    for (i, s) in l.by_route.iter().enumerate() {
        if s.count() > 0 {
            let route = ctl
                .metrics
                .route_names()
                .get(i)
                .cloned()
                .unwrap_or_default();
            summary(&mut out, name, "route", &route, s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_counters_and_summaries() {
        let ctl = Ctl::for_tests();
        ctl.metrics.core(0).received[0].add(2);
        ctl.metrics.core(1).latency[0].record_n(20_000, 2);
        let text = render(&ctl);
        assert!(text.contains("# TYPE ringsip_core_rcv_requests_invite counter\n"));
        assert!(text.contains("\nringsip_core_rcv_requests_invite 2\n"));
        assert!(text.contains("ringsip_latency_seconds_count{message=\"INVITE\"} 2\n"));
        assert!(text.contains("ringsip_tm_current "));
        assert!(text.contains("# TYPE ringsip_tm_current gauge"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
