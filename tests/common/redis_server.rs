//! A real redis-server (Debian's package) on a free loopback port, with an
//! append-only file so it can be killed and restarted with its data.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use scorestream_operators::features::{FeatureStore, FileFeatureStore};
use scorestream_schemas::ColumnType;

use super::process::repo;

pub(crate) struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

impl RedisServer {
    pub(crate) fn start(dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut s = Self {
            child: None,
            port,
            dir: dir.to_owned(),
        };
        s.restart();
        s
    }

    /// Starts the server (again) on the same port and data directory.
    pub(crate) fn restart(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("redis dir");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it (`apt-get install redis-server`, what .ci/run does)")
            });
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if let Ok(mut c) = self.client().get_connection() {
                // Loaded (the AOF is replayed before it answers PING).
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not answer on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub(crate) fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("client")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The demo's feature file, the data loaded into Redis.
pub(crate) fn demo_features() -> PathBuf {
    repo().join("jobs/demo/features.csv")
}

/// Writes every account of the demo's feature file to Redis as a hash
/// `acct:<id>`, with `updated_at` = now, and returns `avg_amount_30d` by
/// account to check the output against.
pub(crate) fn load_features(redis: &RedisServer) -> HashMap<String, f64> {
    let text = std::fs::read_to_string(demo_features()).expect("features");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let avg_at = header
        .iter()
        .position(|h| *h == "avg_amount_30d")
        .expect("avg");
    let now = scorestream_operators::now_ms().to_string();
    let mut c = redis.client().get_connection().expect("connection");
    let mut pipe = redis::pipe();
    let mut avg = HashMap::new();
    for line in lines {
        let values: Vec<&str> = line.split(',').collect();
        let mut cmd = redis::cmd("HSET");
        cmd.arg(format!("acct:{}", values[0]));
        for (h, v) in header.iter().zip(&values).skip(1) {
            cmd.arg(*h).arg(*v);
        }
        cmd.arg("updated_at").arg(&now);
        pipe.add_command(cmd).ignore();
        avg.insert(values[0].to_owned(), values[avg_at].parse().expect("avg"));
    }
    pipe.query::<()>(&mut c).expect("load features");
    avg
}

/// `[[features.columns]]` for every feature of the demo file, typed as the
/// file's columns are.
pub(crate) fn columns_toml(skip: &str) -> String {
    let store = FileFeatureStore::load(&demo_features(), "account_id").expect("features");
    let mut out = String::new();
    for f in store.schema().fields() {
        if f.name() == skip {
            continue;
        }
        let t = match ColumnType::of(f.data_type()).expect("type") {
            ColumnType::Float64 => "float64",
            ColumnType::Int64 => "int64",
            ColumnType::String => "string",
            other => panic!("{other:?}"),
        };
        out.push_str(&format!(
            "\n[[features.columns]]\nname = \"{}\"\ntype = \"{t}\"\nmax_age = \"1h\"\n",
            f.name()
        ));
    }
    out
}

/// The demo job reading its features from `url` (hashes `acct:<id>` as
/// [`load_features`] writes them), in consumer group `group`.
pub(crate) fn redis_job(
    dir: &Path,
    brokers: &str,
    out: &Path,
    url: &str,
    on_unavailable: &str,
    group: &str,
) -> PathBuf {
    let job = super::process::job_file(dir, brokers, out, group, super::process::TANSU_SESSION);
    let text = std::fs::read_to_string(&job).expect("job");
    let store_line = text
        .lines()
        .find(|l| l.starts_with("store = "))
        .expect("store line");
    let text = text.replace(
        store_line,
        &format!(
            "on_stale = \"null\"\non_unavailable = \"{on_unavailable}\"\n\
             store = {{ kind = \"redis\", url = \"{url}\", key_template = \"acct:{{key}}\", timestamp_field = \"updated_at\", timeout = \"500ms\" }}"
        ),
    ) + &columns_toml("")
        + "\n[features.cache]\nttl = \"0s\"\n";
    std::fs::write(&job, text).expect("write job");
    job
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Loads what `feast materialize` (Feast 0.67) wrote to Redis for the
/// fixture in `tests/fixtures/feast/`, byte for byte.
pub(crate) fn load_feast_fixture(redis: &RedisServer) {
    let path = repo().join("tests/fixtures/feast/redis_dump.json");
    let dump: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("dump")).expect("json");
    let mut c = redis.client().get_connection().expect("connection");
    let mut pipe = redis::pipe();
    for entry in dump.as_array().expect("entries") {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(unhex(entry["key_hex"].as_str().expect("key")));
        for (f, v) in entry["fields"].as_object().expect("fields") {
            cmd.arg(unhex(f)).arg(unhex(v.as_str().expect("value")));
        }
        pipe.add_command(cmd).ignore();
    }
    pipe.query::<()>(&mut c).expect("load the Feast fixture");
}
