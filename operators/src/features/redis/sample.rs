//! A bounded look at what a Redis store holds, for the probes: `SCAN`
//! (never `KEYS`, which blocks the server) and pipelined reads, each under
//! the store's `timeout`, at most `MAX_SCANS` round trips of `SCAN_COUNT`
//! keys, so a probe of a large database stays quick.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, Pipeline};

use super::redact_in;
use super::{RedisStoreConfig, redact_url};
use crate::features::ProbeReport;
use crate::{OperatorError, Result};

/// Keys asked for per `SCAN` round trip.
const SCAN_COUNT: usize = 1000;
/// `SCAN` round trips at most: about 50,000 keys looked at.
const MAX_SCANS: usize = 50;
/// Keys of the job's layout whose fields are read.
pub(super) const SAMPLE_KEYS: usize = 32;

pub(super) struct Sampler {
    conn: MultiplexedConnection,
    /// The URL with its password masked.
    pub(super) name: String,
    url: String,
    timeout: Duration,
}

/// How far a scan went, for messages.
pub(super) struct Scanned {
    /// The whole keyspace was walked.
    pub(super) complete: bool,
    /// Keys in the database (`DBSIZE`).
    pub(super) total: u64,
}

impl Scanned {
    pub(super) fn describe(&self) -> String {
        if self.complete {
            format!("all {} keys of the database scanned", self.total)
        } else {
            format!(
                "about {} of the database's {} keys scanned",
                SCAN_COUNT * MAX_SCANS,
                self.total
            )
        }
    }

    /// The report when no key of the job's layout turned up: only a scan of
    /// the whole keyspace proves the setting at `key` wrong; a partial one
    /// may just have missed the keys, so it leaves a note instead.
    pub(super) fn nothing_found(&self, key: &str, message: String) -> ProbeReport {
        let mut report = ProbeReport::default();
        if self.complete {
            report.problems.push((key.to_owned(), message));
        } else {
            report.notes.push(message);
        }
        report
    }
}

impl Sampler {
    pub(super) async fn connect(config: &RedisStoreConfig) -> Result<Self> {
        let name = redact_url(&config.url);
        let timeout = config.timeout.0;
        let client = redis::Client::open(config.url.as_str()).map_err(|e| {
            OperatorError::FeatureStoreConfig(format!(
                "url {name}: {}",
                redact_in(&e.to_string(), &config.url)
            ))
        })?;
        let mut s = Self {
            conn: match tokio::time::timeout(timeout, client.get_multiplexed_async_connection())
                .await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(classify(e, &name, &config.url)),
                Err(_) => {
                    return Err(OperatorError::FeatureStoreUnavailable {
                        store: format!("redis {name}"),
                        reason: format!("no connection within {timeout:?}"),
                    });
                }
            },
            name,
            url: config.url.clone(),
            timeout,
        };
        // A server that takes the connection but wants a password answers
        // only now.
        s.query::<(String,)>(one(redis::cmd("PING"))).await?;
        Ok(s)
    }

    pub(super) async fn query<T: FromRedisValue>(&mut self, pipe: Pipeline) -> Result<T> {
        match tokio::time::timeout(self.timeout, pipe.query_async::<T>(&mut self.conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(e, &self.name, &self.url)),
            Err(_) => Err(OperatorError::FeatureStoreUnavailable {
                store: format!("redis {}", self.name),
                reason: format!("no answer within {:?}", self.timeout),
            }),
        }
    }

    /// Walks the keyspace (matching `pattern`, a `SCAN MATCH` glob) until
    /// `visit` says it has seen enough or the budget is spent.
    pub(super) async fn scan(
        &mut self,
        pattern: Option<&str>,
        mut visit: impl FnMut(Vec<u8>) -> bool,
    ) -> Result<Scanned> {
        let (total,): (u64,) = self.query(one(redis::cmd("DBSIZE"))).await?;
        let mut cursor: u64 = 0;
        for _ in 0..MAX_SCANS {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor);
            if let Some(p) = pattern {
                cmd.arg("MATCH").arg(p);
            }
            cmd.arg("COUNT").arg(SCAN_COUNT);
            let ((next, keys),): ((u64, Vec<Vec<u8>>),) = self.query(one(cmd)).await?;
            for k in keys {
                if visit(k) {
                    return Ok(Scanned {
                        complete: true,
                        total,
                    });
                }
            }
            if next == 0 {
                return Ok(Scanned {
                    complete: true,
                    total,
                });
            }
            cursor = next;
        }
        Ok(Scanned {
            complete: false,
            total,
        })
    }

    /// One `HMGET` per key of the same fields, in one round trip.
    pub(super) async fn hmget(
        &mut self,
        keys: &[Vec<u8>],
        fields: &[Vec<u8>],
    ) -> Result<Vec<Vec<Option<Vec<u8>>>>> {
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("HMGET").arg(k).arg(fields);
        }
        self.query(pipe).await
    }
}

fn one(cmd: redis::Cmd) -> Pipeline {
    let mut p = redis::pipe();
    p.add_command(cmd);
    p
}

/// Like the lookup path: connection trouble is an outage, a refused
/// password is a config error, anything else (a key that is no hash) a
/// store holding something else.
fn classify(e: redis::RedisError, name: &str, url: &str) -> OperatorError {
    let reason = redact_in(&e.to_string(), url);
    if e.kind() == redis::ErrorKind::AuthenticationFailed {
        return OperatorError::FeatureStoreConfig(format!("redis {name}: {reason}"));
    }
    if e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
    {
        OperatorError::FeatureStoreUnavailable {
            store: format!("redis {name}"),
            reason,
        }
    } else {
        OperatorError::FeatureStoreData {
            store: format!("redis {name}"),
            reason,
        }
    }
}
