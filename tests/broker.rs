//! The job against a real Kafka-protocol broker (tansu), not the mock.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64};

use common::process::*;
use common::tansu::Tansu;
use common::*;
use scorestream_pipeline::demo::{demo_world, generator_options};
use scorestream_pipeline::synth::{EventGen, Pace, produce};

/// Events produced to a real broker are all scored or dead-lettered exactly
/// once by `scorestream run`, and the group's committed offsets cover them
/// all (tansu's high watermark is unreliable, so offsets and counts are checked).
#[test]
fn run_against_a_real_broker_scores_every_event_exactly_once() {
    let broker = Tansu::start();
    broker.create_topic("transactions", 3);
    let world = demo_world(&DEMO_ASSETS).expect("world");
    let opts = generator_options(31);
    let n = 20_000;
    let (progress, stop) = (AtomicU64::new(0), AtomicBool::new(false));
    let pace = Pace {
        rate: None,
        progress: &progress,
        stop: &stop,
        ahead_of: None,
    };
    let report = produce(
        &broker.brokers,
        "transactions",
        &mut EventGen::new(&world, opts.clone()),
        n,
        &pace,
    )
    .expect("produce to tansu");
    assert_eq!(report.delivered, n);

    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let job = job_file(
        dir.path(),
        &broker.brokers,
        &out,
        "tansu-run",
        TANSU_SESSION,
    );
    let o = run(bin().arg("run").arg(&job).args(["--exit-on-idle", "3s"]));
    assert!(o.status.success(), "{}", text(&o.stderr));

    assert_exactly_once(&out, &replay(&world, opts, n));
    assert_eq!(
        committed_total(&broker.brokers, "tansu-run", "transactions", 3),
        n as i64
    );
}
