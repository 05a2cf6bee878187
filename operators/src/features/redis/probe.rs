//! Samples Redis for [`crate::features::probe_store`]: a bounded `SCAN`
//! (never `KEYS`, which blocks the server) for keys of the configured
//! layout, then one pipelined read of the configured fields of a few of
//! them. At most `MAX_SCANS` round trips of `SCAN_COUNT` keys, each under
//! the store's `timeout`, so a probe of a large database stays quick.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, Pipeline};

use super::redact_in;
use crate::features::config::{FeatureColumn, RedisLayout, RedisStoreConfig, redact_url};
use crate::features::probe::{ProbeReport, type_name};
use crate::features::values::FeatureValue;
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
}

impl Sampler {
    async fn connect(config: &RedisStoreConfig) -> Result<Self> {
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

/// Probes a Redis store for the job's features.
pub(crate) async fn probe(
    config: &RedisStoreConfig,
    job_key: &str,
    columns: &[FeatureColumn],
) -> Result<ProbeReport> {
    let mut s = Sampler::connect(config).await?;
    match config.layout {
        RedisLayout::Hash => probe_hash(&mut s, config, columns).await,
        RedisLayout::Feast => {
            let join_key = config.join_key.as_deref().unwrap_or(job_key);
            super::feast_probe::probe(&mut s, config, join_key, columns).await
        }
    }
}

/// `SCAN MATCH` treats these as pattern characters.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

async fn probe_hash(
    s: &mut Sampler,
    config: &RedisStoreConfig,
    columns: &[FeatureColumn],
) -> Result<ProbeReport> {
    let template = config.key_template.as_deref().unwrap_or("{key}");
    let (prefix, suffix) = template.split_once("{key}").unwrap_or((template, ""));
    let pattern = format!("{}*{}", glob_escape(prefix), glob_escape(suffix));
    let mut keys = Vec::new();
    let scanned = s
        .scan(Some(&pattern), |k| {
            keys.push(k);
            keys.len() >= SAMPLE_KEYS
        })
        .await?;
    let mut report = ProbeReport::default();
    if keys.is_empty() {
        let m = format!(
            "no key in Redis {} matches `{template}` ({})",
            s.name,
            scanned.describe()
        );
        if scanned.complete {
            report.problems.push(("store.key_template".into(), m));
        } else {
            report.notes.push(m);
        }
        return Ok(report);
    }
    let mut fields: Vec<Vec<u8>> = columns
        .iter()
        .map(|c| c.name.clone().into_bytes())
        .collect();
    if let Some(ts) = &config.timestamp_field {
        fields.push(ts.clone().into_bytes());
    }
    let replies = s.hmget(&keys, &fields).await?;
    let n = keys.len();
    for (j, c) in columns.iter().enumerate() {
        let values: Vec<&[u8]> = replies
            .iter()
            .filter_map(|r| r.get(j).and_then(Option::as_deref))
            .collect();
        if values.is_empty() {
            report.problems.push((
                format!("columns[{j}].name"),
                format!(
                    "none of {n} sampled hashes `{template}` has a field `{}`",
                    c.name
                ),
            ));
            continue;
        }
        let bad: Vec<String> = values
            .iter()
            .filter_map(|v| {
                let text = String::from_utf8_lossy(v);
                FeatureValue::parse(&text, c.kind).err()
            })
            .collect();
        if let Some(first) = bad.first() {
            report.problems.push((
                format!("columns[{j}].type"),
                format!(
                    "feature `{}` is declared {}, but {} of {} sampled values are not: {first}",
                    c.name,
                    type_name(c.kind),
                    bad.len(),
                    values.len()
                ),
            ));
        }
    }
    if let Some(ts) = &config.timestamp_field
        && replies
            .iter()
            .all(|r| r.get(columns.len()).is_none_or(Option::is_none))
    {
        report.problems.push((
            "store.timestamp_field".into(),
            format!("none of {n} sampled hashes `{template}` has a field `{ts}`"),
        ));
    }
    report.summary = format!(
        "Redis at {}: {n} sampled hashes `{template}` hold the {} declared features",
        s.name,
        columns.len()
    );
    Ok(report)
}
