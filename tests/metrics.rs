//! Metrics and structured logs of a real run against a real broker (tansu):
//! `scorestream run --metrics-listen` serves a scrape that `promtool check
//! metrics` accepts, every family the issue lists is there with the job's
//! label, the counters agree with the output, and `--log-format json`
//! writes one JSON object per line carrying the job and operator spans.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use common::process::*;
use common::redis_server::{RedisServer, columns_toml, load_features};
use common::tansu::{Tansu, produce_events};
use scorestream_tools::demo::generator_options;
use scorestream_tools::synth::GenOptions;

const JOB: &str = "fraud-demo";
const EVENTS: u64 = 6_000;

/// One sample of a scrape: family name (with `_bucket` etc.), labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(scrape: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in scrape.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').expect("label k=v");
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value: value.parse().unwrap_or(f64::NAN),
        });
    }
    out
}

/// The samples of `name` with `job="fraud-demo"`.
fn of<'a>(samples: &'a [Sample], name: &str) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name && s.labels.get("job").map(String::as_str) == Some(JOB))
        .collect()
}

fn sum(samples: &[Sample], name: &str) -> f64 {
    of(samples, name).iter().map(|s| s.value).sum()
}

/// `/metrics` from the running job, or None while it is not listening.
fn scrape(addr: &str) -> Option<String> {
    let mut c = std::net::TcpStream::connect(addr).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: scorestream\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    c.read_to_string(&mut response).ok()?;
    if !response.starts_with("HTTP/1.1 200") {
        return None;
    }
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    Some(body.to_owned())
}

/// Runs `promtool check metrics` on a scrape: Some((success, output)), or
/// None when promtool is not installed.
fn promtool(scrape: &str) -> Option<(bool, String)> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("promtool: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(scrape.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    Some((out.status.success(), said))
}

/// Families the scrape has no `# HELP` for.
fn without_help(scrape: &str) -> Vec<String> {
    let typed: Vec<&str> = scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    typed
        .into_iter()
        .filter(|f| !scrape.contains(&format!("# HELP {f} ")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn metrics_pass_promtool_carry_the_job_label_and_logs_are_json() {
    let broker = Tansu::start();
    broker.create_topic("transactions", 2);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let job = job_file(dir.path(), &broker.brokers, &out, "metrics", TANSU_SESSION);
    // Drift on the demo's committed reference profile, and librdkafka
    // statistics (the lag gauge's source) every second instead of every 5.
    // Features from Redis through the in-process cache (the demo's
    // accounts repeat, so the cache hits).
    let profile = repo().join("jobs/demo/drift-profile.json");
    let redis = RedisServer::start(&dir.path().join("redis"));
    load_features(&redis);
    let toml = std::fs::read_to_string(&job).expect("job");
    let store_line = toml
        .lines()
        .find(|l| l.starts_with("store = "))
        .expect("store line")
        .to_owned();
    let toml = toml
        .replace(
            &store_line,
            &format!(
                "store = {{ kind = \"redis\", url = \"{}\", key_template = \"acct:{{key}}\", timestamp_field = \"updated_at\" }}",
                redis.url()
            ),
        )
        .replace(
            "[source.options]\n",
            "[source.options]\n\"statistics.interval.ms\" = \"1000\"\n",
        )
        + &columns_toml("")
        + "\n[features.cache]\nttl = \"1h\"\n"
        + &format!(
            "\n[drift]\nprofile = {profile:?}\nwindow = {{ rows = 1000 }}\nqueue_batches = 64\n"
        );
    std::fs::write(&job, toml).expect("job");
    // Enough malformed events that every run has dead letters.
    let opts = GenOptions {
        malformed_rate: 0.05,
        ..generator_options(81)
    };
    produce_events(&broker.brokers, "transactions", opts, EVENTS);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let stderr_log = dir.path().join("stderr.log");
    let mut child = bin()
        .args(["--log-format", "json", "run"])
        .arg(&job)
        .args(["--metrics-listen", &listen])
        .env("RUST_LOG", "info,librdkafka=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_log).expect("log"))
        .spawn()
        .expect("start scorestream run");
    let log = || std::fs::read_to_string(&stderr_log).unwrap_or_default();

    // Scrape until everything read is committed and reported: the rows and
    // dead letters counters account for every event, and the lag is 0.
    let deadline = Instant::now() + Duration::from_secs(180);
    let body = loop {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the job exited early:\n{}",
            log()
        );
        assert!(
            Instant::now() < deadline,
            "metrics never settled; last scrape:\n{}\nlog:\n{}",
            scrape(&listen).unwrap_or_default(),
            log()
        );
        if let Some(body) = scrape(&listen) {
            let s = parse(&body);
            let accounted = sum(&s, "scorestream_rows_scored_total")
                + sum(&s, "scorestream_dead_letters_total");
            let lag = of(&s, "scorestream_consumer_lag_messages");
            let drift = of(&s, "scorestream_drift_statistic");
            if accounted == EVENTS as f64
                && lag.len() == 1
                && lag[0].value == 0.0
                && !drift.is_empty()
            {
                break body;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    };

    // Stop it the way an operator would and check it drains cleanly.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "run failed ({status}):\n{}", log());

    // 1. promtool accepts the scrape, and every family has HELP.
    match promtool(&body) {
        Some((ok, said)) => {
            assert!(ok && said.trim().is_empty(), "promtool:\n{said}\n{body}");
        }
        None if std::env::var_os("CI").is_some() => {
            panic!("promtool is not installed (apt-get install prometheus)")
        }
        None => eprintln!(
            "\n*** SKIP: promtool not installed, the scrape was not linted (apt-get install prometheus) ***\n"
        ),
    }
    assert_eq!(without_help(&body), Vec::<String>::new(), "{body}");

    // 2. The families, each with the job's label.
    let s = parse(&body);
    for family in [
        "scorestream_events_total",
        "scorestream_rows_scored_total",
        "scorestream_batch_rows_bucket",
        "scorestream_stage_duration_seconds_bucket",
        "scorestream_queue_rows",
        "scorestream_consumer_lag_messages",
        "scorestream_feature_cache_hits_total",
        "scorestream_dead_letters_total",
        "scorestream_drift_statistic",
        "scorestream_output_freshness_seconds_bucket",
    ] {
        assert!(
            !of(&s, family).is_empty(),
            "no {family}{{job=\"{JOB}\"}}:\n{body}"
        );
    }
    assert!(
        body.contains("# TYPE scorestream_batch_rows histogram")
            && body.contains("# TYPE scorestream_stage_duration_seconds histogram"),
        "histograms render as histograms, not summaries:\n{body}"
    );
    // Bounded labels: stages, queues and dead-letter stages are closed sets.
    let label_values = |name: &str, label: &str| {
        let mut v: Vec<String> = of(&s, name)
            .iter()
            .filter_map(|x| x.labels.get(label).cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(
        label_values("scorestream_stage_duration_seconds_count", "stage"),
        ["decode", "feature_join", "score", "sink_write"]
    );
    assert_eq!(
        label_values("scorestream_queue_rows", "queue"),
        ["batched", "decoded", "joined", "raw", "scored"]
    );
    let stages = label_values("scorestream_dead_letters_total", "stage");
    assert!(
        !stages.is_empty()
            && stages
                .iter()
                .all(|st| ["parse", "schema", "oversized", "features"].contains(&st.as_str())),
        "{stages:?}"
    );
    // No sample carries an unbounded or per-operator label.
    for x in &s {
        for k in x.labels.keys() {
            assert!(
                [
                    "job",
                    "stage",
                    "reason",
                    "queue",
                    "feature",
                    // Feast feature views, from the job's config.
                    "view",
                    "statistic",
                    "le",
                    "quantile"
                ]
                .contains(&k.as_str()),
                "unexpected label {k} on {}",
                x.name
            );
        }
    }

    // 3. The counters agree with what the job committed.
    let dead = common::read_dir(&out.join("dead_letters"))
        .iter()
        .map(|b| b.num_rows())
        .sum::<usize>() as f64;
    assert!(dead > 0.0, "malformed events became dead letters");
    assert_eq!(sum(&s, "scorestream_dead_letters_total"), dead);
    // ... and by stage and reason code, one series per pair the files hold.
    let mut in_files: BTreeMap<(String, String), f64> = Default::default();
    for b in common::read_dir(&out.join("dead_letters")) {
        let col = |n: &str| b.column_by_name(n).expect(n).clone();
        let (stage, code) = (col("stage"), col("reason_code"));
        for i in 0..b.num_rows() {
            let stage = stage.as_string::<i32>().value(i).to_owned();
            let code = code.as_string::<i32>().value(i).to_owned();
            *in_files.entry((stage, code)).or_default() += 1.0;
        }
    }
    let in_metric: BTreeMap<(String, String), f64> = of(&s, "scorestream_dead_letters_total")
        .iter()
        .map(|x| {
            let label = |k: &str| x.labels.get(k).cloned().expect(k);
            ((label("stage"), label("reason")), x.value)
        })
        .collect();
    assert_eq!(in_metric, in_files);
    assert!(
        in_metric.keys().any(|(_, code)| code == "invalid_json"),
        "{in_metric:?}"
    );
    assert_eq!(
        sum(&s, "scorestream_rows_scored_total"),
        EVENTS as f64 - dead
    );
    assert_eq!(sum(&s, "scorestream_events_total"), EVENTS as f64);
    let scored_batches = sum(&s, "scorestream_batch_rows_count");
    let score_durations: f64 = of(&s, "scorestream_stage_duration_seconds_count")
        .iter()
        .filter(|x| x.labels.get("stage").map(String::as_str) == Some("score"))
        .map(|x| x.value)
        .sum();
    assert!(scored_batches > 0.0);
    assert_eq!(scored_batches, score_durations, "one of each per batch");
    assert_eq!(
        sum(&s, "scorestream_batch_rows_sum"),
        EVENTS as f64 - dead,
        "batch sizes add up to the rows scored"
    );

    // 4. Logs: every stderr line is one JSON object; the job's operator
    // events carry the job and operator spans.
    let text_log = log();
    let mut with_spans = 0;
    for line in text_log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        assert!(v.is_object(), "{line}");
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
        if let Some(spans) = v["spans"].as_array() {
            let job = spans.iter().any(|s| s["job"] == JOB);
            let operator = spans.iter().find_map(|s| s["operator"].as_str());
            if job && operator.is_some() {
                assert!(v["span"]["name"].is_string(), "{line}");
                with_spans += 1;
            }
        }
    }
    assert!(
        text_log.contains("\"operator\":\"source\""),
        "the source's lines carry its span:\n{text_log}"
    );
    assert!(
        with_spans > 0,
        "no line carries job and operator:\n{text_log}"
    );
}
