//! Arrow schemas and typed records shared by every scorestream operator.
//!
//! Operators exchange Arrow `RecordBatch`es; this crate is the one place that
//! says what columns those batches carry, so the decoder, the feature join, the
//! scorer and the sinks agree on names and types without passing strings around.

mod column;
mod dead_letter;
mod drift;
mod error;
mod event;
mod output;
mod secret;

pub use column::ColumnType;
pub use dead_letter::{
    DeadLetter, DeadLetterBuilder, DeadLetterCounts, DeadLetterStage, KafkaHeader, ReasonCode,
    dead_letter_schema, headers_type,
};
pub use drift::{drift_columns, drift_schema};
pub use error::{ErrorKind, SchemaError};
pub use event::{EVENT_TYPES, EventSchema, FieldSpec};
pub use output::{column_names, columns, provenance_fields, score_fields, shadow_score_fields};
pub use secret::{REDACTED, Secret, redact};

/// The time zone of every timestamp column: an offset, which Arrow, Parquet
/// readers and DataFusion all understand without a tz database.
pub const UTC: &str = "+00:00";
