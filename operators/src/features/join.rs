use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{filter_record_batch, not};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_json::LineDelimitedWriter;
use scorestream_schemas::{DeadLetter, DeadLetterStage, columns};

use super::{FeatureStore, OnMissing};
use crate::{Envelope, OperatorError, Result};

/// Appends a batch's features (and a `features_missing` flag) to its rows.
pub struct FeatureJoin {
    store: Arc<dyn FeatureStore>,
    key_idx: usize,
    on_missing: OnMissing,
    out_schema: SchemaRef,
}

impl FeatureJoin {
    /// Checks, once, that the key is a string column of the input and that no
    /// feature name collides with an input column.
    pub fn try_new(
        store: Arc<dyn FeatureStore>,
        input: &SchemaRef,
        key: &str,
        on_missing: OnMissing,
    ) -> Result<Self, String> {
        let key_idx = input
            .index_of(key)
            .map_err(|_| format!("key `{key}` is not a field of the event schema"))?;
        if input.field(key_idx).data_type() != &DataType::Utf8 {
            return Err(format!("key `{key}` must be a string field"));
        }
        let mut fields: Vec<_> = input.fields().iter().cloned().collect();
        for f in store.schema().fields() {
            if input.field_with_name(f.name()).is_ok() {
                return Err(format!(
                    "feature `{}` has the same name as an event field",
                    f.name()
                ));
            }
            fields.push(f.clone());
        }
        fields.push(Arc::new(Field::new(
            columns::FEATURES_MISSING,
            DataType::Boolean,
            false,
        )));
        Ok(Self {
            store,
            key_idx,
            on_missing,
            out_schema: Arc::new(Schema::new(fields)),
        })
    }

    pub fn output_schema(&self) -> &SchemaRef {
        &self.out_schema
    }

    pub async fn process(&self, mut env: Envelope) -> Result<Envelope> {
        let Some(batch) = env.batch.take() else {
            return Ok(env);
        };
        let keys = batch.column(self.key_idx).as_string::<i32>();
        let rows = self.store.lookup(keys).await?;
        let missing = not(&rows.found)?;
        let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
        cols.extend(rows.columns);
        cols.push(Arc::new(missing.clone()));
        let joined = RecordBatch::try_new(self.out_schema.clone(), cols)?;

        let n_missing = missing.true_count();
        if n_missing == 0 || self.on_missing == OnMissing::Null {
            env.batch = Some(joined);
            return Ok(env);
        }
        if self.on_missing == OnMissing::Fail {
            let row = (0..missing.len()).find(|&i| missing.value(i)).unwrap_or(0);
            let key = if keys.is_null(row) {
                "<null>".to_owned()
            } else {
                keys.value(row).to_owned()
            };
            return Err(OperatorError::MissingFeatures { key });
        }
        env.dead_letters
            .extend(dead_letters(&filter_record_batch(&batch, &missing)?)?);
        let kept = filter_record_batch(&joined, &rows.found)?;
        env.batch = (kept.num_rows() > 0).then_some(kept);
        Ok(env)
    }
}

/// Dead letters for valid events the store could not enrich. Their original
/// bytes are gone by now, so `raw` is the decoded event re-encoded as JSON,
/// which replays the same way.
fn dead_letters(missing: &RecordBatch) -> Result<Vec<DeadLetter>> {
    let topic = missing
        .column_by_name(columns::SOURCE_TOPIC)
        .map(|c| c.as_string::<i32>().clone());
    let partition = missing
        .column_by_name(columns::SOURCE_PARTITION)
        .map(|c| c.as_primitive::<arrow::datatypes::Int32Type>().clone());
    let offset = missing
        .column_by_name(columns::SOURCE_OFFSET)
        .map(|c| c.as_primitive::<arrow::datatypes::Int64Type>().clone());
    let event_cols: Vec<usize> = missing
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.name().starts_with("source_") && f.name() != columns::INGEST_TIME)
        .map(|(i, _)| i)
        .collect();
    let events = missing.project(&event_cols)?;
    let now = crate::now_ms();
    let mut out = Vec::with_capacity(missing.num_rows());
    for row in 0..missing.num_rows() {
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
            reason: "the feature store has no features for this event's key".into(),
            rejected_at_ms: now,
        });
    }
    Ok(out)
}
