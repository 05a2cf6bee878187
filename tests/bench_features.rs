//! `scorestream bench --features redis|feast`: the feature join alone
//! against a real redis-server. It must join every event it generated
//! (features for every known account, none for the unknown ones), ask
//! Redis no more than the cache lets through, report figures that fit what
//! happened, and leave the database as it found it. How fast it was is for
//! BENCHMARKS.md, not for a test.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::process::*;
use common::redis_server::RedisServer;
use scorestream_tools::demo::{EMBEDDED, demo_world, generator_options};
use scorestream_tools::synth::{EventGen, EventKind};

const EVENTS: u64 = 6_000;
/// The demo job's `source.chunk_rows`: the bench decodes and joins chunks
/// of this size, as the job does.
const CHUNK_ROWS: usize = 4096;

/// What the bench's events are, replayed from the same generator: the
/// kinds, and the distinct accounts of well-formed events per chunk and
/// over the whole run.
struct Expected {
    good: u64,
    unknown: u64,
    malformed: u64,
    distinct_per_chunk: u64,
    distinct: u64,
}

fn expected() -> Expected {
    let world = demo_world(&EMBEDDED).expect("world");
    let mut g = EventGen::new(&world, generator_options(7));
    let (mut buf, mut key) = (String::new(), String::new());
    let mut e = Expected {
        good: 0,
        unknown: 0,
        malformed: 0,
        distinct_per_chunk: 0,
        distinct: 0,
    };
    let (mut chunk, mut all) = (HashSet::new(), HashSet::new());
    for i in 0..EVENTS as usize {
        if i % CHUNK_ROWS == 0 {
            e.distinct_per_chunk += chunk.len() as u64;
            chunk.clear();
        }
        match g.next_into(&mut buf, &mut key) {
            EventKind::Malformed => {
                e.malformed += 1;
                continue;
            }
            EventKind::Good { .. } => e.good += 1,
            EventKind::UnknownAccount => e.unknown += 1,
        }
        chunk.insert(key.clone());
        all.insert(key.clone());
    }
    e.distinct_per_chunk += chunk.len() as u64;
    e.distinct = all.len() as u64;
    e
}

fn bench(dir: &Path, args: &[&str], name: &str) -> (String, serde_json::Value) {
    let json = dir.join(format!("{name}.json"));
    let events = EVENTS.to_string();
    let o = run(bin()
        .args(["bench", "--events", events.as_str(), "--json"])
        .arg(&json)
        .args(args)
        .env_remove("SCORESTREAM_BENCH_BROKERS"));
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    let report = serde_json::from_slice(&std::fs::read(&json).expect("report")).expect("json");
    (stdout, report)
}

fn check(r: &serde_json::Value, e: &Expected, cache_on: bool) {
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert_eq!(n("events"), EVENTS, "{r}");
    assert_eq!(n("entities"), 20_000, "the demo's accounts: {r}");
    // Every event joined: rows out are the events in, less the malformed.
    assert_eq!(n("dead_letters"), e.malformed, "{r}");
    assert_eq!(n("rows_joined") + n("dead_letters"), EVENTS, "{r}");
    assert_eq!(n("rows_with_features"), e.good, "{r}");
    assert_eq!(n("rows_missing_features"), e.unknown, "{r}");
    assert_eq!(n("rows_unavailable"), 0, "{r}");
    assert_eq!(n("decode_errors"), 0, "{r}");
    // Redis is asked once per distinct key not cached: per chunk without
    // the cache, once per run with it.
    let lookups = n("lookups");
    assert!(lookups > 0 && lookups <= EVENTS, "{r}");
    let hit_rate = f("cache_hit_rate");
    assert!((0.0..=1.0).contains(&hit_rate), "{r}");
    if cache_on {
        assert_eq!(lookups, e.distinct, "{r}");
        assert!(hit_rate > 0.0, "{r}");
        assert_eq!(n("cache_hits") + lookups, e.distinct_per_chunk, "{r}");
    } else {
        assert_eq!(lookups, e.distinct_per_chunk, "{r}");
        assert_eq!(hit_rate, 0.0, "{r}");
        assert_eq!(n("cache_hits"), 0, "{r}");
    }
    assert!(
        n("redis_round_trips") >= 2 && n("redis_round_trips") <= lookups,
        "{r}"
    );
    let (p50, p99) = (f("lookup_latency_p50_ms"), f("lookup_latency_p99_ms"));
    assert!(
        p50 > 0.0 && p50 <= p99 && p99 <= f("lookup_latency_max_ms"),
        "{r}"
    );
    assert!(
        f("join_seconds") > 0.0 && f("join_cpu_us_per_event") > 0.0,
        "{r}"
    );
    let lps = lookups as f64 / f("join_seconds");
    assert!((f("lookups_per_second") - lps).abs() / lps < 1e-6, "{r}");
    assert!(f("events_per_second") > 0.0, "{r}");
}

#[test]
fn bench_features_joins_every_event_from_real_redis_in_both_layouts() {
    let dir = tempfile::tempdir().expect("tmp");
    let redis = RedisServer::start(&dir.path().join("redis"));
    let mut c = redis.client().get_connection().expect("connection");
    // Someone else's data in the same database: left alone.
    redis::cmd("SET")
        .arg("theirs")
        .arg("keep")
        .query::<()>(&mut c)
        .expect("set");
    let e = expected();
    let url = redis.url();
    for layout in ["redis", "feast"] {
        for cache in ["on", "off"] {
            let name = format!("{layout}-{cache}");
            let args = ["--features", layout, "--redis-url", &url, "--cache", cache];
            let (stdout, r) = bench(dir.path(), &args, &name);
            assert_eq!(r["layout"], layout, "{r}");
            assert!(stdout.contains("cache hit rate"), "{stdout}");
            assert!(stdout.contains("join CPU per event"), "{stdout}");
            check(&r, &e, cache == "on");
        }
    }
    let size: u64 = redis::cmd("DBSIZE").query(&mut c).expect("dbsize");
    assert_eq!(size, 1, "the bench removes its keys and only its keys");
    let theirs: String = redis::cmd("GET").arg("theirs").query(&mut c).expect("get");
    assert_eq!(theirs, "keep");
}

#[test]
fn bench_features_starts_a_throwaway_redis_when_given_no_url() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_, r) = bench(dir.path(), &["--features", "feast"], "throwaway");
    check(&r, &expected(), true);
    assert!(
        r["redis_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("redis://127.0.0.1:")),
        "{r}"
    );

    let o = run(bin()
        .args(["bench", "--features", "redis", "--redis-server"])
        .arg(dir.path().join("no-such-redis-server")));
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("--redis-server") && err.contains("no-such-redis-server"),
        "{err}"
    );
}

#[test]
fn bench_features_names_an_unreachable_redis_without_its_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("redis://:hunter2secret@127.0.0.1:{port}/0");
    let o = run(bin().args(["bench", "--features", "redis", "--redis-url", &url]));
    assert!(!o.status.success());
    let err = text(&o.stderr) + &text(&o.stdout);
    assert!(
        err.contains(&format!(
            "cannot reach Redis at redis://:<redacted>@127.0.0.1:{port}/0"
        )),
        "{err}"
    );
    assert!(!err.contains("hunter2secret"), "{err}");
}

#[test]
fn bench_still_needs_a_broker_without_features() {
    let o = run(bin()
        .args(["bench", "--events", "10"])
        .env_remove("SCORESTREAM_BENCH_BROKERS"));
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("--brokers"), "{}", text(&o.stderr));
    let o = run(bin().args(["bench", "--features", "redis", "--source-only"]));
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("cannot be used with"),
        "{}",
        text(&o.stderr)
    );
}
