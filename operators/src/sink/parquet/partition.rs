//! Hive-style partitioning of the scored output: `event_date=2026-12-01/
//! event_hour=9/…`, so DuckDB, pyarrow, Spark and DataFusion prune whole
//! directories from a `WHERE` on those columns.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit, TimestampMillisecondType};
use arrow::row::{RowConverter, SortField};
use arrow::util::display::array_value_to_string;

use crate::{OperatorError, Result};

pub const EVENT_DATE: &str = "event_date";
pub const EVENT_HOUR: &str = "event_hour";
/// What Hive, Spark and pyarrow write for a null partition value.
pub(super) const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

#[derive(Debug, Clone)]
enum Key {
    Date,
    Hour,
    /// An output column, moved from the files into the directory names as
    /// Hive does (readers add it back from the path).
    Column {
        name: String,
        index: usize,
    },
}

impl Key {
    /// The key a `partition_by` entry names. Any other column type would
    /// make directory names readers cannot parse back into the column.
    fn of(name: &str, schema: &Schema) -> std::result::Result<Self, String> {
        match name {
            EVENT_DATE => Ok(Key::Date),
            EVENT_HOUR => Ok(Key::Hour),
            _ => match schema.index_of(name) {
                Ok(index) if partitionable(schema.field(index).data_type()) => Ok(Key::Column {
                    name: name.to_owned(),
                    index,
                }),
                Ok(index) => Err(format!(
                    "column `{name}` is {}; partition by a string, integer or boolean column, or by event_date / event_hour",
                    schema.field(index).data_type()
                )),
                Err(_) => Err(format!(
                    "no output column `{name}`; use event_date, event_hour or one of: {}",
                    scorestream_schemas::column_names(schema)
                )),
            },
        }
    }
}

/// The index of the `partition_time` column, which must be a timestamp.
fn time_column(partition_time: &str, schema: &Schema) -> std::result::Result<usize, String> {
    match schema.index_of(partition_time) {
        Ok(i) if matches!(schema.field(i).data_type(), DataType::Timestamp(..)) => Ok(i),
        Ok(i) => Err(format!(
            "column `{partition_time}` is {}, not a timestamp",
            schema.field(i).data_type()
        )),
        Err(_) => Err(format!(
            "no output column `{partition_time}`; use a timestamp field of the schema or ingest_time"
        )),
    }
}

/// How rows map to partition directories, checked against the output schema.
#[derive(Debug, Clone)]
pub struct PartitionSpec {
    keys: Vec<Key>,
    /// Index of the `partition_time` column, when a key derives from it.
    time: Option<usize>,
    /// The columns files keep (all but the partition columns).
    keep: Vec<usize>,
    file_schema: SchemaRef,
}

impl PartitionSpec {
    /// Problems are (key, message), naming what was wrong.
    pub fn new(
        partition_by: &[String],
        partition_time: &str,
        schema: &SchemaRef,
    ) -> std::result::Result<Self, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let mut keys = Vec::new();
        for name in partition_by {
            if partition_by.iter().filter(|n| *n == name).count() > 1 {
                problems.push(("sink.partition_by", format!("`{name}` is listed twice")));
                continue;
            }
            match Key::of(name, schema) {
                Ok(key) => keys.push(key),
                Err(problem) => problems.push(("sink.partition_by", problem)),
            }
        }
        let derived = keys.iter().any(|k| matches!(k, Key::Date | Key::Hour));
        let mut time = None;
        if derived {
            match time_column(partition_time, schema) {
                Ok(i) => time = Some(i),
                Err(problem) => problems.push(("sink.partition_time", problem)),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let moved: Vec<usize> = keys
            .iter()
            .filter_map(|k| match k {
                Key::Column { index, .. } => Some(*index),
                _ => None,
            })
            .collect();
        let keep: Vec<usize> = (0..schema.fields().len())
            .filter(|i| !moved.contains(i))
            .collect();
        let file_schema = Arc::new(
            schema
                .project(&keep)
                .map_err(|e| vec![("sink.partition_by", e.to_string())])?,
        );
        Ok(Self {
            keys,
            time,
            keep,
            file_schema,
        })
    }

    /// No partitioning: every file in one directory.
    pub fn none(schema: &SchemaRef) -> Self {
        Self {
            keys: Vec::new(),
            time: None,
            keep: (0..schema.fields().len()).collect(),
            file_schema: schema.clone(),
        }
    }

    /// The schema of the data files (without the partition columns).
    pub(crate) fn file_schema(&self) -> &SchemaRef {
        &self.file_schema
    }

    /// The partition columns in directory order with the types readers
    /// should give them: `event_date` a date, `event_hour` an integer.
    pub fn columns(&self, schema: &Schema) -> Vec<(String, DataType)> {
        self.keys
            .iter()
            .map(|k| match k {
                Key::Date => (EVENT_DATE.to_owned(), DataType::Date32),
                Key::Hour => (EVENT_HOUR.to_owned(), DataType::Int32),
                Key::Column { name, index } => {
                    (name.clone(), schema.field(*index).data_type().clone())
                }
            })
            .collect()
    }

    /// Splits a batch into (partition directory relative to the table, index
    /// of its first row in `batch`, rows without the partition columns). One
    /// partition, the usual case for live data, costs no copy.
    pub fn split(&self, batch: &RecordBatch) -> Result<Vec<(String, usize, RecordBatch)>> {
        let files = if self.keep.len() == batch.num_columns() {
            batch.clone()
        } else {
            batch.project(&self.keep)?
        };
        if self.keys.is_empty() || batch.num_rows() == 0 {
            return Ok(vec![(String::new(), 0, files)]);
        }
        let key_columns = self.key_columns(batch)?;
        let fields = key_columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields)?;
        let rows = converter.convert_columns(&key_columns)?;
        let mut group_of = HashMap::new();
        let mut groups: Vec<(usize, Vec<u32>)> = Vec::new();
        // Rows of one partition come in runs: hash only where a run starts.
        let mut g = 0;
        for i in 0..rows.num_rows() {
            if i == 0 || rows.row(i) != rows.row(i - 1) {
                g = *group_of.entry(rows.row(i)).or_insert_with(|| {
                    groups.push((i, Vec::new()));
                    groups.len() - 1
                });
            }
            groups[g].1.push(i as u32);
        }
        if groups.len() == 1 {
            return Ok(vec![(self.dir(&key_columns, 0), 0, files)]);
        }
        groups
            .into_iter()
            .map(|(first, idx)| {
                let rows = take_record_batch(&files, &UInt32Array::from(idx))?;
                Ok((self.dir(&key_columns, first), first, rows))
            })
            .collect()
    }

    /// One array per key: the time bucket (hours or days since the epoch)
    /// for derived keys, the column itself otherwise.
    fn key_columns(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let millis = match self.time {
            Some(i) => {
                let col = cast(
                    batch.column(i),
                    &DataType::Timestamp(TimeUnit::Millisecond, None),
                )?;
                Some(col.as_primitive::<TimestampMillisecondType>().clone())
            }
            None => None,
        };
        let unit = if self.keys.iter().any(|k| matches!(k, Key::Hour)) {
            HOUR_MS
        } else {
            DAY_MS
        };
        let mut out: Vec<ArrayRef> = Vec::new();
        let mut bucket_added = false;
        for k in &self.keys {
            match k {
                Key::Date | Key::Hour => {
                    if bucket_added {
                        continue;
                    }
                    bucket_added = true;
                    let ms = millis.as_ref().ok_or_else(|| {
                        OperatorError::Internal("partition time column not bound".into())
                    })?;
                    let buckets: Int64Array = ms.unary_opt(|t| Some(t.div_euclid(unit)));
                    out.push(Arc::new(buckets));
                }
                Key::Column { index, .. } => out.push(batch.column(*index).clone()),
            }
        }
        Ok(out)
    }

    /// The directory of the row at `i`: `k1=v1/k2=v2`.
    fn dir(&self, key_columns: &[ArrayRef], i: usize) -> String {
        let unit_hours = self.keys.iter().any(|k| matches!(k, Key::Hour));
        let mut parts = Vec::with_capacity(self.keys.len());
        let mut col = 0;
        let mut bucket: Option<Option<i64>> = None;
        for k in &self.keys {
            let value = match k {
                Key::Date | Key::Hour => {
                    let b = *bucket.get_or_insert_with(|| {
                        let a = key_columns[col].as_primitive::<arrow::datatypes::Int64Type>();
                        col += 1;
                        a.is_valid(i).then(|| a.value(i))
                    });
                    let ms = b.map(|b| if unit_hours { b * HOUR_MS } else { b * DAY_MS });
                    match (k, ms) {
                        (_, None) => NULL_PARTITION.to_owned(),
                        (Key::Date, Some(ms)) => date_of(ms),
                        (_, Some(ms)) => (ms.rem_euclid(DAY_MS) / HOUR_MS).to_string(),
                    }
                }
                Key::Column { .. } => {
                    let a = &key_columns[col];
                    col += 1;
                    if a.is_null(i) {
                        NULL_PARTITION.to_owned()
                    } else {
                        escape(&array_value_to_string(a, i).unwrap_or_default())
                    }
                }
            };
            parts.push(format!("{}={value}", self.key_name(k)));
        }
        parts.join("/")
    }

    fn key_name<'a>(&self, k: &'a Key) -> &'a str {
        match k {
            Key::Date => EVENT_DATE,
            Key::Hour => EVENT_HOUR,
            Key::Column { name, .. } => name,
        }
    }
}

fn partitionable(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Boolean) || t.is_integer()
}

fn date_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| NULL_PARTITION.to_owned())
}

/// Percent-escapes what may not appear in a path segment, as Hive does, so a
/// value can neither nest directories nor escape the table.
fn escape(v: &str) -> String {
    if v.is_empty() {
        return NULL_PARTITION.to_owned();
    }
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') && !v.starts_with('.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
