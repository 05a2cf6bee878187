//! `scorestream serve` end to end, driven over HTTP with a real client,
//! against a real Kafka-protocol broker (tansu) and a real redis-server:
//! dry-run, submit, counters grow, swap the model version, stop (drain and
//! commit), start again, restart the whole service, and the job resumes on
//! its pinned version with every event scored exactly once.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::process::*;
use common::redis_server::{RedisServer, load_features, redis_job};
use common::tansu::{Tansu, produce_events};
use common::*;
use scorestream_tools::demo::generator_options;
use scorestream_tools::synth::GenOptions;
use serde_json::Value;

const TOPIC: &str = "transactions";
const TOKEN: &str = "svc-test-token-6f1d2b9a";
const SECRET: &str = "sasl-pass-never-shown-93b1";
const JOB: &str = "svc-fraud";

/// A running `scorestream serve` and a client for its API.
struct Service {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

impl Service {
    fn start(data: &Path, tokens: &Path, log: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log");
        // Jobs read the repository's demo files and this test's model
        // registry, and write beside the data directory, in `out`.
        let test_dir = data.parent().expect("the data dir has a parent");
        std::fs::create_dir_all(test_dir.join("out")).expect("out");
        let child = bin()
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .arg("--base-dir")
            .arg(repo())
            .arg("--model-root")
            .arg(repo())
            .arg("--model-root")
            .arg(test_dir)
            .arg("--output-root")
            .arg(test_dir.join("out"))
            .arg("--token-file")
            .arg(tokens)
            .env("RUST_LOG", "info,librdkafka=warn")
            .env_remove("SCORESTREAM_API_TOKENS")
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("start scorestream serve");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let s = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            agent,
        };
        wait_for("the service to be ready", Duration::from_secs(60), || {
            s.try_get("/readyz").is_some_and(|(code, _)| code == 200)
        });
        s
    }

    fn try_get(&self, path: &str) -> Option<(u16, Value)> {
        let mut r = self.agent.get(format!("{}{path}", self.base)).call().ok()?;
        let text = r.body_mut().read_to_string().ok()?;
        Some((
            r.status().as_u16(),
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.try_get(path)
            .unwrap_or_else(|| panic!("GET {path} failed"))
    }

    fn send(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {TOKEN}");
        let sent = match method {
            "POST" => self
                .agent
                .post(url)
                .header("Authorization", &auth)
                .send(body),
            "PUT" => self
                .agent
                .put(url)
                .header("Authorization", &auth)
                .send(body),
            "DELETE" => self.agent.delete(url).header("Authorization", &auth).call(),
            other => panic!("method {other}"),
        };
        let mut r = sent.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let text = r.body_mut().read_to_string().expect("body");
        (
            r.status().as_u16(),
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn job(&self) -> Value {
        let (code, status) = self.get(&format!("/v1/jobs/{JOB}"));
        assert_eq!(code, 200, "{status}");
        status
    }

    /// Waits until the job has committed `n` messages since it started
    /// (scored rows plus dead letters), checking it never fails.
    fn wait_committed(&self, n: u64, what: &str) -> Value {
        let start = Instant::now();
        loop {
            let s = self.job();
            assert_ne!(s["state"], "failed", "{what}: {s}");
            let done = s["counters"]["messages_committed"].as_u64().unwrap_or(0);
            assert!(done <= n, "{what}: committed {done} > {n}: {s}");
            if done == n {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{what}: timed out at {done}/{n}: {s}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SIGTERM: every job drains and commits, then the service exits 0.
    fn terminate(mut self, log: &Path) {
        run(std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "service did not stop"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            status.success(),
            "{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts a dry run's check `name` failed, naming `what` in its detail.
fn assert_failed_check(dry: &Value, name: &str, what: &str) {
    let check = dry["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["check"] == name))
        .unwrap_or_else(|| panic!("no check {name}: {dry}"));
    assert_eq!(check["ok"], false, "{dry}");
    assert!(
        check["detail"].as_str().unwrap_or("").contains(what),
        "{name} should name {what}: {dry}"
    );
}

fn phase(seed: u64, first_seq: u64) -> GenOptions {
    GenOptions {
        first_seq,
        ..generator_options(seed)
    }
}

fn job_config(dir: &Path, brokers: &str, out: &Path, redis: &str, registry: &Path) -> String {
    let job = redis_job(dir, brokers, out, redis, "wait", "svc-group");
    let model = format!("path = {:?}", repo().join("jobs/demo/model"));
    let text = std::fs::read_to_string(job).expect("job");
    assert!(text.contains(&model), "{text}");
    text.replace(&model, &format!("path = {registry:?}"))
        .replace("name = \"fraud-demo\"", &format!("name = \"{JOB}\""))
        .replace(
            "[source.options]",
            &format!("[source.options]\n\"sasl.password\" = \"{SECRET}\""),
        )
        // A KS threshold of 0 breaches in every window: alerts for the status.
        + &format!(
            "\n[drift]\nprofile = {:?}\nwindow = {{ rows = 1000 }}\nthresholds = {{ ks = 0.0 }}\n",
            repo().join("jobs/demo/drift-profile.json")
        )
}

#[test]
fn jobs_are_submitted_watched_swapped_stopped_and_resumed_over_http_without_loss() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 3);
    let dir = tempfile::tempdir().expect("tmp");
    let redis = RedisServer::start(dir.path());
    load_features(&redis);
    let registry = dir.path().join("models");
    publish(&registry, "v1", "1", false);
    publish(&registry, "v2", "2", false);
    let out = dir.path().join("out");
    let config = job_config(dir.path(), &broker.brokers, &out, &redis.url(), &registry);
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("# test\n{TOKEN}\n")).expect("tokens");
    let (data, log) = (dir.path().join("data"), dir.path().join("serve.log"));

    let svc = Service::start(&data, &tokens, &log);
    let (code, doc) = svc.get("/openapi.json");
    assert_eq!((code, doc["openapi"].as_str()), (200, Some("3.1.0")));

    // Dry runs: a topic that does not exist is named; the real job passes
    // every check (topic, Redis, model inputs, output).
    let (code, dry) = svc.send(
        "POST",
        "/v1/jobs/dry-run",
        &config.replace(
            "topics = [\"transactions\"]",
            "topics = [\"no-such-topic\"]",
        ),
    );
    assert_eq!(code, 200, "{dry}");
    assert_eq!(dry["valid"], false, "{dry}");
    assert_failed_check(&dry, "source.topics", "no-such-topic");
    let (code, dry) = svc.send("POST", "/v1/jobs/dry-run", &config);
    assert_eq!((code, &dry["valid"]), (200, &Value::Bool(true)), "{dry}");
    assert_eq!(dry["checks"].as_array().map(Vec::len), Some(4), "{dry}");
    assert!(!dry.to_string().contains(SECRET));
    // A feature store that does not answer is named, its password not.
    let (code, dry) = svc.send(
        "POST",
        "/v1/jobs/dry-run",
        &config.replace(&redis.url(), "redis://:redis-pw-never-shown@127.0.0.1:9/0"),
    );
    assert_eq!((code, &dry["valid"]), (200, &Value::Bool(false)), "{dry}");
    assert_failed_check(&dry, "features.store", "127.0.0.1:9");
    assert!(!dry.to_string().contains("redis-pw-never-shown"), "{dry}");
    assert_eq!(
        svc.get("/v1/jobs").1["jobs"],
        Value::Array(vec![]),
        "dry runs start nothing"
    );

    // Submit: it runs on the registry's highest version.
    let (code, created) = svc.send("POST", "/v1/jobs", &config);
    assert_eq!(code, 201, "{created}");
    assert!(!created.to_string().contains(SECRET), "{created}");
    let mut produced = produce_events(&broker.brokers, TOPIC, phase(91, 0), 3_000);
    let s = svc.wait_committed(3_000, "first events");
    assert_eq!(s["state"], "running");
    assert_eq!(s["model"]["in_use"][0]["version"], "2", "{s}");
    assert_eq!(s["counters"]["events_in"], 3_000, "{s}");
    assert!(
        s["counters"]["rows_scored"].as_u64().unwrap_or(0) > 2_500,
        "{s}"
    );
    assert!(s["partitions_assigned"].as_i64().unwrap_or(0) > 0, "{s}");
    assert!(
        s["config"].as_str().unwrap_or("").contains("<redacted>"),
        "{s}"
    );
    wait_for(
        "drift alerts in the status",
        Duration::from_secs(30),
        || {
            svc.job()["drift_alerts"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        },
    );
    let s = svc.job();
    let alerts = s["drift_alerts"].as_array().expect("alerts");
    assert!(
        alerts.len() <= 20,
        "the status keeps the newest alerts only: {s}"
    );
    assert_eq!(
        (&alerts[0]["job"], &alerts[0]["statistic"]),
        (&Value::from(JOB), &Value::from("ks")),
        "{s}"
    );
    let (_, listed) = svc.get("/v1/jobs");
    assert_eq!(listed["jobs"][0]["name"], JOB);
    assert!(
        listed["jobs"][0].get("config").is_none(),
        "lists stay short"
    );

    // Counters and metrics grow as events arrive.
    let more = produce_events(&broker.brokers, TOPIC, phase(92, 3_000), 1_000);
    produced.extend(more);
    svc.wait_committed(4_000, "more events");
    // librdkafka reports watermarks every few seconds: with everything
    // committed, the lag it implies is zero.
    wait_for(
        "the consumer lag in the status",
        Duration::from_secs(30),
        || svc.job()["lag_messages"] == 0,
    );
    let metrics = svc
        .agent
        .get(format!("{}/metrics", svc.base))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("scorestream_events_total{")
                && l.contains(&format!("job=\"{JOB}\""))),
        "{metrics}"
    );

    // Swap to v1 by name (a rollback): the next batches score with it.
    let (code, bad) = svc.send(
        "PUT",
        &format!("/v1/jobs/{JOB}/model"),
        r#"{"version": "v9"}"#,
    );
    assert_eq!(code, 422, "{bad}");
    assert!(
        bad["error"].as_str().unwrap_or("").contains("v1, v2"),
        "{bad}"
    );
    let (code, swapped) = svc.send(
        "PUT",
        &format!("/v1/jobs/{JOB}/model"),
        r#"{"version": "v1"}"#,
    );
    assert_eq!(code, 200, "{swapped}");
    assert_eq!(swapped["model"]["in_use"][0]["version"], "1", "{swapped}");
    assert_eq!(swapped["model"]["pinned_version"], "v1", "{swapped}");
    let after_swap = produce_events(&broker.brokers, TOPIC, phase(93, 4_000), 2_000);
    produced.extend(after_swap.iter().cloned());
    svc.wait_committed(6_000, "events after the swap");

    // Stop: drained and committed, in Parquet and in Kafka.
    let (code, stopped) = svc.send("POST", &format!("/v1/jobs/{JOB}/stop"), "");
    assert_eq!(code, 200, "{stopped}");
    assert_eq!(
        (stopped["state"].as_str(), stopped["desired"].as_str()),
        (Some("stopped"), Some("stopped")),
        "{stopped}"
    );
    assert_eq!(committed_messages(&out), 6_000);
    assert_eq!(
        committed_total(&broker.brokers, "svc-group", TOPIC, 3),
        6_000
    );

    // Events that arrive while it is stopped wait in Kafka; start resumes.
    produced.extend(produce_events(
        &broker.brokers,
        TOPIC,
        phase(94, 6_000),
        1_500,
    ));
    let (code, started) = svc.send("POST", &format!("/v1/jobs/{JOB}/start"), "");
    assert_eq!(code, 202, "{started}");
    let s = svc.wait_committed(1_500, "events while stopped");
    assert_eq!(s["model"]["in_use"][0]["version"], "1", "still pinned: {s}");

    // Restart the whole service; events produced meanwhile are not lost and
    // the job comes back by itself, on the version it was pinned to.
    svc.terminate(&log);
    let last = produce_events(&broker.brokers, TOPIC, phase(95, 7_500), 2_500);
    produced.extend(last.iter().cloned());
    let svc = Service::start(&data, &tokens, &log);
    let s = svc.wait_committed(2_500, "events while the service was down");
    assert_eq!(s["desired"], "running");
    assert_eq!(s["model"]["pinned_version"], "v1", "{s}");
    assert_eq!(s["model"]["in_use"][0]["version"], "1", "{s}");
    let (code, stopped) = svc.send("POST", &format!("/v1/jobs/{JOB}/stop"), "");
    assert_eq!(code, 200, "{stopped}");
    svc.terminate(&log);

    assert_exactly_once(&out, &produced);
    let versions = versions_by_event(&out);
    for (id, _) in after_swap.iter().chain(&last) {
        if let Some(v) = versions.get(id) {
            assert_eq!(v, "1", "event {id} was scored after the swap to v1");
        }
    }
    let logged = std::fs::read_to_string(&log).expect("log");
    for secret in [TOKEN, SECRET] {
        assert!(!logged.contains(secret), "the service log shows {secret}");
    }
    assert!(logged.contains("resuming a persisted job"), "{logged}");
}

#[test]
fn the_service_refuses_to_start_without_tokens_or_on_a_data_dir_in_use() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = run(bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("SCORESTREAM_API_TOKENS"));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("--token-file") && err.contains("SCORESTREAM_API_TOKENS"),
        "{err}"
    );

    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).expect("tokens");
    let log = dir.path().join("serve.log");
    let _first = Service::start(&dir.path().join("data"), &tokens, &log);
    let second = run(bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(&tokens)
        .arg("--data-dir")
        .arg(dir.path().join("data")));
    assert!(!second.status.success());
    assert!(
        text(&second.stderr).contains("another scorestream service"),
        "{}",
        text(&second.stderr)
    );
}
