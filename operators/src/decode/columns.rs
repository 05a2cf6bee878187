//! Arrow builders for the event fields, filled one message at a time,
//! either from the scanner's slots or from a one-row arrow-json batch (the
//! slow path), so rows keep their order whichever path read them.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{Float64Type, Int64Type, SchemaRef, TimestampMillisecondType};
use arrow::error::ArrowError;
use scorestream_schemas::{ColumnType, FieldSpec};

use super::scan::{RowScan, Slot};

enum Column {
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Time(TimestampMillisecondBuilder),
}

pub(super) struct Columns {
    schema: SchemaRef,
    columns: Vec<Column>,
}

impl Columns {
    /// Builders for `schema` (the event fields, in order), sized for `rows`
    /// messages of `bytes` in all.
    pub(super) fn new(schema: &SchemaRef, fields: &[FieldSpec], rows: usize, bytes: usize) -> Self {
        let columns = fields
            .iter()
            .map(|f| match f.field_type {
                // A string column holds at most the messages' bytes; a
                // fraction of that is a fair first guess.
                ColumnType::String => Column::Str(StringBuilder::with_capacity(rows, bytes / 8)),
                // `EventSchema` refuses the narrow types; were one to get
                // here, the wide column would fail the batch's schema check.
                ColumnType::Int64 | ColumnType::Int32 => {
                    Column::Int(Int64Builder::with_capacity(rows))
                }
                ColumnType::Float64 | ColumnType::Float32 => {
                    Column::Float(Float64Builder::with_capacity(rows))
                }
                ColumnType::Bool => Column::Bool(BooleanBuilder::with_capacity(rows)),
                ColumnType::Timestamp => Column::Time(
                    TimestampMillisecondBuilder::with_capacity(rows)
                        .with_data_type(f.field_type.data_type()),
                ),
            })
            .collect();
        Self {
            schema: schema.clone(),
            columns,
        }
    }

    /// Appends the row the scanner read from `text`.
    pub(super) fn push_scanned(&mut self, text: &str, row: &RowScan) -> Result<(), ArrowError> {
        for (column, slot) in self.columns.iter_mut().zip(&row.slots) {
            match (column, slot) {
                (Column::Str(b), Slot::Null) => b.append_null(),
                (Column::Str(b), Slot::Raw(r)) => {
                    b.append_value(text.get(r.clone()).ok_or_else(|| {
                        ArrowError::ComputeError("scanned text out of bounds".into())
                    })?)
                }
                (Column::Str(b), Slot::Unescaped(r)) => {
                    b.append_value(row.scratch.get(r.clone()).ok_or_else(|| {
                        ArrowError::ComputeError("unescaped text out of bounds".into())
                    })?)
                }
                (Column::Int(b), Slot::Int(v)) => b.append_value(*v),
                (Column::Int(b), Slot::Null) => b.append_null(),
                (Column::Time(b), Slot::Int(v)) => b.append_value(*v),
                (Column::Time(b), Slot::Null) => b.append_null(),
                (Column::Float(b), Slot::Float(v)) => b.append_value(*v),
                (Column::Float(b), Slot::Null) => b.append_null(),
                (Column::Bool(b), Slot::Bool(v)) => b.append_value(*v),
                (Column::Bool(b), Slot::Null) => b.append_null(),
                (_, slot) => {
                    return Err(ArrowError::ComputeError(format!(
                        "scanner produced {slot:?} for a column of another type"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Appends the single row of a batch arrow-json decoded.
    pub(super) fn push_decoded(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        if batch.num_rows() != 1 || batch.num_columns() != self.columns.len() {
            return Err(ArrowError::ComputeError(format!(
                "expected one decoded row of {} columns, got {} of {}",
                self.columns.len(),
                batch.num_rows(),
                batch.num_columns()
            )));
        }
        let mismatch = || ArrowError::ComputeError("arrow-json decoded another type".into());
        for (column, array) in self.columns.iter_mut().zip(batch.columns()) {
            if array.is_null(0) {
                match column {
                    Column::Str(b) => b.append_null(),
                    Column::Int(b) => b.append_null(),
                    Column::Float(b) => b.append_null(),
                    Column::Bool(b) => b.append_null(),
                    Column::Time(b) => b.append_null(),
                }
                continue;
            }
            match column {
                Column::Str(b) => {
                    b.append_value(array.as_string_opt::<i32>().ok_or_else(mismatch)?.value(0))
                }
                Column::Int(b) => b.append_value(
                    array
                        .as_primitive_opt::<Int64Type>()
                        .ok_or_else(mismatch)?
                        .value(0),
                ),
                Column::Float(b) => b.append_value(
                    array
                        .as_primitive_opt::<Float64Type>()
                        .ok_or_else(mismatch)?
                        .value(0),
                ),
                Column::Bool(b) => {
                    b.append_value(array.as_boolean_opt().ok_or_else(mismatch)?.value(0))
                }
                Column::Time(b) => b.append_value(
                    array
                        .as_primitive_opt::<TimestampMillisecondType>()
                        .ok_or_else(mismatch)?
                        .value(0),
                ),
            }
        }
        Ok(())
    }

    pub(super) fn finish(self) -> Result<RecordBatch, ArrowError> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .into_iter()
            .map(|c| -> ArrayRef {
                match c {
                    Column::Str(mut b) => Arc::new(b.finish()),
                    Column::Int(mut b) => Arc::new(b.finish()),
                    Column::Float(mut b) => Arc::new(b.finish()),
                    Column::Bool(mut b) => Arc::new(b.finish()),
                    Column::Time(mut b) => Arc::new(b.finish()),
                }
            })
            .collect();
        RecordBatch::try_new(self.schema, arrays)
    }
}
