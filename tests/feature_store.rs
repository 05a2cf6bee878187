//! The demo job with its features in a real redis-server instead of the
//! file, against tansu: every event scored with the features Redis holds,
//! and a Redis crash mid-stream handled by the job's `on_unavailable` policy.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Float64Type;
use common::process::*;
use common::redis_server::{RedisServer, columns_toml, load_features, redis_job};
use common::tansu::{Tansu, produce_events};
use common::*;
use scorestream_tools::demo::generator_options;
use scorestream_tools::synth::GenOptions;

const TOPIC: &str = "transactions";

/// The demo job reading its features from Redis, no cache (every batch asks
/// Redis, so an outage is seen at once), with `on_unavailable`.
/// Per scored row: (account, avg_amount_30d or None, features_unavailable,
/// event id).
fn scored_rows(out: &Path) -> Vec<(String, Option<f64>, bool, String)> {
    let mut rows = Vec::new();
    for b in read_dir(&out.join("scores")) {
        let acct = b
            .column_by_name("account_id")
            .expect("account")
            .as_string::<i32>();
        let ids = b
            .column_by_name("event_id")
            .expect("event_id")
            .as_string::<i32>();
        let avg = b
            .column_by_name("avg_amount_30d")
            .expect("avg")
            .as_primitive::<Float64Type>();
        let unavailable = b
            .column_by_name("features_unavailable")
            .expect("features_unavailable")
            .as_boolean();
        for i in 0..b.num_rows() {
            rows.push((
                acct.value(i).to_owned(),
                avg.is_valid(i).then(|| avg.value(i)),
                unavailable.value(i),
                ids.value(i).to_owned(),
            ));
        }
    }
    rows
}

/// Runs the job over 10k events, kills Redis (SIGKILL), produces 10k more,
/// restarts Redis 3 s later and produces 5k more; returns what was produced.
fn run_through_a_redis_crash(on_unavailable: &str) -> CrashRun {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 3);
    let dir = tempfile::tempdir().expect("tmp");
    let mut redis = RedisServer::start(&dir.path().join("redis"));
    let avg = load_features(&redis);
    let out = dir.path().join("out");
    let log = dir.path().join("run.log");
    let job = redis_job(
        dir.path(),
        &broker.brokers,
        &out,
        &redis.url(),
        on_unavailable,
        "redis-features",
    );

    let first = produce_events(&broker.brokers, TOPIC, generator_options(71), 10_000);
    let mut child = spawn_run(&job, &["--exit-on-idle", "8s"], &log);
    wait_for(
        "the first half to be committed",
        Duration::from_secs(60),
        || committed_messages(&out) >= 10_000,
    );
    redis.kill();
    let opts = GenOptions {
        seed: 7_100,
        first_seq: 1_000_000,
        ..generator_options(71)
    };
    let second = produce_events(&broker.brokers, TOPIC, opts, 10_000);
    std::thread::sleep(Duration::from_secs(3));
    redis.restart();
    // and more once it is back (and the job's 1 s retry pause under
    // `defaults` has passed)
    std::thread::sleep(Duration::from_millis(1_500));
    let opts = GenOptions {
        seed: 7_200,
        first_seq: 2_000_000,
        ..generator_options(71)
    };
    let third = produce_events(&broker.brokers, TOPIC, opts, 5_000);
    wait_success(&mut child, &log, Duration::from_secs(120));
    let produced = first.into_iter().chain(second).chain(third).collect();
    let log = std::fs::read_to_string(&log).expect("log");
    CrashRun {
        dir,
        produced,
        avg,
        log,
    }
}

/// What [`run_through_a_redis_crash`] leaves to check.
struct CrashRun {
    dir: tempfile::TempDir,
    produced: Vec<(String, scorestream_tools::synth::EventKind)>,
    /// avg_amount_30d by account, as loaded into Redis
    avg: HashMap<String, f64>,
    log: String,
}

#[test]
fn with_wait_a_redis_crash_holds_scoring_until_it_is_back_and_no_row_lacks_features() {
    let CrashRun {
        dir,
        produced,
        avg,
        log,
    } = run_through_a_redis_crash("wait");
    let out = dir.path().join("out");
    assert!(
        log.contains("feature store unavailable"),
        "the outage was seen: {log}"
    );
    assert_exactly_once(&out, &produced);
    let rows = scored_rows(&out);
    let mut checked = 0;
    for (acct, value, unavailable, _) in &rows {
        assert!(!unavailable, "{acct} scored while Redis was down");
        match avg.get(acct) {
            Some(want) => {
                assert_eq!(value, &Some(*want), "{acct}: the feature Redis holds");
                checked += 1;
            }
            None => assert_eq!(value, &None, "{acct} is unknown to the store"),
        }
    }
    assert!(checked > 24_000, "{checked} rows checked");
}

#[test]
fn with_defaults_rows_scored_during_a_redis_crash_are_flagged_not_zeroed() {
    let CrashRun {
        dir, produced, avg, ..
    } = run_through_a_redis_crash("defaults");
    let out = dir.path().join("out");
    assert_exactly_once(&out, &produced);
    let rows = scored_rows(&out);
    let flagged: Vec<_> = rows.iter().filter(|r| r.2).collect();
    assert!(
        !flagged.is_empty(),
        "some rows were scored during the outage"
    );
    for (acct, value, _, _) in &flagged {
        assert_eq!(
            value, &None,
            "{acct}: no default configured, so null, never 0"
        );
    }
    for (acct, value, unavailable, id) in &rows {
        // events produced after Redis came back have their features again
        if id.as_str() >= "evt-000002000000" {
            assert!(!unavailable, "{id} scored after Redis was back");
        }
        if !unavailable && let Some(want) = avg.get(acct) {
            assert_eq!(value, &Some(*want), "{acct}");
        }
    }
    let with_features = rows.iter().filter(|r| !r.2).count();
    assert!(with_features > 14_000, "{with_features} rows with features");
}

#[test]
fn validate_names_model_features_the_store_does_not_declare() {
    let dir = tempfile::tempdir().expect("tmp");
    let job = redis_job(
        dir.path(),
        "127.0.0.1:9",
        &dir.path().join("out"),
        "redis://:s3cret@127.0.0.1:9/0",
        "wait",
        "redis-features",
    );
    let toml = std::fs::read_to_string(&job)
        .expect("job")
        .replace(&columns_toml(""), &columns_toml("chargeback_rate_90d"));
    std::fs::write(&job, toml).expect("job");
    let o = run(bin().arg("validate").arg(&job));
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(!o.status.success(), "{all}");
    assert!(
        all.contains("features.columns") && all.contains("does not provide: chargeback_rate_90d"),
        "{all}"
    );
    assert!(!all.contains("s3cret"), "{all}");
}
