//! What the feature join adds to each row besides the values: the lists of
//! missing and stale feature names, and the dead letters of rows a policy
//! sends away.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, ListArray, RecordBatch, StringBuilder};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type};
use arrow_json::LineDelimitedWriter;
use scorestream_schemas::{DeadLetter, DeadLetterStage, ReasonCode, columns};

use crate::Result;
use crate::decode::original;
use crate::source::kafka::RawChunk;

/// One output feature: its store column, policy and default as a 1-row
/// array (for `zip`).
pub(super) struct Feature {
    pub(super) name: String,
    pub(super) max_age_ms: Option<i64>,
    pub(super) default: Option<ArrayRef>,
}

/// Per row, the names of the features flagged in `flags`. Only flagged rows
/// are visited: most rows of most batches have none.
pub(super) fn names(features: &[Feature], flags: &[BooleanArray], n: usize) -> Result<ArrayRef> {
    let field = Arc::new(Field::new_list_field(DataType::Utf8, true));
    let flagged: Vec<(usize, &BooleanArray)> = flags
        .iter()
        .enumerate()
        .filter(|(_, f)| f.true_count() > 0)
        .collect();
    let mut offsets = vec![0i32; n + 1];
    let mut values = StringBuilder::new();
    if !flagged.is_empty() {
        let mut any = flagged[0].1.clone();
        for (_, f) in &flagged[1..] {
            any = arrow::compute::or(&any, f)?;
        }
        let mut len = 0i32;
        let mut next = 0;
        for i in any.values().set_indices() {
            offsets[next + 1..=i].fill(len);
            for (j, f) in &flagged {
                if f.value(i) {
                    values.append_value(&features[*j].name);
                    len += 1;
                }
            }
            offsets[i + 1] = len;
            next = i + 1;
        }
        offsets[next + 1..].fill(len);
    }
    Ok(Arc::new(ListArray::new(
        field,
        OffsetBuffer::new(offsets.into()),
        Arc::new(values.finish()),
        None,
    )))
}

/// Why a row is sent away: one (code, words) per problem, empty when the
/// store has nothing at all for the key.
pub(super) type Problems = Vec<(ReasonCode, String)>;

/// The code and words of a rejected row's dead letter.
pub(super) fn reason(problems: Problems) -> (ReasonCode, String) {
    let Some(&(code, _)) = problems.first() else {
        return (
            ReasonCode::FeatureMissing,
            "the feature store has no features for this event's key".to_owned(),
        );
    };
    let code = match problems
        .iter()
        .any(|(c, _)| *c == ReasonCode::FeatureMissing)
    {
        true => ReasonCode::FeatureMissing,
        false => code,
    };
    let words: Vec<String> = problems.into_iter().map(|(_, w)| w).collect();
    (code, format!("the feature store has {}", words.join("; ")))
}

/// Dead letters for the `rejected` rows of `batch`, valid events the store
/// could not enrich. With the chunk they were decoded from at hand (the
/// running pipeline), each keeps its message exactly as the producer sent
/// it. Without it, `raw` is the decoded event re-encoded as JSON, which
/// replays the same way but without key or headers.
pub(super) fn dead_letters(
    batch: &RecordBatch,
    rejected: &BooleanArray,
    origin: Option<&RawChunk>,
    reasons: Vec<(ReasonCode, String)>,
) -> Result<Vec<DeadLetter>> {
    let col = |name| batch.column_by_name(name);
    let topic = col(columns::SOURCE_TOPIC).map(|c| c.as_string::<i32>().clone());
    let partition = col(columns::SOURCE_PARTITION).map(|c| c.as_primitive::<Int32Type>().clone());
    let offset = col(columns::SOURCE_OFFSET).map(|c| c.as_primitive::<Int64Type>().clone());
    let now = crate::now_ms();
    let mut out = Vec::with_capacity(reasons.len());
    // Rows are a subsequence of the chunk's messages, in order: one walk
    // through both finds every rejected row's message.
    let mut next = 0;
    for (row, (code, reason)) in rejected.values().set_indices().zip(reasons) {
        let at = (
            topic.as_ref().map_or("", |t| t.value(row)),
            partition.as_ref().map_or(-1, |p| p.value(row)),
            offset.as_ref().map_or(-1, |o| o.value(row)),
        );
        let found = origin.and_then(|chunk| {
            let i = (next..chunk.len()).find(|&i| {
                (chunk.offset(i), chunk.partition(i), chunk.topic(i).as_ref()) == (at.2, at.1, at.0)
            })?;
            next = i + 1;
            Some((chunk, i))
        });
        let letter = match found {
            Some((chunk, i)) => original(chunk, i, DeadLetterStage::Features, code, reason, now),
            None => DeadLetter {
                raw: reencoded(batch, row)?,
                key: None,
                headers: Vec::new(),
                topic: at.0.into(),
                partition: at.1,
                offset: at.2,
                source_timestamp_ms: None,
                stage: DeadLetterStage::Features,
                reason_code: code,
                reason,
                rejected_at_ms: now,
            },
        };
        out.push(letter);
    }
    Ok(out)
}

/// The event columns of one row as a line of JSON.
fn reencoded(batch: &RecordBatch, row: usize) -> Result<Vec<u8>> {
    let event_cols: Vec<usize> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.name().starts_with("source_") && f.name() != columns::INGEST_TIME)
        .map(|(i, _)| i)
        .collect();
    let mut raw = Vec::new();
    let mut w = LineDelimitedWriter::new(&mut raw);
    w.write(&batch.project(&event_cols)?.slice(row, 1))?;
    w.finish()?;
    if raw.last() == Some(&b'\n') {
        raw.pop();
    }
    Ok(raw)
}
