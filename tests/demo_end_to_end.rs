//! The demo path end to end, through the library: mock Kafka, generator,
//! every operator, Parquet read back.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Float32Type;
use common::*;
use scorestream_operators::scorer::train::auc;
use scorestream_tools::demo::{DemoOptions, demo_world, generator_options, run_demo};
use scorestream_tools::synth::EventKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_scored_or_dead_lettered_exactly_once_and_scores_rank_fraud() {
    let dir = tempfile::tempdir().expect("tmp");
    let opts = DemoOptions {
        events: 40_000,
        partitions: 4,
        out: dir.path().join("out"),
        seed: 11,
        rate: None,
        stall_timeout: Duration::from_secs(60),
    };
    let mut progress_calls = 0;
    let never = tokio_util::sync::CancellationToken::new();
    let report = run_demo(&DEMO_ASSETS, &opts, never, |_, _| progress_calls += 1)
        .await
        .expect("demo runs");
    assert!(progress_calls > 0);
    assert_eq!(report.produced.delivered, 40_000);

    let world = demo_world(&DEMO_ASSETS).expect("world");
    let produced = replay(&world, generator_options(opts.seed), opts.events);
    assert_exactly_once(&opts.out, &produced);

    let malformed = produced
        .iter()
        .filter(|(_, k)| *k == EventKind::Malformed)
        .count() as u64;
    assert!(
        malformed > 0,
        "the generator should have produced some broken events"
    );
    assert_eq!(report.job.stats.dead_letters, malformed);
    assert_eq!(
        report.job.stats.rows_scored + report.job.stats.dead_letters,
        40_000
    );
    assert_eq!(report.job.stats.messages_acked, 40_000);

    // Scores mean something: they rank the hidden fraud labels well, and rows
    // for accounts the store lacks are flagged.
    let kinds: HashMap<&str, EventKind> =
        produced.iter().map(|(id, k)| (id.as_str(), *k)).collect();
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    for b in read_dir(&opts.out.join("scores")) {
        let ids = b
            .column_by_name("event_id")
            .expect("id")
            .as_string::<i32>()
            .clone();
        let s = b
            .column_by_name("score")
            .expect("score")
            .as_primitive::<Float32Type>()
            .clone();
        let missing = b
            .column_by_name("features_missing")
            .expect("flag")
            .as_boolean()
            .clone();
        assert_eq!(
            b.column_by_name("model_version")
                .expect("version")
                .as_string::<i32>()
                .value(0),
            "1"
        );
        for i in 0..b.num_rows() {
            assert!((0.0..=1.0).contains(&s.value(i)));
            match kinds[ids.value(i)] {
                EventKind::Good { fraud } => {
                    assert!(!missing.value(i));
                    scores.push(s.value(i));
                    labels.push(f32::from(fraud));
                }
                EventKind::UnknownAccount => {
                    assert!(missing.value(i), "unknown account must be flagged")
                }
                EventKind::Malformed => unreachable!("checked above"),
            }
        }
        assert!(!ids.is_empty());
    }
    let a = auc(&scores, &labels);
    assert!(a > 0.8, "the demo model should rank fraud well; AUC {a}");
}

/// Two things at once. Embedders may drive a job from a current-thread
/// runtime, where CPU-bound operator work must not panic (as `block_in_place`
/// would). And the mock broker keeps only ~100,000 messages per partition:
/// 250,000 events into one partition are lost unless the generator waits for
/// the consumer.
#[tokio::test(flavor = "current_thread")]
async fn one_partition_more_events_than_the_broker_keeps_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().expect("tmp");
    let opts = DemoOptions {
        events: 250_000,
        partitions: 1,
        out: dir.path().join("out"),
        seed: 5,
        rate: None,
        stall_timeout: Duration::from_secs(20),
    };
    let never = tokio_util::sync::CancellationToken::new();
    let report = run_demo(&DEMO_ASSETS, &opts, never, |_, _| {})
        .await
        .expect("demo runs");
    let world = demo_world(&DEMO_ASSETS).expect("world");
    assert_exactly_once(
        &opts.out,
        &replay(&world, generator_options(opts.seed), opts.events),
    );
    assert_eq!(report.job.stats.messages_acked, 250_000);
}
