//! `/metrics` content negotiation: OpenMetrics for scrapers that ask for it, the classic
//! Prometheus text format (0.0.4) for everyone else.
//!
//! `prometheus-client` writes only OpenMetrics text. Prometheus itself asks for OpenMetrics
//! and gets it unchanged; `curl`, `promtool check metrics` and older tools parse the 0.0.4 text
//! format, where OpenMetrics' counter family names (without `_total`), `# UNIT` and `# EOF`
//! lines do not fit, so [`to_prometheus_text`] rewrites those. Nothing here knows which
//! metrics exist.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap};

use super::Metrics;

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The scrape response in the format the client's `Accept` header prefers.
pub fn respond(metrics: &Metrics, headers: &HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let text = metrics.encode();
    if openmetrics {
        ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response()
    } else {
        (
            [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
            to_prometheus_text(&text),
        )
            .into_response()
    }
}

/// Rewrites OpenMetrics text into the Prometheus 0.0.4 text format:
/// counter families get their `_total` sample name in `# HELP`/`# TYPE`, `_created` samples,
/// `# UNIT` and `# EOF` are dropped, exemplars are cut off, and OpenMetrics-only types become
/// types 0.0.4 knows (`info`/`stateset` → gauge, `gaugehistogram`/`unknown` → untyped).
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // Families whose samples carry a suffix (counters: `_total`, info: `_info`), so their
    // HELP (which comes before TYPE) can be renamed too.
    let suffixes: std::collections::HashMap<&str, &str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .filter_map(|(name, kind)| match kind.trim() {
            "counter" => Some((name, "_total")),
            "info" => Some((name, "_info")),
            _ => None,
        })
        .collect();
    let mut created = Vec::new();
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(&format!("# HELP {} {help}\n", sample_name(name, &suffixes)));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let kind = match kind.trim() {
                "counter" | "gauge" | "histogram" | "summary" => kind.trim(),
                "info" | "stateset" => "gauge",
                _ => "untyped",
            };
            if kind == "counter" {
                created.push(format!("{name}_created"));
            }
            out.push_str(&format!("# TYPE {} {kind}\n", sample_name(name, &suffixes)));
            continue;
        }
        if line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let metric = line.split(['{', ' ']).next().unwrap_or("");
        if created.iter().any(|c| c == metric) {
            continue;
        }
        // An exemplar follows " # " after the value; 0.0.4 has no place for it.
        let sample = match line.find(" # ") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(sample);
        out.push('\n');
    }
    out
}

fn sample_name(family: &str, suffixes: &std::collections::HashMap<&str, &str>) -> String {
    match suffixes.get(family) {
        Some(suffix) if !family.ends_with(suffix) => format!("{family}{suffix}"),
        _ => family.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_their_total_names_and_openmetrics_only_lines_go() {
        let om = "# HELP roost_http_requests HTTP requests.\n\
                  # TYPE roost_http_requests counter\n\
                  roost_http_requests_total{route=\"/\",status=\"200\"} 3 # {trace_id=\"x\"} 1.0\n\
                  roost_http_requests_created{route=\"/\",status=\"200\"} 1700000000.0\n\
                  # HELP roost_up_seconds Uptime.\n\
                  # TYPE roost_up_seconds gauge\n\
                  # UNIT roost_up_seconds seconds\n\
                  roost_up_seconds 5\n\
                  # HELP roost_build Build.\n\
                  # TYPE roost_build info\n\
                  roost_build_info{version=\"1\"} 1\n\
                  # EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP roost_http_requests_total HTTP requests.\n\
             # TYPE roost_http_requests_total counter\n\
             roost_http_requests_total{route=\"/\",status=\"200\"} 3\n\
             # HELP roost_up_seconds Uptime.\n\
             # TYPE roost_up_seconds gauge\n\
             roost_up_seconds 5\n\
             # HELP roost_build_info Build.\n\
             # TYPE roost_build_info gauge\n\
             roost_build_info{version=\"1\"} 1\n"
        );
    }

    #[test]
    fn the_daemons_own_metrics_convert_cleanly() {
        let m = Metrics::new();
        let text = to_prometheus_text(&m.encode());
        assert!(!text.contains("# EOF"));
        assert!(
            text.contains("# TYPE roost_http_requests_total counter"),
            "{text}"
        );
    }

    #[test]
    fn accept_header_picks_the_format() {
        let m = Metrics::new();
        let mut h = HeaderMap::new();
        let r = respond(&m, &h);
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROMETHEUS_CONTENT_TYPE);
        h.insert(
            header::ACCEPT,
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
                .parse()
                .unwrap(),
        );
        let r = respond(&m, &h);
        assert_eq!(r.headers()[header::CONTENT_TYPE], OPENMETRICS_CONTENT_TYPE);
    }
}
