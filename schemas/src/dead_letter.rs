use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::SchemaError;

/// The operator that rejected an event; a small closed set, so it is safe as a
/// metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadLetterStage {
    /// Bytes that are not one JSON object.
    Parse,
    /// Valid JSON that does not match the job's declared schema.
    Schema,
    /// Larger than the job's `max_message_bytes`.
    Oversized,
    /// The feature store has no features for the event's key and the job's
    /// missing-feature policy is `dead_letter`.
    Features,
}

impl DeadLetterStage {
    /// Every stage, in declaration order: `stage as usize` indexes it, so
    /// counts per stage fit in a fixed array.
    pub const ALL: [DeadLetterStage; 4] = [
        DeadLetterStage::Parse,
        DeadLetterStage::Schema,
        DeadLetterStage::Oversized,
        DeadLetterStage::Features,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterStage::Parse => "parse",
            DeadLetterStage::Schema => "schema",
            DeadLetterStage::Oversized => "oversized",
            DeadLetterStage::Features => "features",
        }
    }
}

/// An event scorestream could not score, kept whole so it can be replayed once
/// the cause is fixed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub raw: Vec<u8>,
    pub key: Option<Vec<u8>>,
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub stage: DeadLetterStage,
    pub reason: String,
    /// Milliseconds since the epoch when scorestream rejected it.
    pub rejected_at_ms: i64,
}

pub fn dead_letter_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("raw", DataType::Binary, false),
        Field::new("key", DataType::Binary, true),
        Field::new("source_topic", DataType::Utf8, false),
        Field::new("source_partition", DataType::Int32, false),
        Field::new("source_offset", DataType::Int64, false),
        Field::new("stage", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new(
            "rejected_at",
            DataType::Timestamp(TimeUnit::Millisecond, Some(crate::UTC.into())),
            false,
        ),
    ]))
}

/// Accumulates dead letters column by column for the dead-letter sink.
#[derive(Debug, Default)]
pub struct DeadLetterBuilder {
    raw: BinaryBuilder,
    key: BinaryBuilder,
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    stage: StringBuilder,
    reason: StringBuilder,
    rejected_at: TimestampMillisecondBuilder,
    len: usize,
}

impl DeadLetterBuilder {
    pub fn push(&mut self, d: &DeadLetter) {
        self.raw.append_value(&d.raw);
        self.key.append_option(d.key.as_deref());
        self.topic.append_value(&d.topic);
        self.partition.append_value(d.partition);
        self.offset.append_value(d.offset);
        self.stage.append_value(d.stage.as_str());
        self.reason.append_value(&d.reason);
        self.rejected_at.append_value(d.rejected_at_ms);
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(&mut self) -> Result<RecordBatch, SchemaError> {
        self.len = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.raw.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.stage.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.rejected_at.finish().with_timezone(crate::UTC)),
        ];
        Ok(RecordBatch::try_new(dead_letter_schema(), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_stages_are_indexed_by_their_discriminant() {
        for (i, s) in DeadLetterStage::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i, "{}", s.as_str());
        }
    }
    use arrow::array::{Array, AsArray};

    #[test]
    fn builder_keeps_raw_bytes_and_provenance() {
        let mut b = DeadLetterBuilder::default();
        b.push(&DeadLetter {
            raw: b"{not json".to_vec(),
            key: None,
            topic: "tx".into(),
            partition: 3,
            offset: 42,
            stage: DeadLetterStage::Parse,
            reason: "expected value".into(),
            rejected_at_ms: 1,
        });
        assert_eq!(b.len(), 1);
        let batch = b.finish().expect("batch");
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.column(0).as_binary::<i32>().value(0), b"{not json");
        assert!(batch.column(1).is_null(0));
        assert_eq!(
            batch
                .column(4)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(0),
            42
        );
        assert_eq!(batch.column(5).as_string::<i32>().value(0), "parse");
        assert!(b.is_empty());
    }
}
