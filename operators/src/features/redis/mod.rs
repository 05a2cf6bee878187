//! Redis as the online feature store: one pipelined round trip per batch
//! (per `pipeline_keys` distinct keys), an in-process cache in front, and
//! reconnection handled by redis-rs's connection manager.

mod cache;
mod config;
mod feast;
mod feast_probe;
mod hash;
pub(crate) mod probe;
mod sample;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{BooleanArray, Int64Array, StringArray};
use arrow::datatypes::{Field, Schema, SchemaRef};
use futures::future::BoxFuture;
use metrics::{counter, histogram};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;
use tracing::warn;

pub(crate) use cache::FeatureCache;
pub(crate) use config::redact_url;
pub use config::{RedisLayout, RedisStoreConfig};
pub(crate) use feast::FeastLayout;
pub use feast::{feast_field, serialize_entity_key as feast_entity_key};
pub(crate) use hash::HashLayout;

use scorestream_schemas::ColumnType;

use super::values::{ColumnBuilder, EntityFeatures};
use super::{CacheConfig, FeatureColumn, FeatureRows, FeatureStore};
use crate::{OperatorError, Result};

/// How entities map to Redis keys and hash fields.
pub(super) trait Layout: Send + Sync {
    fn key(&self, entity: &str) -> Vec<u8>;
    /// The hash fields asked for, the same for every entity.
    fn fields(&self) -> &[Vec<u8>];
    /// Turns one HMGET reply (aligned with `fields`) into features;
    /// undecodable values become absent and are described in `problems`.
    fn decode(&self, reply: Vec<Option<Vec<u8>>>, problems: &mut Vec<String>) -> EntityFeatures;
}

/// Counters for the cache and the store, read by tests and status output
/// (the same numbers go to the metrics recorder).
#[derive(Debug, Default)]
pub(super) struct StoreStats {
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub stale_served: AtomicU64,
    pub redis_round_trips: AtomicU64,
    pub decode_errors: AtomicU64,
}

struct Inner {
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    /// For errors and logs: the URL with any password masked.
    name: String,
    layout: Box<dyn Layout>,
    types: Vec<ColumnType>,
    timeout: Duration,
    pipeline_keys: usize,
    cache: FeatureCache,
    refreshing: AtomicBool,
    stats: StoreStats,
}

pub(super) struct RedisFeatureStore {
    inner: Arc<Inner>,
    schema: SchemaRef,
}

impl RedisFeatureStore {
    /// Checks the URL; connects on the first lookup.
    pub(super) fn new(
        config: &RedisStoreConfig,
        job_key: &str,
        columns: &[FeatureColumn],
        cache: &CacheConfig,
    ) -> Result<Self> {
        let name = redact_url(&config.url);
        let client = redis::Client::open(config.url.as_str()).map_err(|e| {
            OperatorError::FeatureStoreConfig(format!(
                "url {name}: {}",
                redact_in(&e.to_string(), &config.url)
            ))
        })?;
        let layout: Box<dyn Layout> = match config.layout {
            RedisLayout::Hash => Box::new(HashLayout::new(
                config.key_template.as_deref().unwrap_or("{key}"),
                config.timestamp_field.as_deref(),
                columns,
            )),
            RedisLayout::Feast => Box::new(FeastLayout::new(
                config.project.as_deref().unwrap_or_default(),
                config.join_key.as_deref().unwrap_or(job_key),
                config.entity_key_serialization_version,
                columns,
            )?),
        };
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|c| Field::new(&c.name, c.kind.data_type(), true))
                .collect::<Vec<_>>(),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                conn: Mutex::new(None),
                name,
                layout,
                types: columns.iter().map(|c| c.kind).collect(),
                timeout: config.timeout.0,
                pipeline_keys: config.pipeline_keys.max(1),
                cache: FeatureCache::new(
                    cache.ttl.0,
                    cache.stale_while_revalidate.map(|d| d.0),
                    cache.max_entries,
                ),
                refreshing: AtomicBool::new(false),
                stats: StoreStats::default(),
            }),
            schema,
        })
    }

    /// Round trips and cache hits so far, for tests of the cache.
    #[cfg(test)]
    pub(super) fn stats(&self) -> &StoreStats {
        &self.inner.stats
    }

    #[cfg(test)]
    pub(super) fn cached_entities(&self) -> u64 {
        self.inner.cache.len()
    }

    async fn lookup_now(&self, keys: &StringArray) -> Result<FeatureRows> {
        let inner = &self.inner;
        // Distinct keys, each answered once from the cache or Redis.
        let mut slot: HashMap<&str, usize> = HashMap::new();
        let mut answers: Vec<Option<Arc<EntityFeatures>>> = Vec::new();
        let mut misses: Vec<(usize, &str)> = Vec::new();
        let mut stale: Vec<String> = Vec::new();
        let rows: Vec<Option<usize>> = keys
            .iter()
            .map(|k| {
                let k = k?;
                Some(*slot.entry(k).or_insert_with(|| {
                    let i = answers.len();
                    match inner.cache.get(k) {
                        cache::Hit::Fresh(c) => answers.push(c.features),
                        cache::Hit::Stale(c) => {
                            answers.push(c.features);
                            stale.push(k.to_owned());
                        }
                        cache::Hit::Miss => {
                            answers.push(None);
                            misses.push((i, k));
                        }
                    }
                    i
                }))
            })
            .collect();
        let hits = (answers.len() - misses.len()) as u64;
        inner.stats.cache_hits.fetch_add(hits, Ordering::Relaxed);
        inner
            .stats
            .cache_misses
            .fetch_add(misses.len() as u64, Ordering::Relaxed);
        inner
            .stats
            .stale_served
            .fetch_add(stale.len() as u64, Ordering::Relaxed);
        counter!("scorestream_feature_cache_hits_total").increment(hits);
        counter!("scorestream_feature_cache_misses_total").increment(misses.len() as u64);
        counter!("scorestream_feature_cache_stale_served_total").increment(stale.len() as u64);

        if !misses.is_empty() {
            let wanted: Vec<&str> = misses.iter().map(|(_, k)| *k).collect();
            let fetched = inner.fetch(&wanted).await?;
            for ((i, k), f) in misses.iter().zip(fetched) {
                inner.cache.insert((*k).to_owned(), f.clone());
                answers[*i] = f;
            }
        }
        if !stale.is_empty() {
            Inner::refresh(inner.clone(), stale);
        }
        Ok(inner.assemble(&rows, &answers))
    }
}

impl Inner {
    async fn connection(&self) -> Result<ConnectionManager> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            // The join retries with its own backoff and policy; the manager
            // only reconnects in the background.
            .set_number_of_retries(1);
        let c = tokio::time::timeout(
            self.timeout,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| self.unavailable(format!("no connection within {:?}", self.timeout)))?
        .map_err(|e| self.classify(e))?;
        *guard = Some(c.clone());
        Ok(c)
    }

    fn unavailable(&self, reason: String) -> OperatorError {
        OperatorError::FeatureStoreUnavailable {
            store: format!("redis {}", self.name),
            reason,
        }
    }

    /// [`fetch_once`](Self::fetch_once), and once more on a new connection
    /// if the old one failed: after a Redis restart the first request on the
    /// old connection fails even though the server is back.
    async fn fetch(&self, keys: &[&str]) -> Result<Vec<Option<Arc<EntityFeatures>>>> {
        match self.fetch_once(keys).await {
            Err(OperatorError::FeatureStoreUnavailable { .. }) => {
                *self.conn.lock().await = None;
                let second = self.fetch_once(keys).await;
                if matches!(second, Err(OperatorError::FeatureStoreUnavailable { .. })) {
                    *self.conn.lock().await = None;
                }
                second
            }
            other => other,
        }
    }

    /// One HMGET per key, `pipeline_keys` per round trip; `None` for keys
    /// with none of the fields (no such entity).
    async fn fetch_once(&self, keys: &[&str]) -> Result<Vec<Option<Arc<EntityFeatures>>>> {
        let mut conn = self.connection().await?;
        let fields = self.layout.fields();
        let mut out = Vec::with_capacity(keys.len());
        let mut problems = Vec::new();
        for chunk in keys.chunks(self.pipeline_keys) {
            let mut pipe = redis::pipe();
            for k in chunk {
                pipe.cmd("HMGET").arg(self.layout.key(k)).arg(fields);
            }
            let started = Instant::now();
            let replies: Vec<Vec<Option<Vec<u8>>>> =
                tokio::time::timeout(self.timeout, pipe.query_async(&mut conn))
                    .await
                    .map_err(|_| self.unavailable(format!("no answer within {:?}", self.timeout)))?
                    .map_err(|e| self.classify(e))?;
            histogram!("scorestream_feature_lookup_seconds")
                .record(started.elapsed().as_secs_f64());
            self.stats.redis_round_trips.fetch_add(1, Ordering::Relaxed);
            for (k, reply) in chunk.iter().zip(replies) {
                if reply.iter().all(Option::is_none) {
                    out.push(None);
                    continue;
                }
                let before = problems.len();
                let f = self.layout.decode(reply, &mut problems);
                for p in &mut problems[before..] {
                    *p = format!("key `{k}`: {p}");
                }
                out.push(Some(Arc::new(f)));
            }
        }
        if !problems.is_empty() {
            self.stats
                .decode_errors
                .fetch_add(problems.len() as u64, Ordering::Relaxed);
            counter!("scorestream_feature_decode_errors_total").increment(problems.len() as u64);
            warn!(
                store = %self.name,
                count = problems.len(),
                first = %problems[0],
                "feature values that cannot be read are treated as missing"
            );
        }
        Ok(out)
    }

    /// Connection trouble is an outage the job's policy handles; anything
    /// else (a key holding a string, not a hash) is a broken store.
    fn classify(&self, e: redis::RedisError) -> OperatorError {
        if e.kind() == redis::ErrorKind::AuthenticationFailed {
            return OperatorError::FeatureStoreConfig(format!("redis {}: {e}", self.name));
        }
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_unrecoverable_error()
        {
            self.unavailable(e.to_string())
        } else {
            OperatorError::FeatureStoreData {
                store: format!("redis {}", self.name),
                reason: e.to_string(),
            }
        }
    }

    /// Re-reads keys served stale, in the background, one refresh at a time.
    fn refresh(inner: Arc<Self>, keys: Vec<String>) {
        if inner.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(async move {
            let wanted: Vec<&str> = keys.iter().map(String::as_str).collect();
            match inner.fetch(&wanted).await {
                Ok(fetched) => {
                    for (k, f) in keys.iter().zip(fetched) {
                        inner.cache.insert(k.clone(), f);
                    }
                }
                Err(e) => warn!(error = %e, "background refresh of stale features failed"),
            }
            inner.refreshing.store(false, Ordering::Release);
        });
    }

    /// Columns aligned with the batch's rows.
    fn assemble(
        &self,
        rows: &[Option<usize>],
        answers: &[Option<Arc<EntityFeatures>>],
    ) -> FeatureRows {
        let n = rows.len();
        let mut builders: Vec<ColumnBuilder> = self
            .types
            .iter()
            .map(|t| ColumnBuilder::new(*t, n))
            .collect();
        let mut written: Vec<Vec<Option<i64>>> = vec![Vec::with_capacity(n); self.types.len()];
        let mut found = Vec::with_capacity(n);
        for r in rows {
            let f = r.and_then(|i| answers[i].as_deref());
            found.push(f.is_some());
            for (j, b) in builders.iter_mut().enumerate() {
                b.push(f.and_then(|f| f.values.get(j)).and_then(Option::as_ref));
                written[j].push(f.and_then(|f| f.written_at_ms.get(j).copied().flatten()));
            }
        }
        FeatureRows {
            columns: builders.into_iter().map(ColumnBuilder::finish).collect(),
            found: BooleanArray::from(found),
            written_at_ms: written
                .into_iter()
                .map(|w| Some(Int64Array::from(w)))
                .collect(),
        }
    }
}

/// Removes the URL's password from a message that might quote it.
fn redact_in(text: &str, url: &str) -> String {
    match redis::parse_redis_url(url).and_then(|u| u.password().map(str::to_owned)) {
        Some(p) => scorestream_schemas::redact(text, [p.as_str()]),
        None => text.to_owned(),
    }
}

impl FeatureStore for RedisFeatureStore {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn lookup<'a>(&'a self, keys: &'a StringArray) -> BoxFuture<'a, Result<FeatureRows>> {
        Box::pin(self.lookup_now(keys))
    }
}
