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
    FeatureJoin::try_new(store(), &schema, "account_id", JoinPolicy::on_missing(on_missing)).expect("join")
}

#[tokio::test]
async fn keys_that_look_numeric_keep_leading_zeros_and_features_align() {
    let out = join(OnMissing::Null)
        .process(events(&[Some("002"), Some("001"), Some("002")]))
        .await
        .expect("join");
    let b = out.batch.expect("rows");
    let avg = b
        .column_by_name("avg_amount")
        .expect("avg")
        .as_primitive::<Float64Type>();
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
