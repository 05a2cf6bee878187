use std::path::{Path, PathBuf};

use metrics::Unit;
use tracing_subscriber::layer::SubscriberExt;

use super::*;

/// `(macro, name)` for every `counter!("scorestream_...")`, `gauge!(...)`
/// and `histogram!(...)` in the Rust files under `dir`.
fn recorded_names(dir: &Path, out: &mut Vec<(String, String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            recorded_names(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        for kind in ["counter", "gauge", "histogram"] {
            let pat = format!("{kind}!(");
            let mut from = 0;
            while let Some(at) = text[from..].find(&pat) {
                let start = from + at;
                from = start + pat.len();
                if text[..start].ends_with('_') {
                    continue; // describe_counter! and friends
                }
                let rest = text[from..].trim_start();
                let Some(rest) = rest.strip_prefix("\"scorestream_") else {
                    continue;
                };
                let Some(end) = rest.find('"') else { continue };
                let name = &rest[..end];
                if !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    continue; // not a literal name, e.g. this file's docs
                }
                out.push((kind.to_owned(), format!("scorestream_{name}"), path.clone()));
            }
        }
    }
}

/// promtool flags a family without HELP; every metric the code records
/// must be in `METRICS`, as the kind it is recorded as.
#[test]
fn every_recorded_metric_is_described() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for dir in ["src", "operators/src", "pipeline/src", "service/src"] {
        recorded_names(&root.join(dir), &mut found);
    }
    assert!(
        found.len() > 20,
        "the scan found too few metrics: {found:?}"
    );
    let mut missing = Vec::new();
    for (kind, name, path) in &found {
        let want = match kind.as_str() {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            _ => Kind::Histogram,
        };
        if !METRICS.iter().any(|m| m.name == name && m.kind == want) {
            missing.push(format!("{kind} {name} ({})", path.display()));
        }
    }
    assert!(
        missing.is_empty(),
        "not in telemetry::METRICS: {missing:#?}"
    );
}

/// Prometheus naming: counters end in `_total`, nothing else does, and a
/// unit in the type shows in the name.
#[test]
fn names_follow_prometheus_conventions() {
    let mut seen = std::collections::HashSet::new();
    for m in METRICS {
        assert!(seen.insert(m.name), "{} listed twice", m.name);
        assert!(m.name.starts_with("scorestream_"), "{}", m.name);
        assert!(
            m.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{}",
            m.name
        );
        assert_eq!(
            m.kind == Kind::Counter,
            m.name.ends_with("_total"),
            "{}: only counters end in _total",
            m.name
        );
        match m.unit {
            Unit::Seconds => assert!(m.name.ends_with("_seconds"), "{}", m.name),
            Unit::Bytes => assert!(m.name.ends_with("_bytes"), "{}", m.name),
            _ => assert!(
                !m.name.ends_with("_seconds") && !m.name.ends_with("_bytes"),
                "{}: its unit should say so",
                m.name
            ),
        }
        assert!(!m.labels.contains(&"key"), "{}: never label by key", m.name);
        assert!(!m.help.is_empty(), "{}", m.name);
    }
}

/// A metric recorded inside a job's span carries `job`, and only `job`,
/// from the span; histograms render with buckets.
#[test]
fn job_span_becomes_the_job_label_and_histograms_have_buckets() {
    let recorder = builder().expect("builder").build_recorder();
    let handle = recorder.handle();
    let recorder = TracingContextLayer::only_allow([JOB_LABEL]).layer(recorder);
    let subscriber = tracing_subscriber::registry().with(metrics_layer());
    tracing::subscriber::with_default(subscriber, || {
        metrics::with_local_recorder(&recorder, || {
            describe_metrics();
            let job = tracing::info_span!("job", job = "fraud");
            let _job = job.enter();
            let op = tracing::info_span!("operator", operator = "scorer");
            let _op = op.enter();
            metrics::counter!("scorestream_events_total").increment(7);
            metrics::histogram!("scorestream_batch_rows").record(100.0);
            metrics::histogram!("scorestream_stage_duration_seconds", "stage" => "score")
                .record(0.003);
        });
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("scorestream_events_total").increment(1);
        });
    });
    let text = handle.render();
    assert!(
        text.contains("scorestream_events_total{job=\"fraud\"} 7"),
        "{text}"
    );
    assert!(text.contains("scorestream_events_total 1"), "{text}");
    assert!(!text.contains("operator=\"scorer\""), "{text}");
    assert!(
        text.contains("# HELP scorestream_events_total Kafka messages"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE scorestream_batch_rows histogram"),
        "{text}"
    );
    assert!(
        text.contains("scorestream_batch_rows_bucket{job=\"fraud\",le=\"128\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "scorestream_stage_duration_seconds_bucket{stage=\"score\",job=\"fraud\",le=\"0.005\"} 1"
        ) || text.contains(
            "scorestream_stage_duration_seconds_bucket{job=\"fraud\",stage=\"score\",le=\"0.005\"} 1"
        ),
        "{text}"
    );
}

#[test]
fn install_is_idempotent() {
    let a = install_prometheus().expect("install");
    let b = install_prometheus().expect("second install");
    metrics::counter!("scorestream_files_written_total").increment(2);
    assert_eq!(a.render(), b.render());
    assert!(a.render().contains("scorestream_files_written_total 2"));
}
