use std::sync::Arc;

use arrow::array::{
    Array, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use scorestream_schemas::DeadLetterStage;

use super::*;
use crate::{Envelope, OperatorError};

fn store() -> Arc<dyn FeatureStore> {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("f.csv");
    std::fs::write(
        &p,
        "account_id,avg_amount,home_country\n001,10.5,DE\n002,20.0,FR\n",
    )
    .expect("write");
    let s = FileFeatureStore::load(&p, "account_id").expect("load");
    assert_eq!(s.len(), 2);
    Arc::new(s)
}

fn events(keys: &[Option<&str>]) -> Envelope {
    let schema = Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, false),
        Field::new("source_topic", DataType::Utf8, false),
        Field::new("source_partition", DataType::Int32, false),
        Field::new("source_offset", DataType::Int64, false),
    ]));
    let n = keys.len();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(keys.to_vec())),
            Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64))),
            Arc::new(StringArray::from(vec!["tx"; n])),
            Arc::new(Int32Array::from(vec![0; n])),
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
        ],
    )
    .expect("batch");
    Envelope {
        batch: Some(batch),
        ..Default::default()
    }
}

fn join(on_missing: OnMissing) -> FeatureJoin {
    let schema = events(&[]).batch.expect("b").schema();
    FeatureJoin::try_new(
        store(),
        &schema,
        "account_id",
        JoinPolicy::on_missing(on_missing),
    )
    .expect("join")
}

#[tokio::test]
async fn keys_that_look_numeric_keep_leading_zeros_and_features_align() {
    let out = join(OnMissing::Null)
        .process(events(&[Some("002"), Some("001"), Some("002")]))
        .await
        .expect("join");
    let b = out.batch.expect("rows");
    let avg = f64_col(&b, "avg_amount");
    assert_eq!(avg.values().to_vec(), vec![20.0, 10.5, 20.0]);
    let home = b
        .column_by_name("home_country")
        .expect("home")
        .as_string::<i32>();
    assert_eq!(home.value(1), "DE");
    assert_eq!(
        b.column_by_name("features_missing")
            .expect("m")
            .as_boolean()
            .true_count(),
        0
    );
}

#[tokio::test]
async fn null_policy_keeps_and_flags_unknown_keys() {
    let out = join(OnMissing::Null)
        .process(events(&[Some("001"), Some("999"), None]))
        .await
        .expect("join");
    let b = out.batch.expect("rows");
    assert_eq!(b.num_rows(), 3);
    let m = b
        .column_by_name("features_missing")
        .expect("m")
        .as_boolean();
    assert_eq!((m.value(0), m.value(1), m.value(2)), (false, true, true));
    assert!(b.column_by_name("avg_amount").expect("avg").is_null(1));
}

#[tokio::test]
async fn dead_letter_policy_moves_unknown_keys_out_with_their_event() {
    let out = join(OnMissing::DeadLetter)
        .process(events(&[Some("001"), Some("999")]))
        .await
        .expect("join");
    assert_eq!(out.rows(), 1);
    assert_eq!(out.dead_letters.len(), 1);
    let d = &out.dead_letters[0];
    assert_eq!(d.stage, DeadLetterStage::Features);
    assert_eq!(d.offset, 1);
    let raw = String::from_utf8(d.raw.clone()).expect("utf8");
    assert!(
        raw.contains("\"account_id\":\"999\"") && !raw.contains("source_offset"),
        "{raw}"
    );
}

#[tokio::test]
async fn fail_policy_stops_the_job_naming_the_key() {
    let err = join(OnMissing::Fail)
        .process(events(&[Some("001"), Some("404")]))
        .await
        .expect_err("must fail");
    assert!(
        matches!(&err, OperatorError::MissingFeatures { key } if key == "404"),
        "{err}"
    );
}

#[test]
fn a_bad_store_file_names_the_problem() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("f.csv");
    std::fs::write(&p, "id,x\na,1\na,2\n").expect("write");
    let e = FileFeatureStore::load(&p, "id")
        .err()
        .expect("duplicate")
        .to_string();
    assert!(e.contains("`a` appears more than once"), "{e}");
    let e = FileFeatureStore::load(&p, "account")
        .err()
        .expect("no key")
        .to_string();
    assert!(e.contains("no key column `account`"), "{e}");
    let e = FileFeatureStore::load(&dir.path().join("nope.csv"), "id")
        .err()
        .expect("missing")
        .to_string();
    assert!(e.contains("cannot open"), "{e}");
}

#[test]
fn key_must_be_a_string_event_field() {
    let schema = events(&[]).batch.expect("b").schema();
    let e = FeatureJoin::try_new(store(), &schema, "amount", JoinPolicy::default())
        .err()
        .expect("not a string");
    assert!(e.contains("must be a string"), "{e}");
    let e = FeatureJoin::try_new(store(), &schema, "user", JoinPolicy::default())
        .err()
        .expect("absent");
    assert!(e.contains("not a field"), "{e}");
}

/// A store that answers from a fixed table with write times, or is down:
/// what the policies are tested against (the Redis store itself is tested
/// against a real server in `redis::tests`).
struct Fixed {
    /// key -> (avg, written_at_ms)
    rows: std::collections::HashMap<&'static str, (Option<f64>, i64)>,
    down: std::sync::atomic::AtomicBool,
}

impl FeatureStore for Fixed {
    fn schema(&self) -> arrow::datatypes::SchemaRef {
        Arc::new(Schema::new(vec![Field::new(
            "avg",
            DataType::Float64,
            true,
        )]))
    }

    fn lookup<'a>(
        &'a self,
        keys: &'a StringArray,
    ) -> futures::future::BoxFuture<'a, crate::Result<FeatureRows>> {
        Box::pin(async move {
            if self.down.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(OperatorError::FeatureStoreUnavailable {
                    store: "fixed".into(),
                    reason: "down".into(),
                });
            }
            let hit: Vec<_> = keys
                .iter()
                .map(|k| k.and_then(|k| self.rows.get(k)))
                .collect();
            Ok(FeatureRows {
                columns: vec![Arc::new(Float64Array::from(
                    hit.iter().map(|h| h.and_then(|h| h.0)).collect::<Vec<_>>(),
                ))],
                found: hit.iter().map(|h| Some(h.is_some())).collect(),
                written_at_ms: vec![Some(Int64Array::from(
                    hit.iter().map(|h| h.map(|h| h.1)).collect::<Vec<_>>(),
                ))],
            })
        })
    }
}

fn fixed() -> Arc<Fixed> {
    let now = crate::now_ms();
    Arc::new(Fixed {
        rows: [
            ("fresh", (Some(1.0), now)),
            ("old", (Some(2.0), now - 3_600_000)),
            ("hole", (None, now)),
        ]
        .into_iter()
        .collect(),
        down: false.into(),
    })
}

fn policy(on_missing: OnMissing, on_stale: OnMissing) -> JoinPolicy {
    JoinPolicy {
        on_missing,
        on_stale,
        features: [(
            "avg".to_owned(),
            FeaturePolicy {
                max_age: Some(std::time::Duration::from_secs(60)),
                default: Some(FeatureValue::Float64(-1.0)),
                view: None,
            },
        )]
        .into_iter()
        .collect(),
        ..JoinPolicy::default()
    }
}

fn fixed_join(store: Arc<Fixed>, p: JoinPolicy) -> FeatureJoin {
    let schema = events(&[]).batch.expect("b").schema();
    FeatureJoin::try_new(store, &schema, "account_id", p).expect("join")
}

fn f64_col<'a>(b: &'a RecordBatch, name: &str) -> &'a arrow::array::Float64Array {
    b.column_by_name(name)
        .expect(name)
        .as_primitive::<Float64Type>()
}

fn names_at(b: &RecordBatch, col: &str, row: usize) -> Vec<String> {
    let list = b
        .column_by_name(col)
        .expect(col)
        .as_list::<i32>()
        .value(row);
    list.as_string::<i32>()
        .iter()
        .map(|s| s.unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn stale_and_missing_features_are_nulled_and_named_per_row() {
    let join = fixed_join(fixed(), policy(OnMissing::Null, OnMissing::Null));
    let out = join
        .process(events(&[
            Some("fresh"),
            Some("old"),
            Some("hole"),
            Some("gone"),
        ]))
        .await
        .expect("join");
    let b = out.batch.expect("rows");
    let avg = f64_col(&b, "avg");
    assert_eq!(avg.value(0), 1.0);
    assert!(avg.is_null(1), "stale value is not used");
    assert!(avg.is_null(2) && avg.is_null(3));
    assert_eq!(names_at(&b, "stale_features", 1), ["avg"]);
    assert!(names_at(&b, "stale_features", 0).is_empty());
    assert_eq!(names_at(&b, "missing_features", 2), ["avg"]);
    assert_eq!(names_at(&b, "missing_features", 3), ["avg"]);
    assert!(names_at(&b, "missing_features", 0).is_empty());
    let entity_missing = b
        .column_by_name("features_missing")
        .expect("m")
        .as_boolean();
    assert_eq!(
        (0..4).map(|i| entity_missing.value(i)).collect::<Vec<_>>(),
        [false, false, false, true],
        "only `gone` is unknown to the store"
    );
}

#[tokio::test]
async fn the_default_policy_fills_configured_defaults() {
    let join = fixed_join(fixed(), policy(OnMissing::Default, OnMissing::Default));
    let out = join
        .process(events(&[Some("fresh"), Some("old"), Some("hole")]))
        .await
        .expect("join");
    let b = out.batch.expect("rows");
    let avg = f64_col(&b, "avg");
    assert_eq!(avg.values().to_vec(), [1.0, -1.0, -1.0]);
    assert_eq!(names_at(&b, "stale_features", 1), ["avg"], "still flagged");
}

#[tokio::test]
async fn stale_features_can_dead_letter_the_event_or_stop_the_job() {
    let join = fixed_join(fixed(), policy(OnMissing::Null, OnMissing::DeadLetter));
    let out = join
        .process(events(&[Some("fresh"), Some("old")]))
        .await
        .expect("join");
    assert_eq!(out.rows(), 1);
    assert_eq!(out.dead_letters.len(), 1);
    assert!(
        out.dead_letters[0]
            .reason
            .contains("feature `avg` older than its max_age"),
        "{}",
        out.dead_letters[0].reason
    );
    let join = fixed_join(fixed(), policy(OnMissing::Fail, OnMissing::Null));
    let err = join
        .process(events(&[Some("fresh"), Some("hole")]))
        .await
        .expect_err("fail");
    assert!(
        err.to_string()
            .contains("feature `avg` of key `hole` is missing"),
        "{err}"
    );
}

#[tokio::test]
async fn while_the_store_is_down_defaults_are_flagged_and_wait_holds_the_batch() {
    let store = fixed();
    store.down.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut p = policy(OnMissing::Null, OnMissing::Null);
    p.on_unavailable = OnUnavailable::Defaults;
    let out = fixed_join(store.clone(), p)
        .process(events(&[Some("fresh")]))
        .await
        .expect("defaults");
    let b = out.batch.expect("rows");
    assert_eq!(
        f64_col(&b, "avg").value(0),
        -1.0,
        "the configured default, not zero"
    );
    assert!(
        b.column_by_name("features_unavailable")
            .expect("u")
            .as_boolean()
            .value(0)
    );

    // Wait: the batch is held until the store is back.
    let cancel = tokio_util::sync::CancellationToken::new();
    let join = Arc::new(
        fixed_join(store.clone(), policy(OnMissing::Null, OnMissing::Null))
            .with_cancel(cancel.clone()),
    );
    let task = tokio::spawn({
        let join = join.clone();
        async move { join.process(events(&[Some("fresh")])).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "must wait while the store is down");
    store
        .down
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("resumes")
        .expect("task")
        .expect("join");
    let b = out.batch.expect("rows");
    assert_eq!(f64_col(&b, "avg").value(0), 1.0);
    assert!(
        !b.column_by_name("features_unavailable")
            .expect("u")
            .as_boolean()
            .value(0)
    );

    // Stopping the job while waiting gives up with the store's error.
    store.down.store(true, std::sync::atomic::Ordering::Relaxed);
    let task = tokio::spawn({
        let join = join.clone();
        async move { join.process(events(&[Some("fresh")])).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    cancel.cancel();
    let err = tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("stops")
        .expect("task")
        .expect_err("unavailable");
    assert!(
        matches!(err, OperatorError::FeatureStoreUnavailable { .. }),
        "{err}"
    );
}

// ---- features missing for (nearly) every key ----

fn watched_join(check: MissingCheckConfig) -> FeatureJoin {
    let schema = events(&[]).batch.expect("b").schema();
    let policy = JoinPolicy {
        missing_check: check,
        ..JoinPolicy::default()
    };
    FeatureJoin::try_new(store(), &schema, "account_id", policy).expect("join")
}

fn fail_after(min_rows: u64, threshold: f64) -> MissingCheckConfig {
    MissingCheckConfig {
        min_rows,
        threshold,
        action: MissingAction::Fail,
        ..MissingCheckConfig::default()
    }
}

#[tokio::test]
async fn a_window_of_keys_without_features_fails_naming_each_feature_under_action_fail() {
    let join = watched_join(fail_after(4, 0.99));
    // Too few rows to judge yet.
    join.process(events(&[Some("x"), Some("y")]))
        .await
        .expect("below min_rows");
    let err = join
        .process(events(&[Some("z"), None]))
        .await
        .expect_err("4 of 4 rows without features");
    let msg = err.to_string();
    assert!(
        msg.contains("`avg_amount` (4 of 4 rows)") && msg.contains("`home_country` (4 of 4 rows)"),
        "{msg}"
    );
    assert_eq!(err.kind(), crate::ErrorKind::User);
}

#[tokio::test]
async fn known_keys_or_a_share_below_the_threshold_pass() {
    let join = watched_join(fail_after(4, 0.99));
    join.process(events(&[Some("001"), Some("x"), Some("y"), Some("z")]))
        .await
        .expect("3 of 4 missing is under 99%");
    let join = watched_join(fail_after(4, 0.5));
    let err = join
        .process(events(&[Some("001"), Some("x"), Some("y"), Some("z")]))
        .await
        .expect_err("3 of 4 is over 50%");
    assert!(err.to_string().contains("(3 of 4 rows)"), "{err}");
}

#[test]
fn missing_rows_are_counted_per_feature_with_bounded_labels() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let join = watched_join(MissingCheckConfig::default());
    metrics::with_local_recorder(&recorder, || {
        for keys in [[Some("001"), Some("x")], [Some("y"), Some("002")]] {
            rt.block_on(join.process(events(&keys))).expect("warn only");
        }
    });
    let text = handle.render();
    let value = |feature: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("scorestream_feature_missing_total")
                    && l.contains(&format!("feature=\"{feature}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("{feature}: {text}"))
            .to_owned()
    };
    assert_eq!(value("avg_amount"), "2");
    assert_eq!(value("home_country"), "2");
}

#[test]
fn missing_check_settings_are_checked() {
    let c: FeaturesConfig = toml::from_str(
        "key = \"k\"\nstore = { kind = \"file\", path = \"f.csv\", key_column = \"k\" }\n\
         [missing_check]\nthreshold = 1.5\nmin_rows = 0\naction = \"fail\"",
    )
    .expect("parses");
    let keys: Vec<String> = crate::config::problems_in(&c, "")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        ["missing_check.threshold", "missing_check.min_rows"],
        "{keys:?}"
    );
    assert!(
        toml::from_str::<FeaturesConfig>(
            "key = \"k\"\nstore = { kind = \"file\", path = \"f.csv\", key_column = \"k\" }\n\
             [missing_check]\naction = \"shout\""
        )
        .is_err()
    );
}
