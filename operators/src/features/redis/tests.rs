//! Against a real redis-server (Debian's package; `.ci/run` installs it),
//! started on a free loopback port per test.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::{Float32Type, Float64Type, Int32Type, Int64Type};

use super::feast::{feast_field, serialize_entity_key};
use super::*;
use crate::config::HumanDuration;
use crate::features::FeatureValue;
use crate::features::toml_value::Scalar;

pub(super) struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    pub(super) fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it (`apt-get install redis-server`, what .ci/run does)")
            });
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Self { child, port }
    }

    pub(super) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("client")
            .get_connection()
            .expect("connection")
    }

    fn hset(&self, key: &[u8], fields: &[(&[u8], &[u8])]) {
        let mut c = self.conn();
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key);
        for (f, v) in fields {
            cmd.arg(*f).arg(*v);
        }
        cmd.query::<()>(&mut c).expect("HSET");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn column(name: &str, kind: ColumnType) -> FeatureColumn {
    FeatureColumn {
        name: name.into(),
        kind,
        view: None,
        max_age: None,
        default: None,
    }
}

fn hash_config(url: &str) -> RedisStoreConfig {
    toml::from_str(&format!(
        "url = \"{url}\"\nkey_template = \"acct:{{key}}\"\ntimestamp_field = \"updated_at\""
    ))
    .expect("config")
}

fn hash_store(url: &str, cache: CacheConfig) -> RedisFeatureStore {
    let columns = [
        column("avg", ColumnType::Float64),
        column("count", ColumnType::Int64),
        column("country", ColumnType::String),
        column("verified", ColumnType::Bool),
    ];
    RedisFeatureStore::new(&hash_config(url), "account_id", &columns, &cache).expect("store")
}

fn no_cache() -> CacheConfig {
    CacheConfig {
        ttl: HumanDuration(Duration::ZERO),
        ..CacheConfig::default()
    }
}

#[tokio::test]
async fn a_batch_is_one_pipelined_round_trip_with_duplicates_and_unknown_keys() {
    let redis = RedisServer::start();
    redis.hset(
        b"acct:a",
        &[
            (b"avg", b"10.5"),
            (b"count", b"3"),
            (b"country", b"DE"),
            (b"verified", b"1"),
            (b"updated_at", b"2026-11-01T00:00:00Z"),
        ],
    );
    redis.hset(b"acct:b", &[(b"avg", b"2"), (b"updated_at", b"1767225600")]);
    let store = hash_store(&redis.url(), no_cache());
    let keys = StringArray::from(vec![Some("b"), Some("a"), None, Some("zz"), Some("a")]);
    let rows = store.lookup(&keys).await.expect("lookup");

    assert_eq!(store.stats().redis_round_trips.load(Ordering::Relaxed), 1);
    let found: Vec<bool> = rows.found.iter().map(|f| f == Some(true)).collect();
    assert_eq!(found, [true, true, false, false, true]);
    let avg = rows.columns[0].as_primitive::<Float64Type>();
    assert_eq!(
        (avg.value(0), avg.value(1), avg.value(4)),
        (2.0, 10.5, 10.5)
    );
    assert!(avg.is_null(2) && avg.is_null(3));
    let count = rows.columns[1].as_primitive::<Int64Type>();
    assert!(count.is_null(0), "b has no count field");
    assert_eq!(count.value(1), 3);
    assert_eq!(rows.columns[2].as_string::<i32>().value(1), "DE");
    assert!(rows.columns[3].as_boolean().value(1));
    let written = rows.written_at_ms[0].as_ref().expect("timestamps");
    assert_eq!(written.value(0), 1_767_225_600_000, "epoch seconds");
    assert_eq!(written.value(1), 1_793_491_200_000, "RFC 3339");
}

#[tokio::test]
async fn the_cache_answers_repeats_and_expires() {
    let redis = RedisServer::start();
    redis.hset(b"acct:a", &[(b"avg", b"1")]);
    let cache = CacheConfig {
        ttl: HumanDuration(Duration::from_millis(300)),
        stale_while_revalidate: None,
        max_entries: 1000,
    };
    let store = hash_store(&redis.url(), cache);
    let keys = StringArray::from(vec!["a", "nobody"]);
    store.lookup(&keys).await.expect("first");
    redis.hset(b"acct:a", &[(b"avg", b"2")]);
    let rows = store.lookup(&keys).await.expect("cached");
    let s = store.stats();
    assert_eq!(s.redis_round_trips.load(Ordering::Relaxed), 1);
    assert_eq!(
        s.cache_hits.load(Ordering::Relaxed),
        2,
        "both, the unknown one too"
    );
    assert_eq!(rows.columns[0].as_primitive::<Float64Type>().value(0), 1.0);

    tokio::time::sleep(Duration::from_millis(400)).await;
    let rows = store.lookup(&keys).await.expect("expired");
    assert_eq!(s.redis_round_trips.load(Ordering::Relaxed), 2);
    assert_eq!(rows.columns[0].as_primitive::<Float64Type>().value(0), 2.0);
}

#[tokio::test]
async fn the_cache_holds_at_most_max_entries() {
    let redis = RedisServer::start();
    let cache = CacheConfig {
        ttl: HumanDuration(Duration::from_secs(60)),
        stale_while_revalidate: None,
        max_entries: 100,
    };
    let store = hash_store(&redis.url(), cache);
    let keys: Vec<String> = (0..5_000).map(|i| format!("k{i}")).collect();
    let keys = StringArray::from(keys);
    store.lookup(&keys).await.expect("lookup");
    let held = store.cached_entities();
    assert!(held <= 100, "{held} entries cached");
}

#[tokio::test]
async fn stale_answers_are_served_while_refreshed_in_the_background() {
    let redis = RedisServer::start();
    redis.hset(b"acct:a", &[(b"avg", b"1")]);
    let cache = CacheConfig {
        ttl: HumanDuration(Duration::from_millis(100)),
        stale_while_revalidate: Some(HumanDuration(Duration::from_secs(30))),
        max_entries: 1000,
    };
    let store = hash_store(&redis.url(), cache);
    let keys = StringArray::from(vec!["a"]);
    store.lookup(&keys).await.expect("first");
    redis.hset(b"acct:a", &[(b"avg", b"2")]);
    tokio::time::sleep(Duration::from_millis(150)).await;

    let rows = store.lookup(&keys).await.expect("stale");
    assert_eq!(
        rows.columns[0].as_primitive::<Float64Type>().value(0),
        1.0,
        "served from the cache without waiting"
    );
    assert_eq!(store.stats().stale_served.load(Ordering::Relaxed), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = store.lookup(&keys).await.expect("after refresh");
        if rows.columns[0].as_primitive::<Float64Type>().value(0) == 2.0 {
            break;
        }
        assert!(Instant::now() < deadline, "never refreshed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn unreadable_values_are_missing_and_counted_not_zero() {
    let redis = RedisServer::start();
    redis.hset(b"acct:a", &[(b"avg", b"abc"), (b"count", b"7")]);
    let store = hash_store(&redis.url(), no_cache());
    let rows = store
        .lookup(&StringArray::from(vec!["a"]))
        .await
        .expect("lookup");
    assert!(rows.found.value(0));
    assert!(rows.columns[0].is_null(0), "not 0.0");
    assert_eq!(rows.columns[1].as_primitive::<Int64Type>().value(0), 7);
    assert_eq!(store.stats().decode_errors.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_down_server_is_unavailable_within_the_timeout_and_a_wrong_key_type_is_not() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let store = hash_store(&format!("redis://:hunter2@127.0.0.1:{port}/0"), no_cache());
    let started = Instant::now();
    let err = store
        .lookup(&StringArray::from(vec!["a"]))
        .await
        .expect_err("down");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(err, OperatorError::FeatureStoreUnavailable { .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");

    let redis = RedisServer::start();
    let mut c = redis.conn();
    redis::cmd("SET")
        .arg("acct:s")
        .arg("not a hash")
        .query::<()>(&mut c)
        .expect("SET");
    let store = hash_store(&redis.url(), no_cache());
    let err = store
        .lookup(&StringArray::from(vec!["s"]))
        .await
        .expect_err("wrong type");
    assert!(
        matches!(err, OperatorError::FeatureStoreData { .. }),
        "{err}"
    );
}

#[test]
fn passwords_in_urls_are_masked() {
    assert_eq!(
        redact_url("redis://user:s3cret@host:6379/0"),
        "redis://user:<redacted>@host:6379/0"
    );
    assert_eq!(
        redact_url("redis://:s3cret@host"),
        "redis://:<redacted>@host"
    );
    assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
    let c = hash_config("redis://:s3cret@127.0.0.1:1/0");
    assert!(!format!("{c:?}").contains("s3cret"));
}

// ---- Feast's layout, against what Feast 0.67 itself wrote ----

fn fixture(name: &str) -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/feast")
        .join(name);
    serde_json::from_slice(&std::fs::read(&p).expect("fixture")).expect("json")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Loads the Redis contents `feast materialize` produced.
fn load_feast_dump(redis: &RedisServer) {
    let dump = fixture("redis_dump.json");
    for entry in dump.as_array().expect("list") {
        let key = unhex(entry["key_hex"].as_str().expect("key"));
        let fields: Vec<(Vec<u8>, Vec<u8>)> = entry["fields"]
            .as_object()
            .expect("fields")
            .iter()
            .map(|(f, v)| (unhex(f), unhex(v.as_str().expect("value"))))
            .collect();
        let refs: Vec<(&[u8], &[u8])> = fields
            .iter()
            .map(|(f, v)| (f.as_slice(), v.as_slice()))
            .collect();
        redis.hset(&key, &refs);
    }
}

fn feast_columns(info: &serde_json::Value) -> Vec<FeatureColumn> {
    let mut out = Vec::new();
    for view in info["feature_views"].as_array().expect("views") {
        for f in view["features"].as_array().expect("features") {
            let kind = match f["feast_type"].as_str().expect("type") {
                "Float64" => ColumnType::Float64,
                "Float32" => ColumnType::Float32,
                "Int64" => ColumnType::Int64,
                "Int32" => ColumnType::Int32,
                "String" => ColumnType::String,
                "Bool" => ColumnType::Bool,
                other => panic!("fixture type {other}"),
            };
            out.push(FeatureColumn {
                view: Some(view["name"].as_str().expect("view").to_owned()),
                ..column(f["name"].as_str().expect("name"), kind)
            });
        }
    }
    out
}

#[test]
fn feast_key_and_field_encoding_match_the_fixture() {
    let info = fixture("fixture_info.json");
    for view in info["feature_views"].as_array().expect("views") {
        let v = view["name"].as_str().expect("name");
        for f in view["features"].as_array().expect("features") {
            let name = f["name"].as_str().expect("name");
            assert_eq!(
                feast_field(v, name),
                unhex(f["hash_field_hex"].as_str().expect("hex")),
                "{v}:{name}"
            );
        }
    }
    let mut key = serialize_entity_key("account_id", "acct_001", 3);
    key.extend_from_slice(b"scorestream_fixture");
    let dump = fixture("redis_dump.json");
    let keys: Vec<Vec<u8>> = dump
        .as_array()
        .expect("list")
        .iter()
        .map(|e| unhex(e["key_hex"].as_str().expect("key")))
        .collect();
    assert!(keys.contains(&key), "acct_001's key is in the dump");
}

#[tokio::test]
async fn feast_layout_reads_what_feast_materialized_value_for_value() {
    let redis = RedisServer::start();
    load_feast_dump(&redis);
    let info = fixture("fixture_info.json");
    let expected = fixture("expected_online_features.json");
    let columns = feast_columns(&info);
    let config: RedisStoreConfig = toml::from_str(&format!(
        "url = \"{}\"\nlayout = \"feast\"\nproject = \"{}\"\nentity_key_serialization_version = {}",
        redis.url(),
        info["project"].as_str().expect("project"),
        info["entity_key_serialization_version"]
    ))
    .expect("config");
    let store =
        RedisFeatureStore::new(&config, "account_id", &columns, &no_cache()).expect("store");
    let ids: Vec<String> = expected["entity_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    let rows = store
        .lookup(&StringArray::from(ids.clone()))
        .await
        .expect("lookup");
    assert_eq!(store.stats().decode_errors.load(Ordering::Relaxed), 0);

    let mut compared = 0;
    for (j, c) in columns.iter().enumerate() {
        let reference = format!("{}:{}", c.view.as_deref().expect("view"), c.name);
        let want = &expected["results"][&reference];
        let col = &rows.columns[j];
        for (i, id) in ids.iter().enumerate() {
            let w = &want["values"][i];
            let at = format!("{reference} of {id}");
            if w.is_null() {
                assert!(col.is_null(i), "{at}: Feast has null");
                continue;
            }
            assert!(col.is_valid(i), "{at}: Feast has {w}");
            match c.kind {
                ColumnType::Float64 => {
                    assert_eq!(
                        col.as_primitive::<Float64Type>().value(i),
                        w.as_f64().expect("f64"),
                        "{at}"
                    )
                }
                ColumnType::Float32 => assert_eq!(
                    col.as_primitive::<Float32Type>().value(i),
                    w.as_f64().expect("f32") as f32,
                    "{at}"
                ),
                ColumnType::Int64 => {
                    assert_eq!(
                        col.as_primitive::<Int64Type>().value(i),
                        w.as_i64().expect("i64"),
                        "{at}"
                    )
                }
                ColumnType::Int32 => assert_eq!(
                    i64::from(col.as_primitive::<Int32Type>().value(i)),
                    w.as_i64().expect("i32"),
                    "{at}"
                ),
                ColumnType::String => {
                    assert_eq!(
                        col.as_string::<i32>().value(i),
                        w.as_str().expect("str"),
                        "{at}"
                    )
                }
                ColumnType::Bool => {
                    assert_eq!(
                        col.as_boolean().value(i),
                        w.as_bool().expect("bool"),
                        "{at}"
                    )
                }
                ColumnType::Timestamp => panic!("{at}: timestamp is not a feature type"),
            }
            // Feast's event timestamp for the value is its view's `_ts`.
            let ts = &want["event_timestamps"][i];
            let ms = ts[0].as_i64().expect("s") * 1000 + ts[1].as_i64().expect("ns") / 1_000_000;
            let written = rows.written_at_ms[j].as_ref().expect("ts");
            assert_eq!(written.value(i), ms, "{at}: write time");
            compared += 1;
        }
    }
    assert!(compared > 100, "compared {compared} values");
    // Unknown entities: Feast's Python SDK answers nulls; scorestream also
    // says the store has no such entity.
    for id in expected["unknown_entity_ids"].as_array().expect("unknown") {
        let i = ids
            .iter()
            .position(|x| x == id.as_str().expect("id"))
            .expect("pos");
        assert!(!rows.found.value(i), "{id}");
    }
}

#[test]
fn defaults_are_checked_against_their_feature_type() {
    assert!(FeatureValue::from_default(&Scalar::Float(1.5), ColumnType::Float64).is_ok());
    assert!(FeatureValue::from_default(&Scalar::Int(3), ColumnType::Float32).is_ok());
    let e = FeatureValue::from_default(&Scalar::String("x".into()), ColumnType::Int64)
        .expect_err("wrong type");
    assert!(e.contains("not a valid Int64"), "{e}");
    assert!(FeatureValue::from_default(&Scalar::Int(1 << 40), ColumnType::Int32).is_err());
}

#[test]
fn feast_keys_say_which_project_join_key_and_version_wrote_them() {
    use super::feast_probe::parse_key;
    let mut v3 = serialize_entity_key("account_id", "acct_001", 3);
    v3.extend_from_slice(b"scorestream_fixture");
    let shape = parse_key(&v3, "account_id").expect("v3");
    assert_eq!(
        (
            shape.version,
            shape.join_key.as_str(),
            shape.project.as_str()
        ),
        (3, "account_id", "scorestream_fixture")
    );
    // Read whatever join key the job names.
    assert_eq!(
        parse_key(&v3, "user_id").expect("v3").join_key,
        "account_id"
    );
    let mut v2 = serialize_entity_key("account_id", "acct_001", 2);
    v2.extend_from_slice(b"fraud");
    let shape = parse_key(&v2, "account_id").expect("v2");
    assert_eq!((shape.version, shape.project.as_str()), (2, "fraud"));
    assert!(parse_key(b"acct:001", "account_id").is_none());
    assert!(parse_key(&v3[..20], "account_id").is_none(), "truncated");
}
