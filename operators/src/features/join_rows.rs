//! What the feature join adds to each row besides the values: the lists of
//! missing and stale feature names, and the dead letters of rows a policy
//! sends away.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, ListArray, RecordBatch, StringBuilder};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field};
use arrow_json::LineDelimitedWriter;
use scorestream_schemas::{DeadLetter, DeadLetterStage, columns};

use crate::Result;

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

/// Dead letters for valid events the store could not enrich. Their original
/// bytes are gone by now, so `raw` is the decoded event re-encoded as JSON,
/// which replays the same way.
pub(super) fn dead_letters(rejected: &RecordBatch, reasons: &[String]) -> Result<Vec<DeadLetter>> {
    let topic = rejected
        .column_by_name(columns::SOURCE_TOPIC)
        .map(|c| c.as_string::<i32>().clone());
    let partition = rejected
        .column_by_name(columns::SOURCE_PARTITION)
        .map(|c| c.as_primitive::<arrow::datatypes::Int32Type>().clone());
    let offset = rejected
        .column_by_name(columns::SOURCE_OFFSET)
        .map(|c| c.as_primitive::<arrow::datatypes::Int64Type>().clone());
    let event_cols: Vec<usize> = rejected
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.name().starts_with("source_") && f.name() != columns::INGEST_TIME)
        .map(|(i, _)| i)
        .collect();
    let events = rejected.project(&event_cols)?;
    let now = crate::now_ms();
    let mut out = Vec::with_capacity(rejected.num_rows());
    for (row, reason) in reasons.iter().enumerate() {
        let mut raw = Vec::new();
        let mut w = LineDelimitedWriter::new(&mut raw);
        w.write(&events.slice(row, 1))?;
        w.finish()?;
        if raw.last() == Some(&b'\n') {
            raw.pop();
        }
        out.push(DeadLetter {
            raw,
            key: None,
            topic: topic
                .as_ref()
                .map_or_else(|| "".into(), |t| t.value(row).into()),
            partition: partition.as_ref().map_or(-1, |p| p.value(row)),
            offset: offset.as_ref().map_or(-1, |o| o.value(row)),
            stage: DeadLetterStage::Features,
            reason: reason.clone(),
            rejected_at_ms: now,
        });
    }
    Ok(out)
}
