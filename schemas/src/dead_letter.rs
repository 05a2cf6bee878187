use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, ListArray, RecordBatch, StringBuilder,
    StructArray, TimestampMillisecondBuilder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::SchemaError;

mod reason;

pub use reason::{DeadLetterCounts, ReasonCode};

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

/// One Kafka message header as the producer sent it: Kafka header names are
/// strings, values any bytes or none at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaHeader {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// An event scorestream could not score, kept whole (the message's value,
/// key, headers and timestamp exactly as they arrived, whatever the stage)
/// so `scorestream replay` can re-produce what the producer sent once the
/// cause is fixed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub raw: Vec<u8>,
    pub key: Option<Vec<u8>>,
    /// The message's headers, in the order they arrived.
    pub headers: Vec<KafkaHeader>,
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// The message's Kafka timestamp, when the broker gave one.
    pub source_timestamp_ms: Option<i64>,
    pub stage: DeadLetterStage,
    /// What was wrong, from a closed set (for metrics, filters, routing).
    pub reason_code: ReasonCode,
    /// What was wrong, worded for a person.
    pub reason: String,
    /// Milliseconds since the epoch when scorestream rejected it.
    pub rejected_at_ms: i64,
}

/// The type of the `headers` column: a list of (key, value) structs rather
/// than a map, because Kafka allows a header name more than once and order
/// matters to some consumers.
pub fn headers_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(
        DataType::Struct(header_fields()),
        false,
    )))
}

fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
    ])
}

/// The dead-letter columns. The last three came later and are nullable:
/// files written before them still read (as nulls) under this schema.
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
        Field::new("headers", headers_type(), true),
        Field::new(
            "source_timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some(crate::UTC.into())),
            true,
        ),
        Field::new("reason_code", DataType::Utf8, true),
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
    headers: HeadersBuilder,
    source_timestamp: TimestampMillisecondBuilder,
    reason_code: StringBuilder,
    len: usize,
}

/// The `headers` column, built from its parts: a list of structs.
#[derive(Debug)]
struct HeadersBuilder {
    offsets: Vec<i32>,
    keys: StringBuilder,
    values: BinaryBuilder,
}

impl Default for HeadersBuilder {
    fn default() -> Self {
        Self {
            offsets: vec![0],
            keys: StringBuilder::new(),
            values: BinaryBuilder::new(),
        }
    }
}

impl HeadersBuilder {
    fn push(&mut self, headers: &[KafkaHeader]) {
        for h in headers {
            self.keys.append_value(&h.key);
            self.values.append_option(h.value.as_deref());
        }
        let last = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(last + headers.len() as i32);
    }

    fn finish(&mut self) -> Result<ArrayRef, SchemaError> {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let entries = StructArray::try_new(
            header_fields(),
            vec![Arc::new(self.keys.finish()), Arc::new(self.values.finish())],
            None,
        )?;
        let field = Arc::new(Field::new_list_field(
            DataType::Struct(header_fields()),
            false,
        ));
        Ok(Arc::new(ListArray::try_new(
            field,
            OffsetBuffer::new(offsets.into()),
            Arc::new(entries),
            None::<NullBuffer>,
        )?))
    }
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
        self.headers.push(&d.headers);
        self.source_timestamp.append_option(d.source_timestamp_ms);
        self.reason_code.append_value(d.reason_code.as_str());
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
            self.headers.finish()?,
            Arc::new(self.source_timestamp.finish().with_timezone(crate::UTC)),
            Arc::new(self.reason_code.finish()),
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
            headers: vec![
                KafkaHeader {
                    key: "h".into(),
                    value: Some(b"v".to_vec()),
                },
                KafkaHeader {
                    key: "h".into(),
                    value: None,
                },
            ],
            topic: "tx".into(),
            partition: 3,
            offset: 42,
            source_timestamp_ms: Some(7),
            stage: DeadLetterStage::Parse,
            reason_code: ReasonCode::InvalidJson,
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
        let headers = batch.column_by_name("headers").expect("headers");
        let entries = headers.as_list::<i32>().value(0);
        let entries = entries.as_struct();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries.column(0).as_string::<i32>().value(1), "h");
        assert_eq!(entries.column(1).as_binary::<i32>().value(0), b"v");
        assert!(entries.column(1).is_null(1), "a header without a value");
        let code = batch.column_by_name("reason_code").expect("code");
        assert_eq!(code.as_string::<i32>().value(0), "invalid_json");
        assert!(b.is_empty());
    }
}
