//! Column names scorestream adds to every scored row.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, TimeUnit};

/// Names of the columns scorestream itself adds. Event fields may not use them.
pub mod columns {
    pub const SOURCE_TOPIC: &str = "source_topic";
    pub const SOURCE_PARTITION: &str = "source_partition";
    pub const SOURCE_OFFSET: &str = "source_offset";
    pub const INGEST_TIME: &str = "ingest_time";
    /// 32 hex digits: the producer's W3C trace id, or one assigned at ingress.
    pub const TRACE_ID: &str = "trace_id";
    pub const FEATURES_MISSING: &str = "features_missing";
    /// Per row, the features the store had no value for.
    pub const MISSING_FEATURES: &str = "missing_features";
    /// Per row, the features older than their `max_age`.
    pub const STALE_FEATURES: &str = "stale_features";
    /// The row was scored while the feature store was unreachable.
    pub const FEATURES_UNAVAILABLE: &str = "features_unavailable";
    pub const SCORE: &str = "score";
    pub const MODEL_NAME: &str = "model_name";
    pub const MODEL_VERSION: &str = "model_version";
    pub const SCORED_AT: &str = "scored_at";
    /// Per row, the scores of the job's other models (shadows, and the
    /// champion or canary that did not produce `score`).
    pub const SHADOW_SCORES: &str = "shadow_scores";

    pub(crate) const ALL: [&str; 14] = [
        SOURCE_TOPIC,
        SOURCE_PARTITION,
        SOURCE_OFFSET,
        INGEST_TIME,
        TRACE_ID,
        FEATURES_MISSING,
        MISSING_FEATURES,
        STALE_FEATURES,
        FEATURES_UNAVAILABLE,
        SCORE,
        MODEL_NAME,
        MODEL_VERSION,
        SCORED_AT,
        SHADOW_SCORES,
    ];
}

pub(crate) fn is_reserved(name: &str) -> bool {
    columns::ALL.contains(&name)
}

fn utc_millis() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(crate::UTC.into()))
}

/// Where each row came from: appended by the decoder, kept to the output so an
/// analyst can trace any score back to its Kafka message.
pub fn provenance_fields() -> Vec<Field> {
    vec![
        Field::new(columns::SOURCE_TOPIC, DataType::Utf8, false),
        Field::new(columns::SOURCE_PARTITION, DataType::Int32, false),
        Field::new(columns::SOURCE_OFFSET, DataType::Int64, false),
        Field::new(columns::INGEST_TIME, utc_millis(), false),
        Field::new(columns::TRACE_ID, DataType::Utf8, false),
    ]
}

/// Appended by the scorer.
pub fn score_fields() -> Vec<Field> {
    vec![
        Field::new(columns::SCORE, DataType::Float32, false),
        Field::new(columns::MODEL_NAME, DataType::Utf8, false),
        Field::new(columns::MODEL_VERSION, DataType::Utf8, false),
        Field::new(columns::SCORED_AT, utc_millis(), false),
        Field::new(
            columns::SHADOW_SCORES,
            DataType::List(Arc::new(Field::new_list_field(
                DataType::Struct(shadow_score_fields()),
                false,
            ))),
            false,
        ),
    ]
}

/// One entry of `shadow_scores`.
pub fn shadow_score_fields() -> arrow::datatypes::Fields {
    arrow::datatypes::Fields::from(vec![
        Field::new(columns::MODEL_NAME, DataType::Utf8, false),
        Field::new(columns::MODEL_VERSION, DataType::Utf8, false),
        Field::new(columns::SCORE, DataType::Float32, false),
    ])
}

/// The column names of `schema`, comma-separated, for an error that says
/// what a batch or file does have.
pub fn column_names(schema: &arrow::datatypes::Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
