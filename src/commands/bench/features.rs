//! `scorestream bench --features redis|feast`: the feature join alone
//! against a real Redis (see `scorestream_tools::bench::run_feature_bench`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use scorestream_tools::bench::{
    FeatureBenchOptions, FeatureBenchReport, FeatureLayout, RedisTarget, run_feature_bench,
};

use crate::commands::say;
use crate::progress::thousands;

#[derive(Clone, Copy, clap::ValueEnum)]
pub(super) enum Layout {
    /// One hash per account, values as text (`layout = "hash"`).
    Redis,
    /// What `feast materialize` writes (`layout = "feast"`).
    Feast,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Cache {
    On,
    Off,
}

#[derive(clap::Args)]
pub(super) struct FeatureArgs {
    /// Benchmark only the feature join against a real Redis, in this
    /// layout, instead of the whole job against a broker.
    #[arg(long, value_enum, conflicts_with_all = ["rate", "source_only", "target_latency", "model", "partitions"])]
    pub(super) features: Option<Layout>,
    /// The Redis to load the demo's features into (under keys the bench
    /// owns and deletes afterwards). Without it, a throwaway redis-server
    /// is started on a free port.
    #[arg(long, requires = "features", env = "SCORESTREAM_BENCH_REDIS_URL")]
    redis_url: Option<String>,
    /// The redis-server to start when no --redis-url is given.
    #[arg(long, requires = "features", conflicts_with = "redis_url")]
    redis_server: Option<PathBuf>,
    /// The in-process cache in front of Redis (`[features.cache]`).
    #[arg(long, value_enum, default_value = "on", requires = "features")]
    cache: Cache,
    /// `[features.cache] ttl` when the cache is on.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s", requires = "features")]
    cache_ttl: Duration,
    /// `[features.cache] max_entries`.
    #[arg(long, default_value_t = 100_000, requires = "features")]
    cache_max_entries: u64,
    /// `[features.store] pipeline_keys`: keys per Redis round trip.
    #[arg(long, requires = "features")]
    pipeline_keys: Option<usize>,
}

pub(super) async fn run(
    layout: Layout,
    events: u64,
    seed: u64,
    json: Option<PathBuf>,
    args: FeatureArgs,
) -> anyhow::Result<()> {
    let opts = FeatureBenchOptions {
        layout: match layout {
            Layout::Redis => FeatureLayout::Redis,
            Layout::Feast => FeatureLayout::Feast,
        },
        redis: match args.redis_url {
            Some(url) => RedisTarget::Url(url),
            None => RedisTarget::Start(args.redis_server),
        },
        events,
        seed,
        cache_ttl: match args.cache {
            Cache::On => args.cache_ttl,
            Cache::Off => Duration::ZERO,
        },
        cache_max_entries: args.cache_max_entries,
        pipeline_keys: args.pipeline_keys,
    };
    say(format!(
        "joining {} demo events with features from Redis ({:?} layout)",
        thousands(events),
        opts.layout
    ));
    let report = tokio::task::spawn_blocking(move || {
        run_feature_bench(&scorestream_tools::demo::EMBEDDED, &opts)
    })
    .await
    .context("the feature bench panicked")?
    .context("feature bench failed")?;
    println!("{}", render(&report));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn render(r: &FeatureBenchReport) -> String {
    let cache = if r.cache_ttl_ms == 0 {
        "cache off".to_owned()
    } else {
        format!(
            "cache ttl {} ms, {} entries",
            r.cache_ttl_ms,
            thousands(r.cache_max_entries)
        )
    };
    format!(
        "scorestream bench --features {layout}: {events} events, {entities} accounts, {cache}\n\
         redis                                  {url}\n\
         rows joined                            {joined} ({with} with every feature, {missing} unknown accounts; {dead} dead letters)\n\
         events/s through the join              {eps}\n\
         lookups (keys asked of Redis)          {lookups} ({lps}/s)\n\
         Redis round trips                      {trips} (latency p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms)\n\
         cache hit rate                         {hit:.4}\n\
         join CPU per event                     {cpu:.3} µs ({cpu_s:.2} s in all, {secs:.2} s wall)\n\
         decode errors                          {decode}\n",
        layout = match r.layout {
            FeatureLayout::Redis => "redis",
            FeatureLayout::Feast => "feast",
        },
        events = thousands(r.events),
        entities = thousands(r.entities),
        url = r.redis_url,
        joined = thousands(r.rows_joined),
        with = thousands(r.rows_with_features),
        missing = thousands(r.rows_missing_features),
        dead = thousands(r.dead_letters),
        eps = thousands(r.events_per_second as u64),
        lookups = thousands(r.lookups),
        lps = thousands(r.lookups_per_second as u64),
        trips = thousands(r.redis_round_trips),
        p50 = r.lookup_latency_p50_ms,
        p99 = r.lookup_latency_p99_ms,
        max = r.lookup_latency_max_ms,
        hit = r.cache_hit_rate,
        cpu = r.join_cpu_us_per_event,
        cpu_s = r.join_cpu_seconds,
        secs = r.join_seconds,
        decode = thousands(r.decode_errors),
    )
}
