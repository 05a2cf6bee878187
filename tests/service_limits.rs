//! `scorestream serve` under a flood of idle and slow connections with a
//! low open-file limit (issue 27, "denial of service"): hundreds of sockets
//! that send nothing, headers or bodies that trickle, and a declared 10 GB
//! body. The service closes each after its timeout, answers `/healthz`
//! while they are held, refuses the huge body before it is sent, and the
//! job it runs scores every event produced meanwhile.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::process::*;
use common::tansu::{Tansu, produce_events};
use common::*;
use scorestream_tools::demo::generator_options;
use scorestream_tools::synth::GenOptions;
use serde_json::Value;

const TOKEN: &str = "limits-test-token-51c0e7d2";
const JOB: &str = "fraud-demo";
const TOPIC: &str = "transactions";
/// The descriptor limit the service runs under: the API may take 64.
const OPEN_FILES: u32 = 256;
const IDLE_SOCKETS: usize = 300;
/// How long the test waits for anything the service should do within its
/// 2-3 s timeouts: a bound, not a measurement.
const BOUND: Duration = Duration::from_secs(60);

struct Service {
    child: Child,
    port: u16,
    agent: ureq::Agent,
}

impl Service {
    /// Under `ulimit -n OPEN_FILES` (soft and hard), with short timeouts.
    fn start(dir: &Path, log: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let tokens = dir.join("tokens");
        std::fs::write(&tokens, format!("{TOKEN}\n")).expect("tokens");
        let file = std::fs::File::create(log).expect("log");
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {OPEN_FILES} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_scorestream"))
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.join("data"))
            // The job reads the repository's demo files and writes here.
            .arg("--base-dir")
            .arg(repo())
            .arg("--output-root")
            .arg(dir)
            .arg("--token-file")
            .arg(&tokens)
            .args(["--header-timeout", "2s", "--idle-timeout", "3s"])
            .args(["--body-timeout", "3s"])
            .env("RUST_LOG", "info,librdkafka=warn")
            .env_remove("SCORESTREAM_API_TOKENS")
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("start scorestream serve");
        // A new connection per request: one the server closed while pooled
        // (idle, or to make room at the cap) would fail the next call.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(0)
            .timeout_global(Some(BOUND))
            .build()
            .into();
        let s = Self { child, port, agent };
        wait_for("the service to be ready", BOUND, || {
            s.call("GET", "/readyz", None)
                .is_some_and(|(c, _)| c == 200)
        });
        s
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Option<(u16, Value)> {
        let auth = format!("Bearer {TOKEN}");
        let mut r = match method {
            "GET" => self.agent.get(self.url(path)).call(),
            _ => self
                .agent
                .post(self.url(path))
                .header("Authorization", &auth)
                .send(body.unwrap_or("")),
        }
        .ok()?;
        let text = r.body_mut().read_to_string().ok()?;
        Some((
            r.status().as_u16(),
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    fn job(&self) -> Value {
        let (code, s) = self
            .call("GET", &format!("/v1/jobs/{JOB}"), None)
            .expect("job status");
        assert_eq!(code, 200, "{s}");
        s
    }

    fn wait_committed(&self, n: u64, what: &str) {
        let start = Instant::now();
        loop {
            let s = self.job();
            assert_ne!(s["state"], "failed", "{what}: {s}");
            if s["counters"]["messages_committed"].as_u64() == Some(n) {
                return;
            }
            assert!(start.elapsed() < BOUND * 2, "{what}: {s}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(BOUND)).expect("timeout");
        s
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn phase(seed: u64, first_seq: u64) -> GenOptions {
    GenOptions {
        first_seq,
        ..generator_options(seed)
    }
}

/// Everything the server sends until it closes the connection (a reset
/// counts as closed); panics if it is still open after [`BOUND`].
fn until_closed(mut s: TcpStream, what: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{what}: still open after {BOUND:?} ({e})"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn idle_and_slow_clients_are_cut_off_and_cannot_starve_a_running_job() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 3);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let job = job_file(dir.path(), &broker.brokers, &out, "limits", TANSU_SESSION);
    let config = std::fs::read_to_string(job).expect("job");
    let log = dir.path().join("serve.log");
    let svc = Service::start(dir.path(), &log);
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(
        logged.contains("at most 64 API connections"),
        "the cap is a quarter of the open-file limit: {logged}"
    );

    let (code, created) = svc.call("POST", "/v1/jobs", Some(&config)).expect("submit");
    assert_eq!(code, 201, "{created}");
    let mut produced = produce_events(&broker.brokers, TOPIC, phase(31, 0), 2_000);
    svc.wait_committed(2_000, "before the flood");

    // The flood: sockets that send nothing, headers that never end, a
    // body that never ends, from more clients than the API may hold.
    let idle: Vec<TcpStream> = (0..IDLE_SOCKETS).map(|_| svc.connect()).collect();
    let slow_headers: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut s = svc.connect();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .expect("write");
            s
        })
        .collect();
    let slow_bodies: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut s = svc.connect();
            let head = format!(
                "POST /v1/jobs/dry-run HTTP/1.1\r\nHost: x\r\nAuthorization: bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n[job]\n"
            );
            s.write_all(head.as_bytes()).expect("write");
            s
        })
        .collect();

    // While they are held: the service answers, and the job keeps scoring.
    let (code, health) = svc.call("GET", "/healthz", None).expect("/healthz answers");
    assert_eq!(code, 200, "{health}");
    produced.extend(produce_events(
        &broker.brokers,
        TOPIC,
        phase(32, 2_000),
        2_000,
    ));
    svc.wait_committed(4_000, "during the flood");

    // A declared 10 GB body is refused at once, before any of it is sent.
    let mut huge = svc.connect();
    huge.write_all(
        format!(
            "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 10000000000\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("write");
    let answer = until_closed(huge, "a declared 10 GB body");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Every flooding connection is closed by the server: the slow body
    // with 408, the rest without a word.
    for (i, s) in slow_bodies.into_iter().enumerate() {
        let answer = until_closed(s, &format!("slow body {i}"));
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "slow body {i}: {answer}"
        );
    }
    for (i, s) in slow_headers.into_iter().chain(idle).enumerate() {
        let answer = until_closed(s, &format!("idle or slow-header socket {i}"));
        assert!(!answer.starts_with("HTTP/1.1 200"), "{i}: {answer}");
    }

    // A keep-alive connection is closed once idle after its response.
    let mut kept = svc.connect();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let answer = until_closed(kept, "an idle keep-alive connection");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The job lost nothing: stopped, every event is in the output once.
    let (code, stopped) = svc
        .call("POST", &format!("/v1/jobs/{JOB}/stop"), None)
        .expect("stop");
    assert_eq!((code, &stopped["state"]), (200, &Value::from("stopped")));
    assert_exactly_once(&out, &produced);
}
