//! The demo's features written to Redis in the layout under test, under
//! names only this run uses: hashes `scorestream-bench:<run>:acct:<id>`, or
//! Feast entity keys in the project `scorestream_bench_<run>`. Nothing else
//! in the database is read or touched, and [`DemoStore::remove`] deletes
//! exactly the keys written, so the bench may share a Redis with other data.

use std::io::Cursor;
use std::time::Duration;

use arrow::csv::reader::Format;
use arrow::datatypes::DataType;
use redis::aio::MultiplexedConnection;
use scorestream_operators::features::{feast_entity_key, feast_field};
use scorestream_schemas::redact;

use super::FeatureLayout;
use crate::ToolError;

/// Keys per pipelined write or delete: bounded requests, few round trips.
const WRITE_BATCH: usize = 1000;
/// The Feast feature view every demo feature belongs to.
pub(super) const FEAST_VIEW: &str = "account_features";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A feature of the demo file and the type the job declares for it.
pub(super) struct Column {
    pub name: String,
    pub toml_type: &'static str,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Float,
    Text,
}

/// The demo's feature file, parsed: its columns after the key, and rows.
pub(super) struct DemoFeatures {
    pub columns: Vec<Column>,
    rows: Vec<(String, Vec<String>)>,
}

impl DemoFeatures {
    /// Types come from arrow's CSV inference, as the file store infers them.
    pub(super) fn parse(csv: &[u8]) -> Result<Self, ToolError> {
        let bad = |e: String| ToolError::Incomplete(format!("the demo's feature file: {e}"));
        let (schema, _) = Format::default()
            .with_header(true)
            .infer_schema(Cursor::new(csv), None)
            .map_err(|e| bad(e.to_string()))?;
        let columns = schema
            .fields()
            .iter()
            .skip(1)
            .map(|f| {
                let (toml_type, kind) = match f.data_type() {
                    DataType::Int64 => ("int64", Kind::Int),
                    DataType::Float64 => ("float64", Kind::Float),
                    _ => ("string", Kind::Text),
                };
                Column {
                    name: f.name().clone(),
                    toml_type,
                    kind,
                }
            })
            .collect::<Vec<_>>();
        let text = std::str::from_utf8(csv).map_err(|e| bad(e.to_string()))?;
        let mut rows = Vec::new();
        for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
            let mut values = line.split(',').map(str::to_owned);
            let key = values.next().unwrap_or_default();
            let values: Vec<String> = values.collect();
            if values.len() != columns.len() {
                return Err(bad(format!("row for `{key}` has {} values", values.len())));
            }
            rows.push((key, values));
        }
        Ok(Self { columns, rows })
    }

    /// Distinct entity keys: the demo's key cardinality.
    pub(super) fn entities(&self) -> usize {
        self.rows.len()
    }
}

/// Names a run's keys after it, so concurrent or crashed runs never collide.
pub(super) fn run_id() -> String {
    format!("{}-{}", scorestream_operators::now_ms(), std::process::id())
}

pub(super) fn hash_key_template(run: &str) -> String {
    format!("scorestream-bench:{run}:acct:{{key}}")
}

pub(super) fn feast_project(run: &str) -> String {
    format!("scorestream_bench_{}", run.replace('-', "_"))
}

/// The URL as it may be shown: any password masked.
pub(super) fn masked(url: &str) -> String {
    match redis::parse_redis_url(url).and_then(|u| u.password().map(str::to_owned)) {
        Some(p) => redact(url, [p.as_str()]),
        None => url.to_owned(),
    }
}

/// The keys this run wrote, on an open connection.
pub(super) struct DemoStore {
    conn: MultiplexedConnection,
    keys: Vec<Vec<u8>>,
    url: String,
}

impl DemoStore {
    /// Connects (failing with the masked URL if Redis cannot be reached)
    /// and writes every entity of `features`.
    pub(super) async fn load(
        url: &str,
        layout: FeatureLayout,
        run: &str,
        features: &DemoFeatures,
    ) -> Result<Self, ToolError> {
        let name = masked(url);
        let unreachable = |e: &dyn std::fmt::Display| {
            let text = redact_in(&e.to_string(), url);
            ToolError::Incomplete(format!("cannot reach Redis at {name}: {text}"))
        };
        let client = redis::Client::open(url).map_err(|e| ToolError::BadOption {
            option: "--redis-url",
            reason: format!("{name}: {}", redact_in(&e.to_string(), url)),
        })?;
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| unreachable(&format!("no connection within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| unreachable(&e))?;
        let mut store = Self {
            conn,
            keys: Vec::with_capacity(features.rows.len()),
            url: url.to_owned(),
        };
        let writes: Vec<Entry> = match layout {
            FeatureLayout::Redis => hash_entries(features, &hash_key_template(run)),
            FeatureLayout::Feast => feast_entries(features, &feast_project(run)),
        };
        for batch in writes.chunks(WRITE_BATCH) {
            let mut pipe = redis::pipe();
            for (key, fields) in batch {
                pipe.hset_multiple(key, fields).ignore();
                store.keys.push(key.clone());
            }
            if let Err(e) = pipe.query_async::<()>(&mut store.conn).await {
                let _ = store.remove().await;
                return Err(unreachable(&format!("writing the demo's features: {e}")));
            }
        }
        Ok(store)
    }

    /// Deletes every key [`load`](Self::load) wrote.
    pub(super) async fn remove(&mut self) -> Result<(), ToolError> {
        for batch in self.keys.chunks(WRITE_BATCH) {
            redis::cmd("DEL")
                .arg(batch)
                .query_async::<()>(&mut self.conn)
                .await
                .map_err(|e| {
                    ToolError::Incomplete(format!(
                        "removing the bench's keys from Redis at {}: {}",
                        masked(&self.url),
                        redact_in(&e.to_string(), &self.url)
                    ))
                })?;
        }
        self.keys.clear();
        Ok(())
    }
}

fn redact_in(text: &str, url: &str) -> String {
    match redis::parse_redis_url(url).and_then(|u| u.password().map(str::to_owned)) {
        Some(p) => redact(text, [p.as_str()]),
        None => text.to_owned(),
    }
}

type Entry = (Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);

/// One hash per account, values as text, as the hash layout reads them.
fn hash_entries(features: &DemoFeatures, template: &str) -> Vec<Entry> {
    features
        .rows
        .iter()
        .map(|(key, values)| {
            let fields = features
                .columns
                .iter()
                .zip(values)
                .map(|(c, v)| (c.name.clone().into_bytes(), v.clone().into_bytes()))
                .collect();
            (template.replace("{key}", key).into_bytes(), fields)
        })
        .collect()
}

/// What `feast materialize` writes for one entity: see
/// `tests/fixtures/feast/LAYOUT.md` for the layout.
fn feast_entries(features: &DemoFeatures, project: &str) -> Vec<Entry> {
    let now = scorestream_operators::now_ms();
    let ts = feast_timestamp(
        now.div_euclid(1000),
        (now.rem_euclid(1000) * 1_000_000) as i32,
    );
    features
        .rows
        .iter()
        .map(|(key, values)| {
            let mut fields: Vec<(Vec<u8>, Vec<u8>)> = features
                .columns
                .iter()
                .zip(values)
                .map(|(c, v)| (feast_field(FEAST_VIEW, &c.name), feast_value(c.kind, v)))
                .collect();
            fields.push((format!("_ts:{FEAST_VIEW}").into_bytes(), ts.clone()));
            let mut k = feast_entity_key("account_id", key, 3);
            k.extend_from_slice(project.as_bytes());
            (k, fields)
        })
        .collect()
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A protobuf `feast.types.Value`: `int64_val` (field 4), `double_val` (5)
/// or `string_val` (2). A value that does not parse as its column's type
/// is written as a string, which the join then reports.
fn feast_value(kind: Kind, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    match (kind, text.parse::<i64>(), text.parse::<f64>()) {
        (Kind::Int, Ok(i), _) => {
            out.push(4 << 3);
            varint(i as u64, &mut out);
        }
        (Kind::Float, _, Ok(x)) => {
            out.push((5 << 3) | 1);
            out.extend_from_slice(&x.to_le_bytes());
        }
        _ => {
            out.push((2 << 3) | 2);
            varint(text.len() as u64, &mut out);
            out.extend_from_slice(text.as_bytes());
        }
    }
    out
}

/// A protobuf `google.protobuf.Timestamp`.
fn feast_timestamp(seconds: i64, nanos: i32) -> Vec<u8> {
    let mut out = vec![1 << 3];
    varint(seconds as u64, &mut out);
    if nanos != 0 {
        out.push(2 << 3);
        varint(nanos as u64, &mut out);
    }
    out
}
