//! A real S3-compatible server for tests: moto's server mode (PyPI
//! `moto[server]`, installed by `.ci/run`) on a free loopback port, and a
//! small client over `object_store` to look at what landed in the bucket.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};

/// Credentials the tests hand the job through the environment; moto
/// accepts any. The secret is distinctive so logs can be searched for it.
pub(crate) const ACCESS_KEY: &str = "scorestream-test";
pub(crate) const SECRET_KEY: &str = "s3cr3t-Never-Logged-4f9d";
pub(crate) const REGION: &str = "us-east-1";

pub(crate) struct S3Server {
    child: Child,
    pub endpoint: String,
    pub port: u16,
}

impl S3Server {
    pub(crate) fn start() -> Self {
        let probe = Command::new("python3")
            .args(["-c", "import moto.server, flask"])
            .output();
        assert!(
            probe.is_ok_and(|o| o.status.success()),
            "moto's S3 server is not installed: run `pip install 'moto[server]'` (what .ci/run does)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "moto_server did not listen on {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    /// `PUT /bucket`: the one call `object_store` does not make.
    pub(crate) fn create_bucket(&self, bucket: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("request");
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("reply");
        assert!(reply.starts_with("HTTP/1.1 200"), "create bucket: {reply}");
    }

    /// The environment a job (or a reader) needs to reach this server.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    pub(crate) fn bucket(&self, bucket: &str) -> Bucket {
        let store = AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_region(REGION)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .expect("s3 client");
        Bucket {
            store: Arc::new(store),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test's view of a bucket.
pub(crate) struct Bucket {
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
}

impl Bucket {
    /// Every key under `prefix`, sorted.
    pub(crate) fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.rt.block_on(async {
            self.store
                .list(Some(&Key::from(prefix)))
                .map_ok(|m| m.location.to_string())
                .try_collect()
                .await
                .expect("list")
        });
        keys.sort();
        keys
    }

    pub(crate) fn get(&self, key: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let got = self.store.get(&Key::from(key)).await.expect("get");
            got.bytes().await.expect("bytes").to_vec()
        })
    }

    /// The commit-log entries of the output at `prefix`.
    pub(crate) fn commit_entries(&self, prefix: &str) -> Vec<serde_json::Value> {
        self.keys(&format!("{prefix}/_scorestream/commits"))
            .iter()
            .filter(|k| {
                k.ends_with(".json") && !k.rsplit('/').next().unwrap_or("").starts_with('.')
            })
            .map(|k| serde_json::from_slice(&self.get(k)).expect("entry"))
            .collect()
    }
}
