use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array};
use arrow::compute::{cast, concat_batches, take};
use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::future::BoxFuture;

use super::{FeatureColumn, FeatureRows, FeatureStore};
use crate::{OperatorError, Result};

/// Key to row. Seeded per process, so lookups of keys an upstream service
/// chose still cannot be steered into collisions.
type KeyIndex = HashMap<String, u32, foldhash::fast::RandomState>;

/// Features kept in memory, loaded from a CSV file: the embedded store for the
/// demo and for jobs whose features fit in RAM.
pub struct FileFeatureStore {
    path: std::path::PathBuf,
    index: KeyIndex,
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
}

impl FileFeatureStore {
    pub fn load(path: &Path, key_column: &str) -> Result<Self> {
        let err = |reason: String| OperatorError::FeatureFile {
            path: path.to_owned(),
            reason,
        };
        let open = || File::open(path).map_err(|e| err(format!("cannot open: {e}")));
        let format = Format::default().with_header(true);
        let (inferred, _) = format
            .infer_schema(open()?, Some(10_000))
            .map_err(|e| err(format!("cannot read the CSV header: {e}")))?;
        // The key is text even when every key happens to look like a number.
        let fields: Vec<Field> = inferred
            .fields()
            .iter()
            .map(|f| {
                let t = if f.name() == key_column {
                    DataType::Utf8
                } else {
                    f.data_type().clone()
                };
                Field::new(f.name(), t, true)
            })
            .collect();
        let file_schema = Arc::new(Schema::new(fields));
        let key_idx = file_schema
            .index_of(key_column)
            .map_err(|_| err(format!("has no key column `{key_column}`")))?;
        let reader = ReaderBuilder::new(file_schema.clone())
            .with_format(format)
            .with_batch_size(64 * 1024)
            .build(open()?)
            .map_err(|e| err(e.to_string()))?;
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))?;
        let all = concat_batches(&file_schema, &batches)?;
        let mut store = Self::from_batch(all, key_idx).map_err(err)?;
        store.path = path.to_owned();
        Ok(store)
    }

    /// Builds the store from an in-memory batch whose column `key_idx` is the key.
    pub(crate) fn from_batch(batch: RecordBatch, key_idx: usize) -> Result<Self, String> {
        let keys = cast(batch.column(key_idx), &DataType::Utf8).map_err(|e| e.to_string())?;
        let keys = keys.as_string::<i32>();
        let mut index = KeyIndex::with_capacity_and_hasher(keys.len(), Default::default());
        for (row, k) in keys.iter().enumerate() {
            let k = k.ok_or_else(|| format!("row {} has an empty key", row + 2))?;
            if index.insert(k.to_owned(), row as u32).is_some() {
                return Err(format!(
                    "key `{k}` appears more than once (again at row {})",
                    row + 2
                ));
            }
        }
        let schema = batch.schema();
        let mut fields = Vec::new();
        let mut columns = Vec::new();
        for (i, f) in schema.fields().iter().enumerate() {
            if i != key_idx {
                fields.push(Field::new(f.name(), f.data_type().clone(), true));
                columns.push(batch.column(i).clone());
            }
        }
        if fields.is_empty() {
            return Err("has a key column but no feature columns".into());
        }
        Ok(Self {
            path: std::path::PathBuf::new(),
            index,
            schema: Arc::new(Schema::new(fields)),
            columns,
        })
    }

    /// Keeps only the declared features, in their order and types; with none
    /// declared, every CSV column is a feature.
    pub fn select(self, wanted: &[FeatureColumn]) -> Result<Self> {
        if wanted.is_empty() {
            return Ok(self);
        }
        let err = |reason: String| OperatorError::FeatureFile {
            path: self.path.clone(),
            reason,
        };
        let mut fields = Vec::with_capacity(wanted.len());
        let mut columns = Vec::with_capacity(wanted.len());
        for w in wanted {
            let i = self.schema.index_of(&w.name).map_err(|_| {
                err(format!(
                    "has no column `{}` (declared in [[features.columns]])",
                    w.name
                ))
            })?;
            let t = w.kind.data_type();
            let col = cast(&self.columns[i], &t).map_err(|e| {
                err(format!(
                    "column `{}` cannot be read as {:?}: {e}",
                    w.name, w.kind
                ))
            })?;
            fields.push(Field::new(&w.name, t, true));
            columns.push(col);
        }
        Ok(Self {
            schema: Arc::new(Schema::new(fields)),
            columns,
            ..self
        })
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn lookup_now(&self, keys: &StringArray) -> Result<FeatureRows> {
        let indices: UInt32Array = keys
            .iter()
            .map(|k| k.and_then(|k| self.index.get(k).copied()))
            .collect();
        let columns = self
            .columns
            .iter()
            .map(|c| take(c, &indices, None))
            .collect::<Result<Vec<_>, _>>()?;
        // Found exactly where the index is valid: reuse its validity bitmap.
        let found = match indices.nulls() {
            Some(n) => arrow::array::BooleanArray::new(n.inner().clone(), None),
            None => arrow::array::BooleanArray::new(
                arrow::buffer::BooleanBuffer::new_set(indices.len()),
                None,
            ),
        };
        Ok(FeatureRows {
            columns,
            found,
            written_at_ms: Vec::new(),
        })
    }
}

impl FeatureStore for FileFeatureStore {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn lookup<'a>(&'a self, keys: &'a StringArray) -> BoxFuture<'a, Result<FeatureRows>> {
        Box::pin(async move { self.lookup_now(keys) })
    }
}
