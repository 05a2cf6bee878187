//! Hot reload against a real broker (tansu): a job whose `model.path` is a
//! registry of versions picks up a new version without a restart, rejects a
//! broken one and keeps scoring with the last good one.

mod common;

use std::collections::HashMap;
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

/// Per event, the version of the model its score came from and the
/// versions of the others that also scored it (sorted, comma-separated).
fn versions_with_others(out: &Path) -> HashMap<String, (String, String)> {
    use arrow::array::{Array, AsArray};
    let mut by_event = HashMap::new();
    for b in read_dir(&out.join("scores")) {
        let ids = b.column_by_name("event_id").expect("id").as_string::<i32>();
        let version = b
            .column_by_name("model_version")
            .expect("model_version")
            .as_string::<i32>();
        let shadows = b
            .column_by_name("shadow_scores")
            .expect("shadow_scores")
            .as_list::<i32>();
        for i in 0..b.num_rows() {
            let others = shadows.value(i);
            let others = others
                .as_struct()
                .column_by_name("model_version")
                .expect("version")
                .as_string::<i32>()
                .clone();
            let mut others: Vec<&str> = (0..others.len()).map(|j| others.value(j)).collect();
            others.sort_unstable();
            by_event.insert(
                ids.value(i).to_owned(),
                (version.value(i).to_owned(), others.join(",")),
            );
        }
    }
    by_event
}

/// A shadow and a canary whose paths are registries get new versions the
/// way the champion does: swapped in between batches, without a restart,
/// each in its own role.
#[test]
fn shadow_and_canary_registries_are_hot_reloaded_too() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 3);
    let dir = tempfile::tempdir().expect("tmp");
    let (shadows, canaries) = (dir.path().join("shadow"), dir.path().join("canary"));
    publish(&shadows, "v1", "3", false);
    publish(&canaries, "v1", "7", false);
    let out = dir.path().join("out");
    let log = dir.path().join("run.log");
    let job = job_file(
        dir.path(),
        &broker.brokers,
        &out,
        "reload-challengers",
        TANSU_SESSION,
    );
    let model_path = format!("path = {:?}", repo().join("jobs/demo/model"));
    let toml = std::fs::read_to_string(&job).expect("job").replace(
        &model_path,
        &format!(
            "{model_path}\nreload_interval = \"200ms\"\ncanary = {{ path = {canaries:?}, fraction = 0.5 }}"
        ),
    ) + &format!("\n[[model.shadows]]\npath = {shadows:?}\n");
    assert!(toml.contains("reload_interval"), "{toml}");
    std::fs::write(&job, toml).expect("job");

    let first = produce_events(&broker.brokers, TOPIC, generator_options(82), 4_000);
    let mut child = spawn_run(&job, &["--exit-on-idle", "4s"], &log);
    wait_for(
        "the first events committed",
        Duration::from_secs(60),
        || committed_messages(&out) >= 4_000,
    );
    publish(&shadows, "v2", "4", false);
    publish(&canaries, "v2", "8", false);
    wait_for("both challengers swapped", Duration::from_secs(60), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.matches("now scoring with the new model version")
            .count()
            >= 2
    });
    let opts = GenOptions {
        seed: 8_200,
        first_seq: 2_000_000,
        ..generator_options(82)
    };
    let second = produce_events(&broker.brokers, TOPIC, opts, 4_000);
    wait_success(&mut child, &log, Duration::from_secs(120));

    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    assert_exactly_once(&out, &all);
    let roles = versions_with_others(&out);
    let count = |events: &[(String, _)], want: (&str, &str)| {
        events
            .iter()
            .filter(|(id, _)| {
                roles
                    .get(id)
                    .is_some_and(|(v, s)| (v.as_str(), s.as_str()) == want)
            })
            .count()
    };
    // the champion (version 1) answers for about half the keys, the canary
    // for the others; every model scores every row
    let (champion_before, canary_before) =
        (count(&first, ("1", "3,7")), count(&first, ("7", "1,3")));
    let (champion_after, canary_after) =
        (count(&second, ("1", "4,8")), count(&second, ("8", "1,4")));
    let scored = |events: &[(String, _)]| {
        events
            .iter()
            .filter(|(id, _)| roles.contains_key(id))
            .count()
    };
    let (before, after) = (scored(&first), scored(&second));
    assert!(
        before > 3_000 && after > 3_000,
        "{before} and {after} scored"
    );
    assert!(
        champion_before + canary_before == before && champion_before > 0 && canary_before > 0,
        "before the new versions: {champion_before} champion + {canary_before} canary rows of {before}"
    );
    assert!(
        champion_after + canary_after == after && champion_after > 0 && canary_after > 0,
        "after the new versions: {champion_after} champion + {canary_after} canary rows of {after}"
    );
    let text = std::fs::read_to_string(&log).expect("log");
    for swapped in ["canary/v2", "shadow/v2"] {
        assert!(text.contains(swapped), "the log names {swapped}: {text}");
    }
}
