//! The compose stack (`docker-compose.yml`): the file parses with
//! `docker-compose config` (Debian's docker-compose, which needs no Docker
//! engine) and wires what the README promises: Kafka in KRaft mode with the
//! job's topic, Redis seeded with the demo's features, `scorestream serve`
//! hosting the job it mounts, replicas that can scale, and Prometheus
//! scraping every member. The seed script is run against a real
//! redis-server, and the compose job's own feature store must read back
//! exactly what the demo's feature file holds.
//!
//! Without docker-compose (or promtool) these checks fail under CI (`CI`
//! set; `.ci/run` installs both) and skip loudly elsewhere.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use arrow::array::StringArray;
use common::process::{repo, text};
use common::redis_server::RedisServer;
use scorestream_operators::features::{FeatureStoreConfig, build_store};
use scorestream_pipeline::config::{JobConfig, load_file};
use scorestream_pipeline::runtime::Job;
use serde_json::Value;

/// The token the config is rendered with, and the placeholder the file
/// falls back to (the README documents it). `serve` refuses tokens shorter
/// than 16 characters.
const TOKEN: &str = "compose-test-token";
const PLACEHOLDER_TOKEN: &str = "change-me-local-only";

/// Whether `tool args` runs. When it does not, the test fails under CI and
/// otherwise prints a loud SKIP and the caller returns.
fn have(tool: &str, args: &[&str], package: &str) -> bool {
    let why = match Command::new(tool).args(args).output() {
        Ok(o) if o.status.success() => return true,
        Ok(o) => format!("`{tool} {}` failed: {}", args.join(" "), text(&o.stderr)),
        Err(e) => format!("`{tool}` cannot run: {e}"),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "{why}\nCI must have it: apt-get install {package} (what .ci/run does)"
    );
    eprintln!(
        "\n##########\n# SKIP: {why}\n# Install it (apt-get install {package}) to run this test.\n##########\n"
    );
    false
}

fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what} cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// YAML text as JSON, through PyYAML (docker-compose itself is Python on
/// PyYAML, so wherever it is installed this is too).
fn yaml_to_json(yaml: &[u8]) -> Value {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml)
        .expect("write yaml");
    let out = child.wait_with_output().expect("python3 finishes");
    assert!(
        out.status.success(),
        "PyYAML could not read it: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// `docker-compose config`: the file with variables substituted, defaults
/// filled in and paths made absolute. `token` is SCORESTREAM_API_TOKENS, or
/// unset.
fn compose_config(token: Option<&str>) -> Value {
    let mut cmd = Command::new("docker-compose");
    cmd.arg("-f")
        .arg(repo().join("docker-compose.yml"))
        .arg("config")
        .env_remove("RUST_LOG")
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROFILES");
    match token {
        Some(t) => cmd.env("SCORESTREAM_API_TOKENS", t),
        None => cmd.env_remove("SCORESTREAM_API_TOKENS"),
    };
    let out = run_ok(&mut cmd, "docker-compose config");
    yaml_to_json(&out.stdout)
}

/// A scalar as text (the rendered file keeps `6` a number, `"6"` a string).
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A command or healthcheck: a list, or one string split on spaces.
fn words(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(scalar).collect(),
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Null => Vec::new(),
        other => panic!("not a command: {other}"),
    }
}

/// The word after `flag` in a command.
fn flag<'a>(cmd: &'a [String], flag: &str) -> Option<&'a str> {
    let at = cmd.iter().position(|w| w == flag)?;
    cmd.get(at + 1).map(String::as_str)
}

fn env(service: &Value, name: &str) -> Option<String> {
    match &service["environment"] {
        Value::Object(m) => m.get(name).map(scalar),
        Value::Array(a) => a.iter().find_map(|e| {
            let e = scalar(e);
            let (k, v) = e.split_once('=')?;
            (k == name).then(|| v.to_owned())
        }),
        _ => None,
    }
}

/// One mount: its source (a host path or a volume name, `None` for an
/// anonymous volume), where it is mounted, and whether read-only.
#[derive(Debug, Clone, PartialEq)]
struct Mount {
    source: Option<String>,
    target: String,
    read_only: bool,
}

fn mounts(service: &Value) -> Vec<Mount> {
    let Some(list) = service["volumes"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .map(|m| match m {
            Value::String(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                match parts.as_slice() {
                    [target] => Mount {
                        source: None,
                        target: (*target).to_owned(),
                        read_only: false,
                    },
                    [source, target] | [source, target, _] => Mount {
                        source: Some((*source).to_owned()),
                        target: (*target).to_owned(),
                        read_only: parts
                            .get(2)
                            .is_some_and(|o| o.split(',').any(|o| o == "ro")),
                    },
                    _ => panic!("a volume I cannot read: {s}"),
                }
            }
            Value::Object(o) => Mount {
                source: o.get("source").and_then(Value::as_str).map(str::to_owned),
                target: scalar(&o["target"]),
                read_only: o.get("read_only").and_then(Value::as_bool) == Some(true),
            },
            other => panic!("a volume I cannot read: {other}"),
        })
        .collect()
}

fn mount_at(service: &Value, target: &str) -> Option<Mount> {
    mounts(service).into_iter().find(|m| m.target == target)
}

/// (published host port, container port) of each published port.
fn published_ports(service: &Value) -> Vec<(String, String)> {
    let Some(list) = service["ports"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|p| match p {
            Value::Object(o) => o
                .get("published")
                .map(|h| (scalar(h), scalar(&o["target"]))),
            Value::String(s) => {
                let (host, container) = s.rsplit_once(':')?;
                Some((host.rsplit(':').next()?.to_owned(), container.to_owned()))
            }
            other => Some((String::new(), scalar(other))),
        })
        .collect()
}

fn depends_on_condition(service: &Value, on: &str) -> Option<String> {
    match &service["depends_on"] {
        Value::Object(m) => m.get(on).map(|d| {
            d["condition"]
                .as_str()
                .unwrap_or("service_started")
                .to_owned()
        }),
        Value::Array(a) => a
            .iter()
            .any(|d| d.as_str() == Some(on))
            .then(|| "service_started".to_owned()),
        _ => None,
    }
}

fn aliases(service: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(nets) = service["networks"].as_object() {
        for n in nets.values() {
            for a in n["aliases"].as_array().into_iter().flatten() {
                out.insert(scalar(a));
            }
        }
    }
    out
}

/// A path inside a container, through the service's bind mounts, as the
/// host path it is.
fn host_path(service: &Value, inside: &str) -> Option<PathBuf> {
    mounts(service).into_iter().find_map(|m| {
        // Bind mounts only (a host path, not a volume name).
        let source = PathBuf::from(m.source?);
        let rest = Path::new(inside).strip_prefix(&m.target).ok()?;
        match source.is_absolute() {
            false => None,
            // The mount is the file itself (`join("")` would add a slash).
            true if rest.as_os_str().is_empty() => Some(source),
            true => Some(source.join(rest)),
        }
    })
}

fn named_volumes(config: &Value) -> BTreeSet<String> {
    config["volumes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The rendered file, or `None` (after a loud SKIP) without docker-compose.
fn stack() -> Option<Value> {
    (have("docker-compose", &["version"], "docker-compose")
        && have("python3", &["-c", "import yaml"], "python3-yaml"))
    .then(|| compose_config(Some(TOKEN)))
}

/// The job `scorestream serve --submit`s, read from the repository through
/// the service's mounts, with the command it came from.
fn submitted_job(config: &Value) -> (JobConfig, Vec<String>) {
    let serve = &config["services"]["scorestream"];
    let cmd = words(&serve["command"]);
    let submit = flag(&cmd, "--submit").expect("--submit");
    let file = host_path(serve, submit).expect("the submitted job is mounted");
    (load_file(&file).expect("the compose job loads"), cmd)
}

#[test]
fn compose_file_has_every_service_and_a_placeholder_token() {
    let Some(config) = stack() else { return };
    let names: BTreeSet<&str> = config["services"]
        .as_object()
        .expect("services")
        .keys()
        .map(String::as_str)
        .collect();
    let expected = [
        "kafka",
        "kafka-init",
        "redis",
        "redis-seed",
        "scorestream",
        "scorer",
        "prometheus",
    ];
    assert_eq!(names, BTreeSet::from(expected));
    let token = |c: &Value| env(&c["services"]["scorestream"], "SCORESTREAM_API_TOKENS");
    assert_eq!(token(&config).as_deref(), Some(TOKEN));
    // Without the variable, the placeholder the README documents, long
    // enough that serve accepts it (16 characters, no whitespace).
    let placeholder = token(&compose_config(None)).expect("a default token");
    assert_eq!(placeholder, PLACEHOLDER_TOKEN);
    assert!(
        placeholder.len() >= 16 && !placeholder.contains(char::is_whitespace),
        "serve would refuse {placeholder}"
    );
}

#[test]
fn kafka_is_one_kraft_node_with_the_jobs_topic() {
    let Some(config) = stack() else { return };
    let kafka = &config["services"]["kafka"];
    let image = kafka["image"].as_str().expect("kafka image");
    assert!(image.starts_with("apache/kafka:"), "{image}");
    let roles = env(kafka, "KAFKA_PROCESS_ROLES").expect("KAFKA_PROCESS_ROLES");
    assert!(
        roles.contains("broker") && roles.contains("controller"),
        "{roles}"
    );
    assert!(env(kafka, "KAFKA_CONTROLLER_QUORUM_VOTERS").is_some());
    assert!(env(kafka, "KAFKA_CONTROLLER_LISTENER_NAMES").is_some());
    // The image formats its log directory with CLUSTER_ID, a base64 UUID.
    let id = env(kafka, "CLUSTER_ID").expect("CLUSTER_ID (the image requires it for KRaft)");
    assert!(
        id.len() == 22
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "CLUSTER_ID {id} is not a base64 UUID"
    );
    assert!(
        !words(&kafka["healthcheck"]["test"]).is_empty(),
        "no healthcheck"
    );

    // The job's topic, created with six partitions once Kafka is healthy,
    // and the job reaching Kafka where it advertises itself.
    let init = &config["services"]["kafka-init"];
    assert_eq!(init["image"].as_str(), Some(image));
    assert_eq!(
        depends_on_condition(init, "kafka").as_deref(),
        Some("service_healthy")
    );
    let cmd = words(&init["command"]);
    assert!(
        cmd[0].ends_with("/opt/kafka/bin/kafka-topics.sh"),
        "{cmd:?}"
    );
    assert!(cmd.iter().any(|w| w == "--create"), "{cmd:?}");
    assert_eq!(flag(&cmd, "--partitions"), Some("6"));
    let (job, _) = submitted_job(&config);
    assert_eq!(
        job.source.topics,
        vec![flag(&cmd, "--topic").expect("--topic").to_owned()]
    );
    let advertised = env(kafka, "KAFKA_ADVERTISED_LISTENERS").expect("advertised listeners");
    assert!(
        advertised.contains(&format!("PLAINTEXT://{}", job.source.brokers)),
        "the job's brokers {} are not advertised: {advertised}",
        job.source.brokers
    );
}

#[test]
fn redis_is_seeded_with_the_keys_the_job_reads() {
    let Some(config) = stack() else { return };
    let redis = &config["services"]["redis"];
    assert!(
        redis["image"]
            .as_str()
            .expect("image")
            .starts_with("redis:")
    );
    let check = words(&redis["healthcheck"]["test"]).join(" ");
    assert!(check.contains("redis-cli ping"), "{check}");

    let seed = &config["services"]["redis-seed"];
    assert_eq!(
        depends_on_condition(seed, "redis").as_deref(),
        Some("service_healthy")
    );
    let cmd = words(&seed["command"]).join(" ");
    assert!(
        cmd.contains("sh /scripts/features-to-redis.sh")
            && cmd.contains("redis-cli -h redis --pipe"),
        "{cmd}"
    );
    assert_eq!(
        host_path(seed, "/scripts/features-to-redis.sh"),
        Some(repo().join("scripts/features-to-redis.sh"))
    );
    assert!(cmd.contains(" /jobs/demo/features.csv"), "{cmd}");
    assert_eq!(
        host_path(seed, "/jobs/demo/features.csv"),
        Some(repo().join("jobs/demo/features.csv"))
    );

    let (job, _) = submitted_job(&config);
    let FeatureStoreConfig::Redis(store) = &job.features.store else {
        panic!("the compose job reads its features from Redis");
    };
    assert!(store.url.starts_with("redis://redis:6379"), "{}", store.url);
    let template = store.key_template.as_deref().expect("key_template");
    assert!(
        cmd.contains(&format!("-t '{template}'")),
        "the seed writes other keys than the job reads ({template}): {cmd}"
    );
}

#[test]
fn serve_hosts_the_mounted_job() {
    let Some(config) = stack() else { return };
    let serve = &config["services"]["scorestream"];
    let (job, cmd) = submitted_job(&config);
    assert_eq!(cmd.first().map(String::as_str), Some("serve"), "{cmd:?}");
    assert_eq!(flag(&cmd, "--submit"), Some("/jobs/compose/job.toml"));
    let listen = flag(&cmd, "--listen").expect("--listen");
    assert!(
        listen.starts_with("0.0.0.0:"),
        "{listen}: other containers cannot reach it"
    );
    let port = listen.rsplit(':').next().expect("port").to_owned();
    assert!(
        published_ports(serve).contains(&("8080".to_owned(), port)),
        "{:?}",
        serve["ports"]
    );
    for before in ["kafka-init", "redis-seed"] {
        assert_eq!(
            depends_on_condition(serve, before).as_deref(),
            Some("service_completed_successfully"),
            "{before}"
        );
    }

    // The jobs read-only; the data directory and the output on named volumes.
    let volumes = named_volumes(&config);
    let jobs = mount_at(serve, "/jobs").expect("jobs mounted at /jobs");
    assert!(jobs.read_only, "{jobs:?}");
    assert_eq!(jobs.source.map(PathBuf::from), Some(repo().join("jobs")));
    let data_dir = flag(&cmd, "--data-dir").expect("--data-dir");
    let data = mount_at(serve, data_dir).expect("data dir mounted");
    assert!(
        data.source.as_ref().is_some_and(|s| volumes.contains(s)),
        "the data dir must be a named volume: {data:?}"
    );
    let sink = job.sink.path.to_string();
    let out = mounts(serve)
        .into_iter()
        .find(|m| sink.starts_with(&m.target))
        .expect("the output is on a mount");
    assert!(
        out.source.as_ref().is_some_and(|s| volumes.contains(s)),
        "{out:?}"
    );

    // Relative paths in POSTed jobs resolve against the mounted jobs, and
    // the job may write only to the output volume.
    let base_dir = flag(&cmd, "--base-dir").expect("--base-dir");
    assert_eq!(host_path(serve, base_dir), Some(repo().join("jobs")));
    let output_root = flag(&cmd, "--output-root").expect("--output-root");
    assert!(
        sink.starts_with(&format!("{output_root}/")),
        "{sink} is outside --output-root {output_root}"
    );
    assert_eq!(out.target, output_root, "the output root is the volume");
    Job::build(job).expect("the compose job validates");
}

#[test]
fn scorers_scale_in_the_jobs_consumer_group() {
    let Some(config) = stack() else { return };
    let serve = &config["services"]["scorestream"];
    let scorer = &config["services"]["scorer"];
    let (job, cmd) = submitted_job(&config);
    // The same command, so the same job file and consumer group.
    assert_eq!(words(&scorer["command"]), cmd);
    assert_eq!(
        env(scorer, "SCORESTREAM_API_TOKENS").as_deref(),
        Some(TOKEN)
    );
    // The same jobs and output.
    assert_eq!(mount_at(scorer, "/jobs"), mount_at(serve, "/jobs"));
    let sink = job.sink.path.to_string();
    let out = mounts(serve)
        .into_iter()
        .find(|m| sink.starts_with(&m.target))
        .expect("output mount");
    assert_eq!(mount_at(scorer, &out.target), Some(out));
    // No host port to clash on, and a data directory each: serve locks its
    // data directory.
    assert!(published_ports(scorer).is_empty(), "{:?}", scorer["ports"]);
    let data_dir = flag(&cmd, "--data-dir").expect("--data-dir");
    let data = mount_at(scorer, data_dir).expect("scorer data dir");
    assert!(
        data.source.is_none(),
        "replicas must not share a data dir: {data:?}"
    );
    assert!(
        !aliases(serve).is_disjoint(&aliases(scorer)),
        "no network alias names every member"
    );
}

#[test]
fn prometheus_scrapes_every_member() {
    let Some(config) = stack() else { return };
    let serve = &config["services"]["scorestream"];
    let members: BTreeSet<String> = aliases(serve)
        .intersection(&aliases(&config["services"]["scorer"]))
        .cloned()
        .collect();
    let cmd = words(&serve["command"]);
    let port = flag(&cmd, "--listen")
        .and_then(|l| l.rsplit(':').next())
        .expect("port")
        .to_owned();

    let prometheus = &config["services"]["prometheus"];
    let image = prometheus["image"].as_str().expect("image");
    assert!(image.starts_with("prom/prometheus:"), "{image}");
    let file = host_path(prometheus, "/etc/prometheus/prometheus.yml").expect("config mounted");
    assert_eq!(file, repo().join("deploy/prometheus.yml"));
    let prom = yaml_to_json(&std::fs::read(&file).expect("prometheus.yml"));
    let names =
        |v: &Value| -> Vec<String> { v.as_array().into_iter().flatten().map(scalar).collect() };
    let scrapes = prom["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .any(|s| {
            let path = s["metrics_path"].as_str().unwrap_or("/metrics");
            let by_dns = s["dns_sd_configs"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|d| {
                    scalar(&d["port"]) == port
                        && names(&d["names"])
                            .iter()
                            .any(|n| members.contains(n) || n == "scorestream")
                });
            let fixed = s["static_configs"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| names(&c["targets"]).contains(&format!("scorestream:{port}")));
            path == "/metrics" && (by_dns || fixed)
        });
    assert!(
        scrapes,
        "deploy/prometheus.yml scrapes no /metrics on port {port} of scorestream or {members:?}: {prom}"
    );
    if have("promtool", &["--version"], "prometheus") {
        run_ok(
            Command::new("promtool")
                .args(["check", "config"])
                .arg(&file),
            "promtool check config",
        );
    }
}

/// The demo's feature file as (header, rows).
fn demo_features() -> (Vec<String>, Vec<Vec<String>>) {
    let csv = std::fs::read_to_string(repo().join("jobs/demo/features.csv")).expect("features");
    let mut lines = csv.lines();
    let header = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_owned)
        .collect();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    (header, rows)
}

#[test]
fn seed_script_writes_the_features_the_compose_job_reads() {
    if !have("redis-cli", &["--version"], "redis-tools") {
        return;
    }
    let mut job = load_file(&repo().join("jobs/compose/job.toml")).expect("compose job");
    let tmp = tempfile::tempdir().expect("tempdir");
    let redis = RedisServer::start(&tmp.path().join("redis"));
    let mut c = redis.client().get_connection().expect("connection");
    // Durability is not under test: without a sync per write the seed takes
    // a second, not twenty.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendfsync")
        .arg("no")
        .query::<()>(&mut c)
        .expect("config set");
    let FeatureStoreConfig::Redis(store) = &mut job.features.store else {
        panic!("the compose job reads features from Redis");
    };
    store.url = redis.url();
    let template = store.key_template.clone().expect("key_template");

    // As the redis-seed service runs it.
    let resp = run_ok(
        Command::new("sh")
            .arg(repo().join("scripts/features-to-redis.sh"))
            .args(["-k", "account_id", "-t", &template])
            .arg(repo().join("jobs/demo/features.csv")),
        "features-to-redis.sh",
    )
    .stdout;
    let piped = redis_pipe(redis.port, &resp);
    assert!(
        text(&piped.stdout).contains("errors: 0"),
        "{}",
        text(&piped.stdout)
    );

    // One hash per account, nothing else (no temporary key left), each
    // exactly its CSV row: a field per feature, the text as written.
    let (header, rows) = demo_features();
    assert_eq!(header[0], "account_id");
    let keys: usize = redis::cmd("DBSIZE").query(&mut c).expect("dbsize");
    assert_eq!(keys, rows.len());
    for row in [&rows[0], &rows[rows.len() / 2], &rows[rows.len() - 1]] {
        let key = template.replace("{key}", &row[0]);
        let hash: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query(&mut c)
            .expect("hgetall");
        let expected: HashMap<String, String> = header[1..]
            .iter()
            .cloned()
            .zip(row[1..].iter().cloned())
            .collect();
        assert_eq!(hash, expected, "{key}");
    }

    // What the job's Redis store reads is what the file store reads from the
    // CSV (same columns and types), value for value, for every account.
    let mut from_file = load_file(&repo().join("jobs/demo/job.toml"))
        .expect("demo job")
        .features;
    assert!(matches!(from_file.store, FeatureStoreConfig::File(_)));
    from_file.columns = job.features.columns.clone();
    let redis_store = build_store(&job.features).expect("redis store");
    let file_store = build_store(&from_file).expect("file store");
    assert_eq!(redis_store.schema(), file_store.schema());
    let mut ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    ids.push("acc-unknown");
    let keys = StringArray::from(ids);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (got, want) = rt.block_on(async {
        (
            redis_store.lookup(&keys).await.expect("redis lookup"),
            file_store.lookup(&keys).await.expect("file lookup"),
        )
    });
    assert_eq!(got.found, want.found);
    assert_eq!(got.found.true_count(), rows.len());
    for (i, field) in redis_store.schema().fields().iter().enumerate() {
        assert_eq!(
            got.columns[i].as_ref(),
            want.columns[i].as_ref(),
            "feature {}",
            field.name()
        );
    }

    // Seeding again replaces each hash, leaving nothing else behind.
    redis_pipe(redis.port, &resp);
    let keys: usize = redis::cmd("DBSIZE").query(&mut c).expect("dbsize");
    assert_eq!(keys, rows.len());
}

/// `redis-cli --pipe` of `resp` into the server on `port`; it fails when any
/// command failed.
fn redis_pipe(port: u16, resp: &[u8]) -> Output {
    let mut pipe = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli runs");
    pipe.stdin
        .take()
        .expect("stdin")
        .write_all(resp)
        .expect("write");
    let out = pipe.wait_with_output().expect("redis-cli finishes");
    assert!(
        out.status.success(),
        "redis-cli --pipe: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

#[test]
fn seed_script_refuses_what_it_cannot_write() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let script = repo().join("scripts/features-to-redis.sh");
    let cases = [
        (
            "ragged.csv",
            "id,a,b\nx,1,2\ny,3\n",
            vec![],
            "2 fields, the header has 3",
        ),
        ("quoted.csv", "id,a\n\"x\",1\n", vec![], "quoted CSV fields"),
        (
            "key.csv",
            "id,a\nx,1\n",
            vec!["-k", "nope"],
            "no column named nope",
        ),
        (
            "template.csv",
            "id,a\nx,1\n",
            vec!["-t", "account"],
            "no {key} placeholder",
        ),
    ];
    for (name, csv, args, error) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, csv).expect("write");
        let out = Command::new("sh")
            .arg(&script)
            .args(&args)
            .arg(&path)
            .output()
            .expect("sh runs");
        assert!(!out.status.success(), "{name} was accepted");
        assert!(
            text(&out.stderr).contains(error),
            "{name}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn demo_events_script_writes_keyed_events_of_the_job_schema() {
    let job = load_file(&repo().join("jobs/compose/job.toml")).expect("compose job");
    let fields: BTreeSet<&str> = job.schema.fields.iter().map(|f| f.name.as_str()).collect();
    let (_, rows) = demo_features();
    let accounts: BTreeSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let out = run_ok(
        Command::new("sh")
            .arg(repo().join("scripts/demo-events.sh"))
            .args(["-n", "500", "-s", "7"])
            .arg(repo().join("jobs/demo/features.csv")),
        "demo-events.sh",
    );
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 500);
    let mut ids = BTreeSet::new();
    for line in &lines {
        let (key, json) = line.split_once('|').expect("key|json");
        let event: Value = serde_json::from_str(json).expect("json");
        let event = event.as_object().expect("object");
        let keys: BTreeSet<&str> = event.keys().map(String::as_str).collect();
        assert_eq!(keys, fields, "{line}");
        assert_eq!(event["account_id"].as_str(), Some(key));
        assert!(accounts.contains(key), "{key}");
        assert!(event["amount"].as_f64().is_some_and(|a| a >= 0.5), "{line}");
        let time = event["event_time"].as_str().expect("event_time");
        assert!(time.ends_with('Z') && time.len() == 20, "{time}");
        assert!(ids.insert(event["event_id"].as_str().expect("event_id").to_owned()));
    }
}

/// What Prometheus stores when it scrapes with `deploy/prometheus.yml`'s own
/// scrape settings (its service discovery swapped for one running job's
/// address): every scorestream series keeps the job's name as `job`, not
/// `exported_job`, so a dashboard or alert selects `job="fraud-demo"`; and
/// `up{job="scorestream"}` lists the member, as the README says.
#[test]
fn prometheus_stores_each_series_under_its_jobs_own_label() {
    use common::process::{TANSU_SESSION, bin, job_file};
    use common::tansu::{Tansu, produce_events};
    if !have("prometheus", &["--version"], "prometheus") {
        return;
    }
    let shipped = yaml_to_json(&std::fs::read(repo().join("deploy/prometheus.yml")).expect("yml"));
    let broker = Tansu::start();
    broker.create_topic("transactions", 1);
    produce_events(
        &broker.brokers,
        "transactions",
        scorestream_tools::demo::generator_options(7),
        500,
    );
    let dir = tempfile::tempdir().expect("tmp");
    let job = job_file(
        dir.path(),
        &broker.brokers,
        &dir.path().join("out"),
        "prom",
        TANSU_SESSION,
    );
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .to_string()
    };
    let (metrics_at, prometheus_at) = (free(), free());
    let mut run = bin()
        .arg("run")
        .arg(&job)
        .args(["--metrics-listen", &metrics_at])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("scorestream run");
    let mut scrape = shipped["scrape_configs"]
        .as_array()
        .and_then(|s| s.iter().find(|c| c["job_name"] == "scorestream"))
        .expect("the scorestream scrape config")
        .clone();
    let fields = scrape.as_object_mut().expect("a mapping");
    fields.remove("dns_sd_configs");
    fields.insert(
        "static_configs".into(),
        serde_json::json!([{"targets": [metrics_at]}]),
    );
    fields.insert("scrape_interval".into(), "1s".into());
    let config = dir.path().join("prometheus.yml");
    let rendered = serde_json::json!({"global": shipped["global"], "scrape_configs": [scrape]});
    std::fs::write(&config, rendered.to_string()).expect("config");
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={prometheus_at}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus");
    let query = |q: &str| -> Vec<Value> {
        let url = format!("http://{prometheus_at}/api/v1/query");
        ureq::get(&url)
            .query("query", q)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let series = loop {
        let found = query("scorestream_events_total");
        if !found.is_empty() || std::time::Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let up = query("up{job=\"scorestream\"}");
    let _ = run.kill();
    let _ = prometheus.kill();
    let _ = (run.wait(), prometheus.wait());
    assert!(
        !series.is_empty(),
        "Prometheus stored no scorestream series"
    );
    for s in &series {
        let labels = &s["metric"];
        assert_eq!(labels["job"], "fraud-demo", "{s}");
        assert!(labels.get("exported_job").is_none(), "{s}");
    }
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
}
