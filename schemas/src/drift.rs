//! The drift table: one row per closed window and watched column, written
//! by the drift operator and read back by the drift report and analysts.
//! Defined here once, so writer and reader cannot disagree on a name.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Names of the drift table's columns besides one per statistic.
pub mod drift_columns {
    pub const JOB: &str = "job";
    pub const MODEL_NAME: &str = "model_name";
    pub const MODEL_VERSION: &str = "model_version";
    pub const WINDOW_START: &str = "window_start";
    pub const WINDOW_END: &str = "window_end";
    pub const WINDOW_ROWS: &str = "window_rows";
    pub const SKIPPED_ROWS: &str = "skipped_rows";
    pub const FEATURE: &str = "feature";
    /// The window's counts per reference bin or category slot.
    pub const COUNTS: &str = "counts";
    /// The statistics whose threshold the window breached.
    pub const BREACHED: &str = "breached";
}

/// The drift table's schema: the window's identity and size, one nullable
/// `Float64` column per statistic (named by `statistics`, in that order),
/// then the counts and the breached statistics.
pub fn drift_schema<'a>(statistics: impl IntoIterator<Item = &'a str>) -> SchemaRef {
    use drift_columns as c;
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some(crate::UTC.into()));
    let mut fields = vec![
        Field::new(c::JOB, DataType::Utf8, false),
        Field::new(c::MODEL_NAME, DataType::Utf8, false),
        Field::new(c::MODEL_VERSION, DataType::Utf8, false),
        Field::new(c::WINDOW_START, ts(), false),
        Field::new(c::WINDOW_END, ts(), false),
        Field::new(c::WINDOW_ROWS, DataType::UInt64, false),
        Field::new(c::SKIPPED_ROWS, DataType::UInt64, false),
        Field::new(c::FEATURE, DataType::Utf8, false),
    ];
    fields.extend(
        statistics
            .into_iter()
            .map(|s| Field::new(s, DataType::Float64, true)),
    );
    fields.push(Field::new(
        c::COUNTS,
        DataType::List(Arc::new(Field::new_list_field(DataType::UInt64, false))),
        false,
    ));
    fields.push(Field::new(
        c::BREACHED,
        DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, false))),
        false,
    ));
    Arc::new(Schema::new(fields))
}
