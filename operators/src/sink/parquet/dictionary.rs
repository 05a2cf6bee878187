//! Which columns are written without dictionary encoding.
//!
//! The Parquet writer dictionary-encodes every column and falls back to
//! plain only once a column chunk's dictionary passes 1 MiB. A scored file
//! holds one Kafka partition's rows of one Hive partition, often 10k–50k
//! rows, so a column whose values are all distinct (event ids, trace ids,
//! offsets, scores) never reaches the limit: every value is hashed into a
//! dictionary that saves nothing. Interning was about a third of the
//! sink's CPU on the reference workload (11% of the job's `perf` samples,
//! the writer 33%). parquet-mr makes the same call after its first
//! page ("is the dictionary compressing?"); here it is made once, from a
//! sample of the first batch large enough to tell.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

/// Rows sampled from the start of the batch.
const SAMPLE_ROWS: usize = 4096;

/// Fewer non-null values than this tell too little; the column keeps its
/// dictionary.
pub(super) const MIN_SAMPLE: usize = 1024;

/// Top-level columns whose sampled values are mostly (over half) distinct.
/// `None` while the batch is too small to tell.
pub(super) fn mostly_distinct(batch: &RecordBatch) -> Option<Vec<String>> {
    if batch.num_rows() < MIN_SAMPLE {
        return None;
    }
    let n = batch.num_rows().min(SAMPLE_ROWS);
    let hasher = RandomState::new();
    let plain = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(_, col)| {
            distinct_share(&col.slice(0, n), &hasher)
                .is_some_and(|(distinct, values)| values >= MIN_SAMPLE && distinct * 2 > values)
        })
        .map(|(f, _)| f.name().clone())
        .collect();
    Some(plain)
}

/// (distinct values, non-null values) of a column the writer would
/// dictionary-encode: strings, binaries and fixed-width primitives.
/// `None` for anything else (booleans, nested, already dictionary).
fn distinct_share(col: &ArrayRef, hasher: &RandomState) -> Option<(usize, usize)> {
    let distinct = match col.data_type() {
        DataType::Utf8 => distinct(col.as_string::<i32>().iter(), hasher),
        DataType::LargeUtf8 => distinct(col.as_string::<i64>().iter(), hasher),
        DataType::Utf8View => distinct(col.as_string_view().iter(), hasher),
        DataType::Binary => distinct(col.as_binary::<i32>().iter(), hasher),
        DataType::LargeBinary => distinct(col.as_binary::<i64>().iter(), hasher),
        DataType::BinaryView => distinct(col.as_binary_view().iter(), hasher),
        t if t.is_primitive() => {
            let width = t.primitive_width()?;
            let data = col.to_data();
            let bytes = data.buffers().first()?.as_slice();
            let start = data.offset() * width;
            let values = (0..col.len()).map(|i| {
                col.is_valid(i)
                    .then(|| bytes.get(start + i * width..start + (i + 1) * width))
                    .flatten()
            });
            distinct(values, hasher)
        }
        _ => return None,
    };
    Some((distinct, col.len() - col.null_count()))
}

fn distinct<T: std::hash::Hash>(
    values: impl Iterator<Item = Option<T>>,
    hasher: &RandomState,
) -> usize {
    let mut seen = HashSet::new();
    for v in values.flatten() {
        seen.insert(hasher.hash_one(v));
    }
    seen.len()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float32Array, Int64Array, ListArray, StringArray};
    use arrow::datatypes::Int32Type;

    use super::*;

    fn batch(n: usize) -> RecordBatch {
        let ids: Vec<String> = (0..n).map(|i| format!("evt-{i:08}")).collect();
        let accounts: Vec<String> = (0..n).map(|i| format!("acct-{}", i % 50)).collect();
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(
            (0..n).map(|i| Some(vec![Some(i as i32)])),
        );
        RecordBatch::try_from_iter([
            ("event_id", Arc::new(StringArray::from(ids)) as ArrayRef),
            (
                "account_id",
                Arc::new(StringArray::from(accounts)) as ArrayRef,
            ),
            (
                "offset",
                Arc::new(Int64Array::from_iter_values(0..n as i64)) as ArrayRef,
            ),
            (
                "segment",
                Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| i % 4))) as ArrayRef,
            ),
            (
                "score",
                Arc::new(Float32Array::from_iter_values(
                    (0..n).map(|i| i as f32 / n as f32),
                )) as ArrayRef,
            ),
            (
                "sparse_id",
                Arc::new(StringArray::from_iter(
                    (0..n).map(|i| (i % 10 == 0).then(|| format!("s{i}"))),
                )) as ArrayRef,
            ),
            ("nested", Arc::new(list) as ArrayRef),
        ])
        .expect("batch")
    }

    #[test]
    fn unique_columns_are_written_plain_repeated_ones_keep_their_dictionary() {
        let plain = mostly_distinct(&batch(20_000)).expect("enough rows");
        // `sparse_id` is distinct but has too few values in the sample to
        // judge; `nested` is not judged at all.
        assert_eq!(plain, ["event_id", "offset", "score"]);
    }

    #[test]
    fn the_sample_is_taken_from_a_sliced_batch_where_it_starts() {
        // A slice whose first rows repeat one value, though the parent's
        // rows are distinct: the offset must be honoured.
        let b = batch(20_000);
        let repeated = RecordBatch::try_from_iter([(
            "x",
            Arc::new(Int64Array::from_iter_values(
                (0..10_000).chain(std::iter::repeat_n(7, 10_000)),
            )) as ArrayRef,
        )])
        .expect("batch");
        assert_eq!(
            mostly_distinct(&repeated.slice(10_000, 10_000)).expect("enough"),
            Vec::<String>::new()
        );
        assert_eq!(
            mostly_distinct(&b.slice(5_000, 5_000)).expect("enough"),
            ["event_id", "offset", "score"]
        );
    }

    #[test]
    fn a_small_batch_decides_nothing() {
        assert_eq!(mostly_distinct(&batch(MIN_SAMPLE - 1)), None);
    }
}
