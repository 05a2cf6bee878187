//! What a job's per-batch telemetry costs on the hot path: the metrics one
//! batch records (events, four stage durations, batch size, rows scored),
//! with the recorder `run` and `serve` install, inside a job's span so each
//! gets its `job` label (metrics-tracing-context), and outside any span
//! for comparison. Run with `cargo bench --bench telemetry`.

use criterion::{Criterion, criterion_group, criterion_main};
use metrics::{counter, histogram};
use scorestream_pipeline::telemetry::{install_prometheus, metrics_layer};
use tracing_subscriber::layer::SubscriberExt;

const ROWS: u64 = 16_384;

fn one_batch() {
    counter!("scorestream_events_total").increment(ROWS);
    for stage in ["decode", "feature_join", "score", "sink_write"] {
        histogram!("scorestream_stage_duration_seconds", "stage" => stage).record(0.001);
    }
    histogram!("scorestream_batch_rows").record(ROWS as f64);
    counter!("scorestream_rows_scored_total").increment(ROWS);
}

fn telemetry(c: &mut Criterion) {
    let handle = install_prometheus().expect("recorder");
    let subscriber = tracing_subscriber::registry().with(metrics_layer());
    let _default = tracing::subscriber::set_default(subscriber);
    let mut g = c.benchmark_group("telemetry");
    g.bench_function("one_batch_unlabelled", |b| b.iter(one_batch));
    {
        // The spans `Job::run` opens (targets under `scorestream`).
        let job =
            tracing::info_span!(target: "scorestream_pipeline::runtime", "job", job = "bench");
        let _job = job.enter();
        let op = tracing::info_span!(target: "scorestream_pipeline::runtime", "operator", operator = "scorer");
        let _op = op.enter();
        g.bench_function("one_batch_in_job_span", |b| b.iter(one_batch));
    }
    g.finish();
    assert!(
        handle.render().contains("job=\"bench\""),
        "the span's job label reached the recorder"
    );
}

criterion_group!(benches, telemetry);
criterion_main!(benches);
