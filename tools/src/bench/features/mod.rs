//! `scorestream bench --features redis|feast`: the feature join alone,
//! against a real Redis, at the demo's key cardinality. No broker: the
//! demo's events are generated, decoded in chunks of the job's
//! `source.chunk_rows` and run through a real [`FeatureJoin`] built from
//! the demo job with `[features.store]` pointing at the Redis, as
//! `scorestream run` would build it.
//!
//! The join runs on a single-threaded runtime of its own, so the process
//! CPU time taken around each `process` call is the join's (and its Redis
//! client's), not generation or decoding; Redis's own CPU is in another
//! process and not counted.

mod capture;
mod load;
mod server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use scorestream_operators::decode::{Decoder, JsonDecoder};
use scorestream_operators::features::{FeatureJoin, JoinPolicy, build_store};
use scorestream_operators::source::kafka::RawChunk;
use scorestream_operators::{Envelope, OperatorError};
use scorestream_pipeline::config::{JobConfig, load_str};
use scorestream_schemas::{EventSchema, columns};
use serde::Serialize;

use super::cpu_time;
use crate::ToolError;
use crate::demo::{DemoAssets, demo_world, generator_options};
use crate::synth::EventGen;
use capture::{CACHE_HITS, CACHE_MISSES, Capture, DECODE_ERRORS};
use load::{DemoFeatures, DemoStore};

/// Which Redis layout the features are written and read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureLayout {
    /// One hash per account, values as text (`layout = "hash"`).
    Redis,
    /// What `feast materialize` writes (`layout = "feast"`).
    Feast,
}

/// Where the Redis comes from.
#[derive(Debug, Clone)]
pub enum RedisTarget {
    Url(String),
    /// Start this redis-server on a free port for the run.
    Start(Option<PathBuf>),
}

#[derive(Debug, Clone)]
pub struct FeatureBenchOptions {
    pub layout: FeatureLayout,
    pub redis: RedisTarget,
    pub events: u64,
    pub seed: u64,
    /// `[features.cache] ttl`; zero turns the cache off.
    pub cache_ttl: Duration,
    pub cache_max_entries: u64,
    /// `[features.store] pipeline_keys`; the store's default when `None`.
    pub pipeline_keys: Option<usize>,
}

/// What one run measured. Lookups are keys asked of Redis (cache misses:
/// the store asks once per distinct key of a chunk not in the cache).
#[derive(Debug, Clone, Serialize)]
pub struct FeatureBenchReport {
    pub layout: FeatureLayout,
    /// The Redis used, password masked.
    pub redis_url: String,
    pub cache_ttl_ms: u64,
    pub cache_max_entries: u64,
    /// Distinct accounts in the store (the demo's key cardinality).
    pub entities: u64,
    pub events: u64,
    pub chunk_rows: u64,
    pub chunks: u64,
    /// Events that did not decode (the demo's malformed ones).
    pub dead_letters: u64,
    /// Rows out of the join: every decoded event, joined or flagged.
    pub rows_joined: u64,
    /// Rows with every feature found.
    pub rows_with_features: u64,
    /// Rows whose account the store does not have (the demo's unknown ones).
    pub rows_missing_features: u64,
    pub rows_unavailable: u64,
    pub lookups: u64,
    pub cache_hits: u64,
    /// Hits over hits and misses, per distinct key of a chunk.
    pub cache_hit_rate: f64,
    pub redis_round_trips: u64,
    /// Stored values the join could not read (0 unless the layout is wrong).
    pub decode_errors: u64,
    /// Wall time inside `FeatureJoin::process`, summed over the chunks.
    pub join_seconds: f64,
    pub events_per_second: f64,
    /// Lookups over `join_seconds`.
    pub lookups_per_second: f64,
    /// Per Redis round trip (one pipeline of HMGETs), as the store's
    /// `scorestream_feature_lookup_seconds` histogram records it.
    pub lookup_latency_p50_ms: f64,
    pub lookup_latency_p99_ms: f64,
    pub lookup_latency_max_ms: f64,
    /// Process CPU time inside `FeatureJoin::process`, summed over chunks.
    pub join_cpu_seconds: f64,
    pub join_cpu_us_per_event: f64,
}

/// Runs one measurement on a thread of its own (blocking the caller), with
/// its own single-threaded runtime and metrics capture.
pub fn run_feature_bench(
    assets: &DemoAssets,
    opts: &FeatureBenchOptions,
) -> Result<FeatureBenchReport, ToolError> {
    let features = DemoFeatures::parse(assets.features_csv)?;
    // Held until the run ends: dropping it stops the throwaway server.
    let (_server, url) = match &opts.redis {
        RedisTarget::Url(u) => (None, u.clone()),
        RedisTarget::Start(program) => {
            let s = server::ThrowawayRedis::start(
                program.as_deref().unwrap_or(&server::default_program()),
            )?;
            let url = s.url.clone();
            (Some(s), url)
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ToolError::io("starting the bench's runtime", e))?;
    let capture = Capture::new().map_err(ToolError::Incomplete)?;
    let run = load::run_id();
    let measured = metrics::with_local_recorder(&capture, || {
        rt.block_on(async {
            let mut store = DemoStore::load(&url, opts.layout, &run, &features).await?;
            let measured = measure(assets, opts, &url, &run, &features).await;
            // The keys go whether or not the run succeeded.
            let removed = store.remove().await;
            let m = measured?;
            removed?;
            Ok::<_, ToolError>(m)
        })
    })?;
    Ok(report(opts, &url, &features, &capture, measured))
}

/// Totals over the chunks.
#[derive(Debug, Default)]
struct Measured {
    chunk_rows: u64,
    chunks: u64,
    dead_letters: u64,
    rows_joined: u64,
    rows_with_features: u64,
    rows_missing_features: u64,
    rows_unavailable: u64,
    join_wall: Duration,
    join_cpu: Duration,
}

async fn measure(
    assets: &DemoAssets,
    opts: &FeatureBenchOptions,
    url: &str,
    run: &str,
    features: &DemoFeatures,
) -> Result<Measured, ToolError> {
    let config = bench_job(assets, opts, url, run, features)?;
    let events = EventSchema::try_new(config.schema.fields.clone()).map_err(OperatorError::from)?;
    let decoder = JsonDecoder::new(events, config.source.max_message_bytes.0 as usize);
    let policy = JoinPolicy::from_config(&config.features).map_err(ToolError::Incomplete)?;
    let store = build_store(&config.features)?;
    let join = FeatureJoin::try_new(store, decoder.output_schema(), &config.features.key, policy)
        .map_err(ToolError::Incomplete)?;

    let world = demo_world(assets)?;
    let mut generator = EventGen::new(&world, generator_options(opts.seed));
    let chunk_rows = config.source.chunk_rows.max(1) as u64;
    let mut m = Measured {
        chunk_rows,
        ..Measured::default()
    };
    let (mut buf, mut key) = (String::new(), String::new());
    let mut seq = 0u64;
    while seq < opts.events {
        let n = chunk_rows.min(opts.events - seq);
        let mut chunk = RawChunk::with_capacity(n as usize);
        for _ in 0..n {
            generator.next_into(&mut buf, &mut key);
            chunk.push(
                "bench",
                0,
                seq as i64,
                0,
                Some(key.as_bytes()),
                buf.as_bytes(),
            );
            seq += 1;
        }
        let decoded = decoder.decode(&chunk)?;
        let (cpu, wall) = (cpu_time(), Instant::now());
        let joined = join.process(decoded).await?;
        m.join_wall += wall.elapsed();
        m.join_cpu += cpu_time().saturating_sub(cpu);
        m.chunks += 1;
        count_rows(&joined, &mut m)?;
    }
    if m.rows_unavailable > 0 {
        return Err(ToolError::Incomplete(format!(
            "Redis at {} stopped answering during the run ({} rows joined without features); the figures would not mean anything",
            load::masked(url),
            m.rows_unavailable
        )));
    }
    Ok(m)
}

/// Counts rows by the flags the join set, and the dead letters of both
/// stages (the join passes on the decoder's).
fn count_rows(env: &Envelope, m: &mut Measured) -> Result<(), ToolError> {
    m.dead_letters += env.dead_letters.len() as u64;
    let Some(batch) = &env.batch else {
        return Ok(());
    };
    let flag = |name: &str| flag_column(batch, name);
    let missing = flag(columns::FEATURES_MISSING)?;
    let unavailable = flag(columns::FEATURES_UNAVAILABLE)?;
    let names = batch
        .column_by_name(columns::MISSING_FEATURES)
        .and_then(|c| c.as_list_opt::<i32>())
        .ok_or_else(|| internal(columns::MISSING_FEATURES))?;
    for i in 0..batch.num_rows() {
        m.rows_joined += 1;
        if unavailable.value(i) {
            m.rows_unavailable += 1;
        } else if missing.value(i) {
            m.rows_missing_features += 1;
        } else if names.value_length(i) == 0 {
            m.rows_with_features += 1;
        }
    }
    Ok(())
}

fn flag_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a arrow::array::BooleanArray, ToolError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_boolean_opt())
        .filter(|c| c.null_count() == 0)
        .ok_or_else(|| internal(name))
}

fn internal(column: &str) -> ToolError {
    ToolError::Incomplete(format!(
        "internal error: the join's output has no usable `{column}` column"
    ))
}

/// The demo job with `[features]` reading every demo feature from Redis.
fn bench_job(
    assets: &DemoAssets,
    opts: &FeatureBenchOptions,
    url: &str,
    run: &str,
    features: &DemoFeatures,
) -> Result<JobConfig, ToolError> {
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let layout = match opts.layout {
        FeatureLayout::Redis => format!("key_template = {}", quote(&load::hash_key_template(run))),
        FeatureLayout::Feast => format!(
            "layout = \"feast\", project = {}",
            quote(&load::feast_project(run))
        ),
    };
    let pipeline = opts
        .pipeline_keys
        .map(|k| format!(", pipeline_keys = {k}"))
        .unwrap_or_default();
    // Nothing is scored while the store is down (the job's default would
    // wait forever): a run with unavailable rows fails instead.
    let store = format!(
        "on_unavailable = \"defaults\"\nstore = {{ kind = \"redis\", url = {}, {layout}{pipeline} }}",
        quote(url)
    );
    let mut text = String::new();
    for line in assets.job_toml.lines() {
        text.push_str(if line.starts_with("store = ") {
            &store
        } else {
            line
        });
        text.push('\n');
    }
    for c in &features.columns {
        text.push_str(&format!(
            "\n[[features.columns]]\nname = {}\ntype = \"{}\"\n",
            quote(&c.name),
            c.toml_type
        ));
        if opts.layout == FeatureLayout::Feast {
            text.push_str(&format!("view = \"{}\"\n", load::FEAST_VIEW));
        }
    }
    text.push_str(&format!(
        "\n[features.cache]\nttl = \"{}ms\"\nmax_entries = {}\n",
        opts.cache_ttl.as_millis(),
        opts.cache_max_entries
    ));
    load_str(&text).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        ToolError::Incomplete(format!(
            "internal error: the bench's job config is invalid: {}",
            load::masked(&list.join("; "))
        ))
    })
}

fn report(
    opts: &FeatureBenchOptions,
    url: &str,
    features: &DemoFeatures,
    capture: &Capture,
    m: Measured,
) -> FeatureBenchReport {
    let hits = capture.counter(CACHE_HITS);
    let lookups = capture.counter(CACHE_MISSES);
    let trips = capture.round_trips();
    let seconds = m.join_wall.as_secs_f64();
    let per_second = |n: u64| n as f64 / seconds.max(f64::MIN_POSITIVE);
    let events = opts.events;
    FeatureBenchReport {
        layout: opts.layout,
        redis_url: load::masked(url),
        cache_ttl_ms: opts.cache_ttl.as_millis() as u64,
        cache_max_entries: opts.cache_max_entries,
        entities: features.entities() as u64,
        events,
        chunk_rows: m.chunk_rows,
        chunks: m.chunks,
        dead_letters: m.dead_letters,
        rows_joined: m.rows_joined,
        rows_with_features: m.rows_with_features,
        rows_missing_features: m.rows_missing_features,
        rows_unavailable: m.rows_unavailable,
        lookups,
        cache_hits: hits,
        cache_hit_rate: hits as f64 / (hits + lookups).max(1) as f64,
        redis_round_trips: trips.count,
        decode_errors: capture.counter(DECODE_ERRORS),
        join_seconds: seconds,
        events_per_second: per_second(events),
        lookups_per_second: per_second(lookups),
        lookup_latency_p50_ms: trips.p50_ms,
        lookup_latency_p99_ms: trips.p99_ms,
        lookup_latency_max_ms: trips.max_ms,
        join_cpu_seconds: m.join_cpu.as_secs_f64(),
        join_cpu_us_per_event: m.join_cpu.as_secs_f64() * 1e6 / events.max(1) as f64,
    }
}
