//! Fault tests against a real Kafka-protocol broker (tansu): processes killed
//! with SIGKILL mid-stream, a group member dying, bursts of bad events. After
//! each, the output plus the dead letters hold every produced event exactly
//! once, checked by event id, and nothing else.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::process::*;
use common::tansu::{Tansu, produce_events};
use common::*;
use scorestream_tools::demo::generator_options;
use scorestream_tools::synth::GenOptions;

const TOPIC: &str = "transactions";

/// Waits up to a minute for `done`; on timeout fails showing the runs' logs.
fn wait_or_show(what: &str, logs: &[&Path], mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        if std::time::Instant::now() > deadline {
            let shown: Vec<String> = logs
                .iter()
                .map(|l| std::fs::read_to_string(l).unwrap_or_default())
                .collect();
            panic!("timed out waiting for {what}:\n{}", shown.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn writers(out: &Path) -> BTreeSet<String> {
    commit_entries(out)
        .iter()
        .filter_map(|e| e["writer"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn killed_with_sigkill_mid_stream_again_and_again_nothing_is_lost_or_duplicated() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 3);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let log = dir.path().join("run.log");
    let job = job_file(dir.path(), &broker.brokers, &out, "kill-9", TANSU_SESSION);

    let n = 60_000;
    let produced = produce_events(&broker.brokers, TOPIC, generator_options(41), n);
    for round in 0..3 {
        let before = commit_entries(&out).len();
        let mut child = spawn_run(&job, &[], &log);
        // mid-stream: the job is committing
        wait_or_show("progress", &[&log], || {
            commit_entries(&out).len() >= before + 3
        });
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        assert!(
            commit_entries(&out).len() < 3 * 30 + 3,
            "round {round}: the job finished before it was killed; the test needs more events"
        );
    }
    let mut last = spawn_run(&job, &["--exit-on-idle", "3s"], &log);
    wait_success(&mut last, &log, Duration::from_secs(120));

    assert_exactly_once(&out, &produced);
    assert!(
        writers(&out).len() >= 4,
        "every run committed some of the output"
    );
    assert_eq!(
        committed_total(&broker.brokers, "kill-9", TOPIC, 3),
        n as i64,
        "group offsets follow the output"
    );
}

#[test]
fn two_pipelines_share_the_partitions_and_one_being_killed_loses_nothing() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 4);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let job = job_file(dir.path(), &broker.brokers, &out, "pair", TANSU_SESSION);

    let first = produce_events(&broker.brokers, TOPIC, generator_options(43), 40_000);
    let mut a = spawn_run(&job, &[], &log_a);
    let mut b = spawn_run(&job, &[], &log_b);
    wait_or_show(
        "both members to own partitions and commit",
        &[&log_a, &log_b],
        || writers(&out).len() >= 2,
    );
    a.kill().expect("SIGKILL");
    a.wait().expect("reaped");
    // more events while the survivor takes the dead member's partitions over
    let opts = GenOptions {
        seed: 4_343,
        first_seq: 1_000_000,
        ..generator_options(43)
    };
    let second = produce_events(&broker.brokers, TOPIC, opts, 20_000);
    // the survivor takes the dead member's partitions over (after the
    // group's session timeout); once every offset is committed, SIGTERM it
    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    let total = all.len();
    wait_for(
        "the survivor to commit everything",
        Duration::from_secs(120),
        || committed_messages(&out) >= total as i64,
    );
    let pid = b.id().to_string();
    run(std::process::Command::new("kill").args(["-TERM", &pid]));
    wait_success(&mut b, &log_b, Duration::from_secs(60));

    assert_exactly_once(&out, &all);
    assert!(writers(&out).len() >= 2);
}

#[test]
fn a_burst_of_malformed_events_is_dead_lettered_exactly_once() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 3);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let log = dir.path().join("run.log");
    let job = job_file(dir.path(), &broker.brokers, &out, "burst", TANSU_SESSION);
    let mut child = spawn_run(&job, &["--exit-on-idle", "3s"], &log);
    // a third of the events are broken, arriving while the job runs
    let opts = GenOptions {
        malformed_rate: 0.3,
        ..generator_options(47)
    };
    let produced = produce_events(&broker.brokers, TOPIC, opts, 20_000);
    wait_success(&mut child, &log, Duration::from_secs(120));

    let malformed = produced
        .iter()
        .filter(|(_, k)| matches!(k, scorestream_tools::synth::EventKind::Malformed))
        .count();
    assert!(
        malformed > 5_000,
        "the burst is real: {malformed} malformed"
    );
    assert_exactly_once(&out, &produced);
}

/// The highest checkpoint sequence number of the output's commit log.
fn checkpoint_seq(out: &Path) -> u64 {
    std::fs::read_dir(out.join("_scorestream/checkpoints"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".json")?.parse().ok()
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// With the commit log checkpointed after nearly every commit, SIGKILLs
/// mid-stream land while it is being compacted too (each step of a
/// compaction is also hit exactly, with SIGKILL, by the sink's
/// `checkpoint_tests`). Every restart resumes from the checkpointed log;
/// the output holds each event once and the log stays small.
#[test]
fn killed_with_sigkill_while_the_commit_log_is_checkpointed_nothing_is_lost_or_duplicated() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 3);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let log = dir.path().join("run.log");
    let job = job_file(
        dir.path(),
        &broker.brokers,
        &out,
        "kill-ckpt",
        TANSU_SESSION,
    );
    let roll = "roll = { interval = \"1s\", inactivity = \"300ms\", max_rows = 2000 }";
    let toml = std::fs::read_to_string(&job).expect("job");
    assert!(toml.contains(roll), "job_file's roll changed");
    let toml = toml.replace(
        roll,
        &format!("{roll}\ncommit_log = {{ checkpoint_entries = 2 }}"),
    );
    std::fs::write(&job, toml).expect("job");

    let n = 60_000;
    let produced = produce_events(&broker.brokers, TOPIC, generator_options(53), n);
    for round in 0..4u64 {
        let before = checkpoint_seq(&out);
        let mut child = spawn_run(&job, &[], &log);
        wait_or_show("checkpoints", &[&log], || {
            checkpoint_seq(&out) >= before + 2
        });
        // Vary where in the commit-and-checkpoint cycle the kill lands.
        std::thread::sleep(Duration::from_millis(round * 7));
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }
    let mut last = spawn_run(&job, &["--exit-on-idle", "3s"], &log);
    wait_success(&mut last, &log, Duration::from_secs(120));

    assert_exactly_once(&out, &produced);
    assert!(checkpoint_seq(&out) >= 8, "the log was checkpointed");
    let entries = commit_entries(&out).len();
    // At most 2 new entries before a checkpoint, one more commit's worth
    // (3 partitions), and the tail each partition keeps.
    assert!(entries <= 2 + 3 + 3, "{entries} entries left in the log");
    assert_eq!(
        committed_total(&broker.brokers, "kill-ckpt", TOPIC, 3),
        n as i64,
        "group offsets follow the output"
    );
}
