//! `[dead_letters] max_rate` on the librdkafka mock cluster: a producer
//! shipping garbage stops the job (or pauses its reading) with an error
//! that says why, and nothing read before is lost.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::*;
use common::tansu::produce_events;
use common::*;
use rdkafka::mocking::MockCluster;
use scorestream_tools::demo::generator_options;
use scorestream_tools::synth::GenOptions;

const TOPIC: &str = "transactions";
const LIMIT: &str = "max_rate = 0.2\nrate_min_messages = 500";

/// The demo job with `lines` added to its `[dead_letters]` section.
fn limited_job(dir: &Path, brokers: &str, out: &Path, lines: &str) -> PathBuf {
    let job = job_file(dir, brokers, out, "dead-letter-rate", MOCK_SESSION);
    let toml =
        std::fs::read_to_string(&job).expect("job") + &format!("\n[dead_letters]\n{lines}\n");
    std::fs::write(&job, toml).expect("write job");
    job
}

/// A mock cluster with the topic, its brokers, and a working directory.
fn cluster() -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
    tempfile::TempDir,
) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 3, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    (cluster, brokers, tempfile::tempdir().expect("tmp"))
}

fn garbage(seed: u64, share: f64) -> GenOptions {
    GenOptions {
        malformed_rate: share,
        ..generator_options(seed)
    }
}

#[test]
fn a_producer_shipping_garbage_stops_the_job_with_the_rate_and_reasons() {
    let (_cluster, brokers, dir) = cluster();
    let out = dir.path().join("out");
    let job = limited_job(dir.path(), &brokers, &out, LIMIT);
    produce_events(&brokers, TOPIC, garbage(61, 0.5), 5_000);
    let failed = run(bin()
        .arg("run")
        .arg(&job)
        .args(["--exit-on-idle", "5s"])
        .env("RUST_LOG", "warn"));
    let stderr = text(&failed.stderr);
    assert!(!failed.status.success(), "the job must stop: {stderr}");
    for says in [
        "became dead letters within",
        "max_rate = 0.2",
        "most frequent: parse/",
    ] {
        assert!(stderr.contains(says), "the error says {says:?}: {stderr}");
    }
    // what tripped the limit was committed, dead letters included
    let letters = dead_letter_ids(&out);
    assert!(
        letters.len() >= 100,
        "{} dead letters committed",
        letters.len()
    );
    assert!(letters.values().all(|&n| n == 1));
}

#[test]
fn a_rate_under_the_limit_lets_the_job_run() {
    let (_cluster, brokers, dir) = cluster();
    let out = dir.path().join("out");
    let job = limited_job(dir.path(), &brokers, &out, LIMIT);
    let produced = produce_events(&brokers, TOPIC, garbage(62, 0.05), 5_000);
    let ok = run(bin()
        .arg("run")
        .arg(&job)
        .args(["--exit-on-idle", "3s"])
        .env("RUST_LOG", "warn"));
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert_exactly_once(&out, &produced);
}

#[test]
fn on_max_rate_pause_stops_reading_for_a_while_and_loses_nothing() {
    let (_cluster, brokers, dir) = cluster();
    let out = dir.path().join("out");
    let log = dir.path().join("run.log");
    let job = limited_job(
        dir.path(),
        &brokers,
        &out,
        &format!("{LIMIT}\non_max_rate = \"pause\"\npause_for = \"1s\""),
    );
    let produced = produce_events(&brokers, TOPIC, garbage(63, 0.5), 5_000);
    let mut child = spawn_run(&job, &["--exit-on-idle", "4s"], &log);
    wait_success(&mut child, &log, Duration::from_secs(120));
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("reading paused for 1s"), "{text}");
    assert!(
        text.contains("dead-letter pause over; reading again"),
        "{text}"
    );
    assert_exactly_once(&out, &produced);
}
