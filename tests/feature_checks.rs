//! Wrong feature-store settings fail loudly instead of scoring on nulls.
//! `validate` samples a real redis-server holding what Feast 0.67 itself
//! materialized (`tests/fixtures/feast/`) and names the project, version,
//! view, feature or type that matches nothing; while running, a feature
//! missing for every key warns, is counted, and can stop the job.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::process::*;
use common::redis_server::{RedisServer, load_feast_fixture, load_features, redis_job};
use common::tansu::{Tansu, produce_events};
use scorestream_tools::demo::generator_options;

/// The fixture's features (`fixture_info.json`), as a job declares them.
const FEAST_COLUMNS: &[(&str, &str, &str)] = &[
    ("avg_amount_30d", "float64", "account_stats"),
    ("utilization", "float32", "account_stats"),
    ("txn_count_30d", "int64", "account_stats"),
    ("failed_logins_7d", "int32", "account_stats"),
    ("home_country", "string", "account_stats"),
    ("is_verified", "bool", "account_stats"),
    ("chargeback_rate_90d", "float64", "account_risk"),
    ("risk_segment", "int64", "account_risk"),
];

/// A model package scoring the event's `amount` only, so a job can join
/// any features (the fixture's here) without the model needing them.
fn amount_model(dir: &Path) -> PathBuf {
    let from = repo().join("tests/fixtures/models/logreg");
    let to = dir.join("model");
    std::fs::create_dir_all(&to).expect("model dir");
    let manifest = std::fs::read_to_string(from.join("manifest.json")).expect("manifest");
    let mut m: serde_json::Value = serde_json::from_str(&manifest).expect("json");
    for input in m["inputs"].as_array_mut().expect("inputs") {
        input["column"] = "amount".into();
    }
    std::fs::write(to.join("manifest.json"), m.to_string()).expect("manifest");
    std::fs::copy(from.join("model.safetensors"), to.join("model.safetensors")).expect("weights");
    to
}

/// The demo job reading the Feast fixture's features from `url`, with
/// `store` settings and `columns` as given.
fn feast_job(dir: &Path, url: &str, store: &str, columns: &[(&str, &str, &str)]) -> PathBuf {
    let job = job_file(
        dir,
        "127.0.0.1:9",
        &dir.join("out"),
        "feature-checks",
        TANSU_SESSION,
    );
    let text = std::fs::read_to_string(&job).expect("job");
    let store_line = text
        .lines()
        .find(|l| l.starts_with("store = "))
        .expect("store line");
    let demo_model = format!("{:?}", repo().join("jobs/demo/model"));
    let mut text = text
        .replace(
            store_line,
            &format!(
                "store = {{ kind = \"redis\", url = \"{url}\", layout = \"feast\", {store} }}"
            ),
        )
        .replace(&demo_model, &format!("{:?}", amount_model(dir)));
    for (name, kind, view) in columns {
        text.push_str(&format!(
            "\n[[features.columns]]\nname = \"{name}\"\ntype = \"{kind}\"\nview = \"{view}\"\n"
        ));
    }
    std::fs::write(&job, text).expect("job");
    job
}

const RIGHT: &str = "project = \"scorestream_fixture\", entity_key_serialization_version = 3";

/// `scorestream validate` of a Feast job against the fixture: (success,
/// everything it printed).
fn validate(store: &str, columns: &[(&str, &str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let redis = RedisServer::start(&dir.path().join("redis"));
    load_feast_fixture(&redis);
    let job = feast_job(dir.path(), &redis.url(), store, columns);
    let o = run(bin().arg("validate").arg(&job));
    (o.status.success(), shown(&o))
}

fn shown(o: &Output) -> String {
    format!("{}{}", text(&o.stdout), text(&o.stderr))
}

#[test]
fn validate_accepts_a_feast_job_that_matches_what_feast_wrote_and_says_what_it_sampled() {
    let (ok, all) = validate(RIGHT, FEAST_COLUMNS);
    assert!(ok, "{all}");
    assert!(
        all.contains("20 sampled keys of Feast project `scorestream_fixture` hold every declared view and feature"),
        "{all}"
    );
}

#[test]
fn validate_names_a_wrong_feast_project_and_the_projects_redis_holds() {
    let (ok, all) = validate(
        "project = \"scorestream_fixtures\", entity_key_serialization_version = 3",
        FEAST_COLUMNS,
    );
    assert!(!ok, "{all}");
    assert!(
        all.contains("features.store.project: no key in Redis"),
        "{all}"
    );
    assert!(all.contains("project `scorestream_fixtures`"), "{all}");
    assert!(
        all.contains("it holds Feast keys of project `scorestream_fixture` (join key `account_id`, entity_key_serialization_version 3)"),
        "{all}"
    );
}

#[test]
fn validate_names_a_wrong_entity_key_serialization_version() {
    let (ok, all) = validate(
        "project = \"scorestream_fixture\", entity_key_serialization_version = 2",
        FEAST_COLUMNS,
    );
    assert!(!ok, "{all}");
    assert!(
        all.contains("features.store.entity_key_serialization_version: no key in Redis"),
        "{all}"
    );
    assert!(
        all.contains("entity_key_serialization_version 2")
            && all.contains("entity_key_serialization_version 3)"),
        "what was tried and what Redis holds: {all}"
    );
}

#[test]
fn validate_names_a_misspelled_feature_view_and_the_views_there_are() {
    let mut columns = FEAST_COLUMNS.to_vec();
    columns[6].2 = "account_risks";
    columns[7].2 = "account_risks";
    let (ok, all) = validate(RIGHT, &columns);
    assert!(!ok, "{all}");
    assert!(
        all.contains(
            "features.columns[6].view: feature view `account_risks` is in none of 20 sampled keys"
        ),
        "{all}"
    );
    assert!(
        all.contains("the views there are: account_risk, account_stats"),
        "{all}"
    );
    assert!(
        !all.contains("columns[7]"),
        "one problem per view, not per feature: {all}"
    );
}

#[test]
fn validate_names_a_misspelled_feature() {
    let mut columns = FEAST_COLUMNS.to_vec();
    columns[0].0 = "avg_amount_30";
    let (ok, all) = validate(RIGHT, &columns);
    assert!(!ok, "{all}");
    assert!(
        all.contains("features.columns[0].name: feature `avg_amount_30` of view `account_stats` is in none of 20 sampled keys"),
        "{all}"
    );
}

#[test]
fn validate_names_a_declared_type_that_feast_does_not_store() {
    let mut columns = FEAST_COLUMNS.to_vec();
    columns[5].1 = "int64";
    let (ok, all) = validate(RIGHT, &columns);
    assert!(!ok, "{all}");
    assert!(
        all.contains("features.columns[5].type: feature `is_verified` of view `account_stats` is declared int64, but Feast stores bool"),
        "{all}"
    );
}

#[test]
fn validate_names_an_unreachable_store_without_its_password_and_offline_skips_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let job = feast_job(
        dir.path(),
        "redis://:pw-never-shown@127.0.0.1:9/0",
        RIGHT,
        FEAST_COLUMNS,
    );
    let o = run(bin().arg("validate").arg(&job));
    let all = shown(&o);
    assert!(!o.status.success(), "{all}");
    assert!(
        all.contains("features.store.url") && all.contains("127.0.0.1:9"),
        "{all}"
    );
    assert!(all.contains("--offline"), "{all}");
    assert!(!all.contains("pw-never-shown"), "{all}");
    let o = run(bin().args(["validate", "--offline"]).arg(&job));
    assert!(o.status.success(), "{}", shown(&o));
}

// ---- the hash layout, and at run time ----

const TOPIC: &str = "transactions";

/// The demo job on Redis hashes (every demo feature loaded), declaring one
/// more feature no hash has, with `missing_check` settings appended.
fn job_with_a_feature_no_hash_has(
    dir: &Path,
    brokers: &str,
    redis: &RedisServer,
    check: &str,
) -> PathBuf {
    let job = redis_job(
        dir,
        brokers,
        &dir.join("out"),
        &redis.url(),
        "wait",
        "feature-checks",
    );
    let text = std::fs::read_to_string(&job).expect("job")
        + "\n[[features.columns]]\nname = \"avg_amount_7d\"\ntype = \"float64\"\n"
        + check;
    std::fs::write(&job, text).expect("job");
    job
}

#[test]
fn validate_names_a_hash_field_no_sampled_hash_has() {
    let dir = tempfile::tempdir().expect("tmp");
    let redis = RedisServer::start(&dir.path().join("redis"));
    load_features(&redis);
    let job = job_with_a_feature_no_hash_has(dir.path(), "127.0.0.1:9", &redis, "");
    let o = run(bin().arg("validate").arg(&job));
    let all = shown(&o);
    assert!(!o.status.success(), "{all}");
    assert!(
        all.contains("none of 32 sampled hashes `acct:{key}` has a field `avg_amount_7d`"),
        "{all}"
    );
}

#[test]
fn a_feature_missing_for_every_key_is_warned_about_once_and_counted_by_view_and_feature() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 2);
    let dir = tempfile::tempdir().expect("tmp");
    let redis = RedisServer::start(&dir.path().join("redis"));
    load_features(&redis);
    let job = job_with_a_feature_no_hash_has(dir.path(), &broker.brokers, &redis, "");
    produce_events(&broker.brokers, TOPIC, generator_options(83), 3_000);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let log = dir.path().join("run.log");
    let mut child = spawn_run(
        &job,
        &["--exit-on-idle", "6s", "--metrics-listen", &listen],
        &log,
    );
    wait_for("all events committed", Duration::from_secs(60), || {
        committed_messages(&dir.path().join("out")) >= 3_000
    });
    let metrics = scrape(&listen);
    wait_success(&mut child, &log, Duration::from_secs(60));
    let logged = std::fs::read_to_string(&log).expect("log");
    let warned = "feature `avg_amount_7d` had no value for";
    assert_eq!(
        logged.matches(warned).count(),
        1,
        "once per window: {logged}"
    );
    assert!(
        !logged.contains("feature `avg_amount_30d` had no value"),
        "features Redis holds are not warned about: {logged}"
    );
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("scorestream_feature_missing_total{")
                && l.contains("feature=\"avg_amount_7d\"")
        })
        .unwrap_or_else(|| panic!("no missing-feature counter: {metrics}"));
    let count: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("value");
    let scored: usize = common::scored_ids(&dir.path().join("out")).values().sum();
    assert!(scored > 2_900, "{scored} rows scored");
    assert_eq!(count, scored as f64, "every row scored lacked it: {line}");
    assert!(line.contains("job=\"fraud-demo\""), "{line}");
}

#[test]
fn with_action_fail_a_feature_missing_for_every_key_stops_the_job_naming_it() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 2);
    let dir = tempfile::tempdir().expect("tmp");
    let redis = RedisServer::start(&dir.path().join("redis"));
    load_features(&redis);
    let job = job_with_a_feature_no_hash_has(
        dir.path(),
        &broker.brokers,
        &redis,
        "\n[features.missing_check]\naction = \"fail\"\nmin_rows = 500\n",
    );
    produce_events(&broker.brokers, TOPIC, generator_options(84), 3_000);
    let o = run(bin().arg("run").arg(&job).args(["--exit-on-idle", "6s"]));
    let all = shown(&o);
    assert!(!o.status.success(), "{all}");
    assert!(
        all.contains("no value for `avg_amount_7d`")
            && all.contains("missing_check.action is \"fail\""),
        "{all}"
    );
    assert!(
        !all.contains("`avg_amount_30d` ("),
        "only the missing feature is named: {all}"
    );
}

/// `/metrics` of a running job.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).expect("metrics listener");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: scorestream\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    c.read_to_string(&mut response).expect("response");
    response
}

#[test]
fn a_dry_run_fails_the_feature_store_check_naming_what_matches_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let redis = RedisServer::start(&dir.path().join("redis"));
    load_feast_fixture(&redis);
    let token = "feature-checks-token-51c7";
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("{token}\n")).expect("tokens");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let log = std::fs::File::create(dir.path().join("serve.log")).expect("log");
    let mut child = bin()
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        // The job's model and output are in this test's directory.
        .arg("--base-dir")
        .arg(dir.path())
        .args(["--model-root", "/", "--input-root", "/"])
        .arg("--token-file")
        .arg(&tokens)
        .env_remove("SCORESTREAM_API_TOKENS")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("serve");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let base = format!("http://127.0.0.1:{port}");
    wait_for("the service", Duration::from_secs(60), || {
        agent
            .get(format!("{base}/readyz"))
            .call()
            .is_ok_and(|r| r.status().as_u16() == 200)
    });
    let mut columns = FEAST_COLUMNS.to_vec();
    columns[0].0 = "avg_amount_30";
    let job = feast_job(dir.path(), &redis.url(), RIGHT, &columns);
    let body = std::fs::read_to_string(job).expect("job");
    let mut r = agent
        .post(format!("{base}/v1/jobs/dry-run"))
        .header("Authorization", &format!("Bearer {token}"))
        .send(body.as_str())
        .expect("dry run");
    let answer: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().expect("body")).expect("json");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answer["valid"], false, "{answer}");
    let check = answer["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["check"] == "features.store"))
        .unwrap_or_else(|| panic!("no features.store check: {answer}"));
    assert_eq!(check["ok"], false, "{answer}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap_or("")
            .contains("features.columns[0].name: feature `avg_amount_30` of view `account_stats`"),
        "{answer}"
    );
}
