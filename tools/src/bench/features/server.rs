//! A throwaway redis-server for `scorestream bench --features` without a
//! `--redis-url`: on a free loopback port, persisting nothing, stopped
//! when the bench ends.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ToolError;

const START_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct ThrowawayRedis {
    child: Child,
    pub url: String,
}

impl ThrowawayRedis {
    pub(super) fn start(program: &Path) -> Result<Self, ToolError> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| ToolError::io("finding a free port for redis-server", e))?
            .port();
        let child = Command::new(program)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ToolError::BadOption {
                option: "--redis-server",
                reason: format!(
                    "cannot start {} ({e}); install redis-server or pass --redis-url",
                    program.display()
                ),
            })?;
        let mut server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}/0"),
        };
        server.wait_ready(port)?;
        Ok(server)
    }

    /// Until it answers PING, or fails with what it exited with.
    fn wait_ready(&mut self, port: u16) -> Result<(), ToolError> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ToolError::Incomplete(format!(
                    "redis-server exited at start ({status}) on port {port}"
                )));
            }
            let answered = redis::Client::open(self.url.as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if answered.is_ok() {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(ToolError::Incomplete(format!(
                    "redis-server did not answer on port {port} within {START_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `redis-server` as found on PATH.
pub(super) fn default_program() -> PathBuf {
    PathBuf::from("redis-server")
}
