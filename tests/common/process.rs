//! Running the real binary and talking to brokers from tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

pub(crate) fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scorestream"))
}

pub(crate) fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the binary runs")
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The demo job pointed at `brokers`, writing to `out`, with absolute asset paths.
/// Group timing for the test brokers: both tie it to the session timeout (the
/// mock makes a rejoining group wait it out, tansu takes half of it to join).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionTimeout {
    pub session_ms: u32,
    pub heartbeat_ms: u32,
}

pub(crate) const MOCK_SESSION: SessionTimeout = SessionTimeout {
    session_ms: 3000,
    heartbeat_ms: 1000,
};
pub(crate) const TANSU_SESSION: SessionTimeout = SessionTimeout {
    session_ms: 2000,
    heartbeat_ms: 600,
};

pub(crate) fn job_file(
    dir: &Path,
    brokers: &str,
    out: &Path,
    group: &str,
    session: SessionTimeout,
) -> PathBuf {
    let demo = repo().join("jobs/demo");
    let toml = std::fs::read_to_string(demo.join("job.toml"))
        .expect("demo job")
        .replace(
            "brokers = \"127.0.0.1:9092\"",
            &format!("brokers = \"{brokers}\""),
        )
        .replace(
            "group_id = \"scorestream-fraud-demo\"",
            &format!("group_id = \"{group}\""),
        )
        .replace(
            "path = \"features.csv\"",
            &format!("path = {:?}", demo.join("features.csv")),
        )
        .replace(
            "path = \"model\"",
            &format!("path = {:?}", demo.join("model")),
        )
        .replace("path = \"out/fraud-demo\"", &format!("path = {out:?}"))
        .replace("max_rows = 65536", "max_rows = 2000")
        // Roll often, so that runs this short still commit many times.
        .replace(
            "roll = { max_bytes = \"256MiB\", max_rows = 10000000, interval = \"30s\", inactivity = \"1s\" }",
            "roll = { interval = \"1s\", inactivity = \"300ms\", max_rows = 2000 }",
        )
        .replace(
            "[schema]",
            &format!(
                "[source.options]\n\"session.timeout.ms\" = \"{}\"\n\"heartbeat.interval.ms\" = \"{}\"\n\n[schema]",
                session.session_ms, session.heartbeat_ms
            ),
        );
    assert!(
        toml.contains("interval = \"1s\"") && toml.contains("max_rows = 2000"),
        "jobs/demo/job.toml changed: update job_file's replacements"
    );
    let p = dir.join("job.toml");
    std::fs::write(&p, toml).expect("write job");
    p
}

pub(crate) fn committed_total(brokers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    committed
        .elements()
        .iter()
        .map(|e| {
            if let Offset::Offset(o) = e.offset() {
                o
            } else {
                0
            }
        })
        .sum()
}

pub(crate) fn wait_for<F: FnMut() -> bool>(what: &str, timeout: Duration, mut f: F) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `scorestream run JOB` in the background, its output appended to `log`.
pub(crate) fn spawn_run(job: &Path, args: &[&str], log: &Path) -> std::process::Child {
    spawn_run_with(job, args, log, &[])
}

/// [`spawn_run`] with extra environment variables.
pub(crate) fn spawn_run_with(
    job: &Path,
    args: &[&str],
    log: &Path,
    env: &[(&str, String)],
) -> std::process::Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    bin()
        .arg("run")
        .arg(job)
        .args(args)
        .env("RUST_LOG", "info,librdkafka=warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .expect("start scorestream run")
}

/// Waits for a background run to exit by itself and checks it succeeded.
pub(crate) fn wait_success(child: &mut std::process::Child, log: &Path, timeout: Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(
                status.success(),
                "run failed ({status}):\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!(
                "run did not finish within {timeout:?}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many Kafka messages the output's commit log covers.
pub(crate) fn committed_messages(out: &Path) -> i64 {
    commit_entries(out)
        .iter()
        .map(|e| e["end"].as_i64().unwrap_or(0) - e["start"].as_i64().unwrap_or(0))
        .sum()
}

/// The output's commit-log entries.
pub(crate) fn commit_entries(out: &Path) -> Vec<serde_json::Value> {
    let Ok(dir) = std::fs::read_dir(out.join("_scorestream/commits")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".json") && !n.starts_with('.')
        })
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect()
}

/// Runs the job until `ready` holds and `open_files` counts a file with rows
/// on disk, then SIGKILLs it; runs it again (up to 5 times) when the kill
/// lands just as those files were committed. Panics if it never catches the
/// job with a file open.
pub(crate) fn kill_with_files_open(
    job: &Path,
    log: &Path,
    env: &[(&str, String)],
    ready: impl Fn() -> bool,
    open_files: impl Fn() -> usize,
) {
    for _ in 0..5 {
        let mut child = spawn_run_with(job, &[], log, env);
        let start = Instant::now();
        while !ready() || open_files() == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "no commits with a file open after 90 s:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        if open_files() > 0 {
            return;
        }
    }
    panic!("never caught the job with a file open");
}

/// Copies the demo model into `registry/<name>` as version `version`,
/// under a hidden name first and renamed into place, the way a deploy
/// should publish one; `corrupt` truncates its weights.
pub(crate) fn publish(registry: &Path, name: &str, version: &str, corrupt: bool) {
    let staging = registry.join(format!(".{name}"));
    std::fs::create_dir_all(&staging).expect("staging");
    let demo = repo().join("jobs/demo/model");
    let manifest = std::fs::read_to_string(demo.join("manifest.json"))
        .expect("manifest")
        .replace("\"version\": \"1\"", &format!("\"version\": \"{version}\""));
    assert!(manifest.contains(&format!("\"version\": \"{version}\"")));
    std::fs::write(staging.join("manifest.json"), manifest).expect("manifest");
    let mut weights = std::fs::read(demo.join("model.safetensors")).expect("weights");
    if corrupt {
        weights.truncate(weights.len() / 2);
    }
    std::fs::write(staging.join("model.safetensors"), weights).expect("weights");
    std::fs::rename(&staging, registry.join(name)).expect("publish");
}
