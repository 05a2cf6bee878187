//! An envelope's rows and dead letters, split by the Kafka partition they
//! came from: each partition's share goes to its own open files.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, BooleanArray, Int32Array, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::boolean::and;
use arrow::compute::kernels::cmp::eq;
use scorestream_schemas::{DeadLetter, columns};

use crate::{Envelope, OperatorError, Result, TopicPartition};

pub(super) type Part<'a> = (
    TopicPartition,
    Range<i64>,
    Option<RecordBatch>,
    Vec<&'a DeadLetter>,
);

/// The envelope's rows and dead letters, by Kafka partition, checked to
/// account for exactly the messages its coverage names.
pub(super) fn split_by_partition(env: &Envelope) -> Result<Vec<Part<'_>>> {
    let single = env.coverage.iter().count() == 1;
    let mut parts = Vec::new();
    for (topic, partition, range) in env.coverage.iter() {
        let rows = match &env.batch {
            Some(b) if single => Some(b.clone()),
            Some(b) => Some(rows_of(b, topic, partition)?),
            None => None,
        };
        let dead: Vec<&DeadLetter> = env
            .dead_letters
            .iter()
            .filter(|d| d.partition == partition && d.topic == *topic)
            .collect();
        parts.push(((topic.clone(), partition), range.clone(), rows, dead));
    }
    let accounted: usize = parts
        .iter()
        .map(|p| p.2.as_ref().map_or(0, RecordBatch::num_rows) + p.3.len())
        .sum();
    if accounted != env.weight() {
        return Err(OperatorError::Internal(format!(
            "envelope holds {} messages but its coverage accounts for {accounted}",
            env.weight()
        )));
    }
    Ok(parts)
}

pub(super) fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Arc<dyn Array>> {
    batch
        .column_by_name(name)
        .ok_or_else(|| OperatorError::Internal(format!("sink input has no `{name}` column")))
}

/// The rows of `batch` that came from one partition.
fn rows_of(batch: &RecordBatch, topic: &str, partition: i32) -> Result<RecordBatch> {
    let by_partition = eq(
        column(batch, columns::SOURCE_PARTITION)?,
        &Int32Array::new_scalar(partition),
    )?;
    let by_topic = eq(
        column(batch, columns::SOURCE_TOPIC)?,
        &StringArray::new_scalar(topic),
    )?;
    let mask: BooleanArray = and(&by_partition, &by_topic)?;
    Ok(filter_record_batch(batch, &mask)?)
}
