use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringBuilder, TimestampMillisecondArray,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_json::ReaderBuilder;
use scorestream_schemas::{DeadLetter, DeadLetterStage, EventSchema, provenance_fields};

use super::check::{Misfit, fits};
use super::explain::explain;
use crate::source::kafka::RawChunk;
use crate::{Envelope, Result};

/// Decodes JSON messages into Arrow with arrow-json's tape decoder.
///
/// Good chunks take one pass. When arrow-json rejects a chunk, the chunk is
/// split in halves until the bad messages are isolated, so a single bad event
/// costs a few extra passes over its neighbours, not a per-message decode of
/// the whole chunk.
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

    /// Event fields followed by provenance columns.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.out_schema
    }

    pub fn decode(&self, chunk: &RawChunk) -> Result<Envelope> {
        let now = crate::now_ms();
        let mut dead_letters = Vec::new();
        let mut candidates = Vec::with_capacity(chunk.len());
        let mut seen = Vec::with_capacity(self.events.fields().len());
        for i in 0..chunk.len() {
            let payload = chunk.payload(i);
            match self.precheck(payload, &mut seen) {
                Ok(()) => candidates.push(i),
                Err((stage, reason)) => {
                    dead_letters.push(dead_letter(chunk, i, stage, reason, now))
                }
            }
        }

        let mut good = Vec::with_capacity(candidates.len());
        let mut parts = Vec::new();
        self.decode_isolating(
            chunk,
            &candidates,
            0..candidates.len(),
            &mut good,
            &mut parts,
            &mut dead_letters,
            now,
        )?;
        dead_letters.sort_by_key(|d| (d.partition, d.offset));

        let batch = if good.is_empty() {
            None
        } else {
            let events = if parts.len() == 1 {
                parts
                    .pop()
                    .unwrap_or_else(|| RecordBatch::new_empty(self.events.arrow_schema().clone()))
            } else {
                concat_batches(self.events.arrow_schema(), &parts)?
            };
            Some(self.with_provenance(events, chunk, &good)?)
        };
        Ok(Envelope {
            batch,
            dead_letters,
            coverage: chunk.coverage.clone(),
            flush: chunk.flush,
            fetched_at: chunk.fetched_at,
            busy: std::time::Duration::ZERO,
        })
    }

    /// One allocation-free pass: size, JSON syntax, one object whose
    /// declared fields have values of their types (see [`check`]).
    fn precheck(
        &self,
        payload: &[u8],
        seen: &mut Vec<bool>,
    ) -> Result<(), (DeadLetterStage, String)> {
        if payload.len() > self.max_message_bytes {
            return Err((
                DeadLetterStage::Oversized,
                format!(
                    "message is {} bytes; the job's max_message_bytes is {}",
                    payload.len(),
                    self.max_message_bytes
                ),
            ));
        }
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Err((DeadLetterStage::Parse, "empty message".into()));
        }
        match fits(payload, self.events.fields(), seen) {
            Ok(()) => Ok(()),
            Err(Misfit::Syntax(e)) => Err((DeadLetterStage::Parse, format!("not valid JSON: {e}"))),
            Err(Misfit::Schema) => Err((
                DeadLetterStage::Schema,
                match payload.iter().find(|b| !b.is_ascii_whitespace()) {
                    Some(b'{') => explain(payload, &self.events)
                        .unwrap_or_else(|| "does not fit the event schema".into()),
                    _ => "expected a JSON object".into(),
                },
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn decode_isolating(
        &self,
        chunk: &RawChunk,
        candidates: &[usize],
        range: Range<usize>,
        good: &mut Vec<usize>,
        parts: &mut Vec<RecordBatch>,
        dead_letters: &mut Vec<DeadLetter>,
        now: i64,
    ) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        match self.try_decode(chunk, &candidates[range.clone()]) {
            Ok(batch) => {
                good.extend_from_slice(&candidates[range]);
                parts.push(batch);
            }
            Err(arrow_reason) if range.len() == 1 => {
                let i = candidates[range.start];
                let reason = explain(chunk.payload(i), &self.events).unwrap_or(arrow_reason);
                dead_letters.push(dead_letter(chunk, i, DeadLetterStage::Schema, reason, now));
            }
            Err(_) => {
                let mid = range.start + range.len() / 2;
                self.decode_isolating(
                    chunk,
                    candidates,
                    range.start..mid,
                    good,
                    parts,
                    dead_letters,
                    now,
                )?;
                self.decode_isolating(
                    chunk,
                    candidates,
                    mid..range.end,
                    good,
                    parts,
                    dead_letters,
                    now,
                )?;
            }
        }
        Ok(())
    }

    /// Decodes the given messages in one pass; any rejected message fails the pass.
    fn try_decode(&self, chunk: &RawChunk, which: &[usize]) -> Result<RecordBatch, String> {
        let mut decoder = ReaderBuilder::new(self.events.arrow_schema().clone())
            .with_batch_size(which.len().max(1))
            .build_decoder()
            .map_err(|e| e.to_string())?;
        for &i in which {
            let payload = chunk.payload(i);
            let before = decoder.len();
            let read = decoder.decode(payload).map_err(|e| e.to_string())?;
            // One message must be exactly one complete record.
            if read != payload.len() || decoder.has_partial_record() || decoder.len() != before + 1
            {
                return Err("message is not exactly one JSON object".into());
            }
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
        for &i in rows {
            // Writes into the value being built; append_value("") ends it.
            let _ = write!(trace, "{:032x}", chunk.trace_id(i));
            trace.append_value("");
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

fn dead_letter(
    chunk: &RawChunk,
    i: usize,
    stage: DeadLetterStage,
    reason: String,
    now: i64,
) -> DeadLetter {
    DeadLetter {
        raw: chunk.payload(i).to_vec(),
        key: chunk.key(i).map(<[u8]>::to_vec),
        topic: chunk.topic(i).clone(),
        partition: chunk.partition(i),
        offset: chunk.offset(i),
        stage,
        reason,
        rejected_at_ms: now,
    }
}
