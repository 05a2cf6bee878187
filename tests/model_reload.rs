//! Hot reload against a real broker (tansu): a job whose `model.path` is a
//! registry of versions picks up a new version without a restart, rejects a
//! broken one and keeps scoring with the last good one.

mod common;

use std::path::Path;
use std::time::Duration;

use common::process::*;
use common::tansu::{Tansu, produce_events};
use common::*;
use scorestream_tools::demo::generator_options;
use scorestream_tools::synth::GenOptions;

const TOPIC: &str = "transactions";

fn wait_log(log: &Path, text: &str) {
    wait_for(text, Duration::from_secs(60), || {
        std::fs::read_to_string(log).is_ok_and(|l| l.contains(text))
    });
}

#[test]
fn a_new_version_is_swapped_in_and_a_broken_one_is_rejected_without_a_restart() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 3);
    let dir = tempfile::tempdir().expect("tmp");
    let registry = dir.path().join("models");
    publish(&registry, "v1", "1", false);
    let out = dir.path().join("out");
    let log = dir.path().join("run.log");
    let job = job_file(dir.path(), &broker.brokers, &out, "reload", TANSU_SESSION);
    let model_path = format!("path = {:?}", repo().join("jobs/demo/model"));
    let toml = std::fs::read_to_string(&job).expect("job").replace(
        &model_path,
        &format!("path = {registry:?}\nreload_interval = \"200ms\""),
    );
    assert!(toml.contains("reload_interval"), "{toml}");
    std::fs::write(&job, toml).expect("job");

    let first = produce_events(&broker.brokers, TOPIC, generator_options(81), 5_000);
    let mut child = spawn_run(&job, &["--exit-on-idle", "4s"], &log);
    wait_for(
        "the first events committed",
        Duration::from_secs(60),
        || committed_messages(&out) >= 5_000,
    );

    publish(&registry, "v2", "2", false);
    wait_log(&log, "swapping it in at the next batch");
    // v10 sorts above v2 (numerically), and is broken
    publish(&registry, "v10", "10", true);
    wait_log(&log, "new model version rejected");

    let opts = GenOptions {
        seed: 8_100,
        first_seq: 1_000_000,
        ..generator_options(81)
    };
    let second = produce_events(&broker.brokers, TOPIC, opts, 5_000);
    wait_success(&mut child, &log, Duration::from_secs(120));

    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    assert_exactly_once(&out, &all);
    let versions = versions_by_event(&out);
    for (id, _) in &first {
        if let Some(v) = versions.get(id) {
            assert_eq!(v, "1", "{id} was scored before v2 was published");
        }
    }
    for (id, _) in &second {
        if let Some(v) = versions.get(id) {
            assert_eq!(v, "2", "{id}: the broken v10 must not score");
        }
    }
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("v10"),
        "the rejection names the version: {text}"
    );
    assert!(text.contains("now scoring with the new model version"));
}
