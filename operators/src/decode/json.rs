use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringBuilder, TimestampMillisecondArray,
};
use arrow::datatypes::{Schema, SchemaRef};
use arrow_json::ReaderBuilder;
use scorestream_schemas::{
    DeadLetter, DeadLetterStage, EventSchema, KafkaHeader, ReasonCode, provenance_fields,
};

use super::Decoder;
use super::check::{Misfit, fits};
use super::columns::Columns;
use super::explain::explain;
use super::scan::{RowScan, scan};
use crate::source::kafka::RawChunk;
use crate::{Envelope, Result};

/// Decodes JSON messages straight into Arrow builders.
///
/// Each message is read once by [`scan`] into the builders. A message the
/// scanner is not certain of takes the slow path on its own: the serde
/// check decides whether it is a dead letter and why, and arrow-json
/// decodes it if not. Either way rows keep their order and a bad message
/// costs nothing extra for its neighbours.
pub struct JsonDecoder {
    events: EventSchema,
    out_schema: SchemaRef,
    max_message_bytes: usize,
}

impl JsonDecoder {
    pub fn new(events: EventSchema, max_message_bytes: usize) -> Self {
        let mut fields: Vec<_> = events.arrow_schema().fields().iter().cloned().collect();
        fields.extend(provenance_fields().into_iter().map(Arc::new));
        Self {
            out_schema: Arc::new(Schema::new(fields)),
            events,
            max_message_bytes,
        }
    }

    /// `fast == false` sends every message down the slow path: the
    /// reference the scanner is tested against.
    pub(super) fn decode_with(&self, chunk: &RawChunk, fast: bool) -> Result<Envelope> {
        let now = crate::now_ms();
        let fields = self.events.fields();
        let mut dead_letters = Vec::new();
        let mut good = Vec::with_capacity(chunk.len());
        let mut columns = Columns::new(
            self.events.arrow_schema(),
            fields,
            chunk.len(),
            chunk.payload_bytes(),
        );
        let mut row = RowScan::default();
        let mut seen = Vec::with_capacity(fields.len());
        for i in 0..chunk.len() {
            let payload = chunk.payload(i);
            if fast
                && payload.len() <= self.max_message_bytes
                && let Some(text) = scan(payload, fields, &mut row)
            {
                columns.push_scanned(text, &row)?;
                good.push(i);
                continue;
            }
            if let Err((code, reason)) = self.precheck(payload, &mut seen) {
                dead_letters.push(dead_letter(chunk, i, code, reason, now));
                continue;
            }
            match self.try_decode(payload) {
                Ok(one) => {
                    columns.push_decoded(&one)?;
                    good.push(i);
                }
                Err(arrow_reason) => {
                    let (code, reason) = explain(payload, &self.events)
                        .unwrap_or((ReasonCode::WrongType, arrow_reason));
                    dead_letters.push(dead_letter(chunk, i, code, reason, now));
                }
            }
        }
        dead_letters.sort_by_key(|d| (d.partition, d.offset));

        let batch = if good.is_empty() {
            None
        } else {
            Some(self.with_provenance(columns.finish()?, chunk, &good)?)
        };
        Ok(Envelope {
            batch,
            dead_letters,
            coverage: chunk.coverage.clone(),
            flush: chunk.flush,
            fetched_at: chunk.fetched_at,
            busy: std::time::Duration::ZERO,
            origin: None,
        })
    }

    /// One allocation-free pass: size, JSON syntax, one object whose
    /// declared fields have values of their types (see [`check`]).
    fn precheck(&self, payload: &[u8], seen: &mut Vec<bool>) -> Result<(), (ReasonCode, String)> {
        if payload.len() > self.max_message_bytes {
            return Err((
                ReasonCode::Oversized,
                format!(
                    "message is {} bytes; the job's max_message_bytes is {}",
                    payload.len(),
                    self.max_message_bytes
                ),
            ));
        }
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Err((ReasonCode::InvalidJson, "empty message".into()));
        }
        match fits(payload, self.events.fields(), seen) {
            Ok(()) => Ok(()),
            Err(Misfit::Syntax(e)) => {
                Err((ReasonCode::InvalidJson, format!("not valid JSON: {e}")))
            }
            Err(Misfit::Schema) => Err(match payload.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => explain(payload, &self.events).unwrap_or_else(|| {
                    (
                        ReasonCode::WrongType,
                        "does not fit the event schema".into(),
                    )
                }),
                _ => (ReasonCode::NotAnObject, "expected a JSON object".into()),
            }),
        }
    }

    /// Decodes one message that passed the check; arrow-json may still
    /// refuse it (an int64 in a string that overflows, say).
    fn try_decode(&self, payload: &[u8]) -> Result<RecordBatch, String> {
        let mut decoder = ReaderBuilder::new(self.events.arrow_schema().clone())
            .with_batch_size(1)
            .build_decoder()
            .map_err(|e| e.to_string())?;
        let read = decoder.decode(payload).map_err(|e| e.to_string())?;
        // One message must be exactly one complete record.
        if read != payload.len() || decoder.has_partial_record() || decoder.len() != 1 {
            return Err("message is not exactly one JSON object".into());
        }
        match decoder.flush() {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err("no rows decoded".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn with_provenance(
        &self,
        events: RecordBatch,
        chunk: &RawChunk,
        rows: &[usize],
    ) -> Result<RecordBatch> {
        let mut topic = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
        for &i in rows {
            topic.append_value(chunk.topic(i).as_ref());
        }
        let partition = Int32Array::from_iter_values(rows.iter().map(|&i| chunk.partition(i)));
        let offset = Int64Array::from_iter_values(rows.iter().map(|&i| chunk.offset(i)));
        let ingest: TimestampMillisecondArray = TimestampMillisecondArray::from_iter_values(
            rows.iter().map(|&i| chunk.timestamp_ms(i)),
        )
        .with_timezone(scorestream_schemas::UTC);
        let mut trace = StringBuilder::with_capacity(rows.len(), rows.len() * 32);
        let mut hex = [0u8; 32];
        for &i in rows {
            trace.append_value(hex32(chunk.trace_id(i), &mut hex));
        }
        let mut columns: Vec<ArrayRef> = events.columns().to_vec();
        columns.push(Arc::new(topic.finish()));
        columns.push(Arc::new(partition));
        columns.push(Arc::new(offset));
        columns.push(Arc::new(ingest));
        columns.push(Arc::new(trace.finish()));
        Ok(RecordBatch::try_new(self.out_schema.clone(), columns)?)
    }
}

/// `id` as 32 lower-case hex digits, as `{:032x}` writes it, without the
/// formatting machinery (3% of the decode time through `write!`).
fn hex32(id: u128, out: &mut [u8; 32]) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (k, b) in out.iter_mut().enumerate() {
        *b = DIGITS[((id >> (124 - 4 * k)) & 0xf) as usize];
    }
    std::str::from_utf8(out).unwrap_or_default()
}

fn dead_letter(
    chunk: &RawChunk,
    i: usize,
    code: ReasonCode,
    reason: String,
    now: i64,
) -> DeadLetter {
    original(chunk, i, code.stage(), code, reason, now)
}

/// A dead letter for message `i` of `chunk`, with everything the producer
/// sent: what any stage rejecting a message from a chunk builds.
pub(crate) fn original(
    chunk: &RawChunk,
    i: usize,
    stage: DeadLetterStage,
    reason_code: ReasonCode,
    reason: String,
    now: i64,
) -> DeadLetter {
    DeadLetter {
        raw: chunk.payload(i).to_vec(),
        key: chunk.key(i).map(<[u8]>::to_vec),
        headers: chunk
            .headers(i)
            .map(|(key, value)| KafkaHeader {
                key: key.to_owned(),
                value: value.map(<[u8]>::to_vec),
            })
            .collect(),
        topic: chunk.topic(i).clone(),
        partition: chunk.partition(i),
        offset: chunk.offset(i),
        source_timestamp_ms: chunk.source_timestamp_ms(i),
        stage,
        reason_code,
        reason,
        rejected_at_ms: now,
    }
}

impl Decoder for JsonDecoder {
    fn output_schema(&self) -> &SchemaRef {
        &self.out_schema
    }

    fn decode(&self, chunk: &RawChunk) -> Result<Envelope> {
        self.decode_with(chunk, true)
    }
}
