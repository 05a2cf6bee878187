use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{Schema, SchemaRef};
use candle_core::{Device, Tensor};
use scorestream_schemas::score_fields;
use serde::Deserialize;

use super::{DeviceChoice, InputMatrix, ModelPackage};
use crate::{Envelope, OperatorError, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorerConfig {
    /// A model package directory, or a registry directory of versions
    /// (`v1/`, `v2/`, ...: the highest is used, and a higher one that
    /// appears is loaded and swapped in); relative paths are resolved
    /// against the job file.
    pub path: PathBuf,
    #[serde(default)]
    pub device: DeviceChoice,
    /// How often a registry is checked for a new version.
    #[serde(default = "default_reload_interval")]
    pub reload_interval: crate::config::HumanDuration,
}

fn default_reload_interval() -> crate::config::HumanDuration {
    crate::config::HumanDuration(std::time::Duration::from_secs(10))
}

/// Rows per forward pass on the CPU.
pub const CPU_SLICE_ROWS: usize = 8_192;

/// Scores whole batches: one input tensor per batch (per slice on the CPU),
/// one forward pass.
pub struct Scorer {
    package: ModelPackage,
    inputs: InputMatrix,
    device: Device,
    in_schema: SchemaRef,
    out_schema: SchemaRef,
}

impl Scorer {
    /// Binds the package's inputs to the batches it will receive; every input
    /// that does not fit is reported.
    pub fn new(
        package: ModelPackage,
        device: Device,
        input: &SchemaRef,
    ) -> Result<Self, Vec<OperatorError>> {
        let inputs = InputMatrix::bind(&package.manifest.inputs, input)?;
        let mut fields: Vec<_> = input.fields().iter().cloned().collect();
        fields.extend(score_fields().into_iter().map(Arc::new));
        Ok(Self {
            package,
            inputs,
            device,
            in_schema: input.clone(),
            out_schema: Arc::new(Schema::new(fields)),
        })
    }

    /// Checks that `package` can score this job's batches (its inputs bind
    /// to them), without swapping it in.
    pub fn check(&self, package: &ModelPackage) -> Result<(), Vec<OperatorError>> {
        InputMatrix::bind(&package.manifest.inputs, &self.in_schema).map(|_| ())
    }

    /// Scores the following batches with `package` (a new version of the
    /// model, hot-reloaded); if its inputs do not bind, the current model
    /// stays.
    pub fn swap(&mut self, package: ModelPackage) -> Result<(), Vec<OperatorError>> {
        self.inputs = InputMatrix::bind(&package.manifest.inputs, &self.in_schema)?;
        self.package = package;
        Ok(())
    }

    pub fn input_schema(&self) -> &SchemaRef {
        &self.in_schema
    }

    pub fn output_schema(&self) -> &SchemaRef {
        &self.out_schema
    }

    pub fn model_name(&self) -> &str {
        &self.package.manifest.name
    }

    pub fn model_version(&self) -> &str {
        &self.package.manifest.version
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Scores of every row of `batch`, in row order. On the CPU a big batch
    /// goes through the network in slices of [`CPU_SLICE_ROWS`], whose
    /// activations stay in cache (`cargo bench --bench scorer`: 64-256-256-1
    /// at 65,536 rows in one pass is 2.3x slower per row than in 8,192-row
    /// slices); a GPU takes the whole batch at once.
    pub fn scores(&self, batch: &RecordBatch) -> Result<Float32Array> {
        let rows = batch.num_rows();
        let slice = if self.device.is_cpu() {
            CPU_SLICE_ROWS
        } else {
            rows.max(1)
        };
        let mut out = Vec::with_capacity(rows);
        for start in (0..rows).step_by(slice) {
            let part = batch.slice(start, slice.min(rows - start));
            let x = self.inputs.build(&part)?;
            let x = Tensor::from_vec(x, (part.num_rows(), self.inputs.width()), &self.device)?;
            out.extend(self.package.mlp.predict(&x)?.to_vec1::<f32>()?);
        }
        Ok(Float32Array::from(out))
    }

    /// Appends `score`, `model_name`, `model_version` and `scored_at`.
    pub fn process(&self, mut env: Envelope) -> Result<Envelope> {
        let Some(batch) = env.batch.take() else {
            return Ok(env);
        };
        let n = batch.num_rows();
        let scores = self.scores(&batch)?;
        let now = crate::now_ms();
        let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
        cols.push(Arc::new(scores));
        cols.push(Arc::new(StringArray::from_iter_values(
            std::iter::repeat_n(self.model_name(), n),
        )));
        cols.push(Arc::new(StringArray::from_iter_values(
            std::iter::repeat_n(self.model_version(), n),
        )));
        cols.push(Arc::new(
            TimestampMillisecondArray::from_iter_values(std::iter::repeat_n(now, n))
                .with_timezone(scorestream_schemas::UTC),
        ));
        env.batch = Some(RecordBatch::try_new(self.out_schema.clone(), cols)?);
        Ok(env)
    }
}
