use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, Float32Array, ListArray, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use candle_core::Device;
use scorestream_schemas::{score_fields, shadow_score_fields};
use serde::Deserialize;

use super::mixed::MixedColumns;
use super::{DeviceChoice, InputMatrix, ModelInUse, ModelPackage, ModelRole, PrecisionChoice};
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
    /// `auto` (f32 on the CPU; on a GPU the reduced precision the model's
    /// manifest prefers), or `f32`, `f16`, `bf16`.
    #[serde(default)]
    pub precision: PrecisionChoice,
    /// How often a registry is checked for a new version.
    #[serde(default = "default_reload_interval")]
    pub reload_interval: crate::config::HumanDuration,
    /// Models also scored on every batch, their scores in `shadow_scores`.
    #[serde(default)]
    pub shadows: Vec<ShadowConfig>,
    /// A challenger that produces the score for a share of keys.
    #[serde(default)]
    pub canary: Option<CanaryConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    /// A model package directory.
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// A model package directory.
    pub path: PathBuf,
    /// Share of keys, 0 to 1, whose score comes from the canary.
    pub fraction: f64,
    /// The string column whose value decides (defaults to `features.key`).
    #[serde(default)]
    pub key: Option<String>,
}

fn default_reload_interval() -> crate::config::HumanDuration {
    crate::config::HumanDuration(std::time::Duration::from_secs(10))
}

/// One model bound to the job's batches.
struct Model {
    package: ModelPackage,
    inputs: InputMatrix,
}

impl Model {
    /// Name and version, as the output columns show them.
    fn label(&self) -> (&str, &str) {
        (self.name(), self.version())
    }

    fn bind(package: ModelPackage, schema: &SchemaRef) -> Result<Self, Vec<OperatorError>> {
        let inputs = InputMatrix::bind(&package.manifest.inputs, schema)?;
        Ok(Self { package, inputs })
    }

    fn name(&self) -> &str {
        &self.package.manifest.name
    }

    fn version(&self) -> &str {
        &self.package.manifest.version
    }

    /// Scores of every row of `batch`, in row order: on the CPU in slices
    /// (see [`super::Model::cpu_slice_rows`]); a GPU takes the whole batch
    /// at once.
    fn scores(&self, batch: &RecordBatch, device: &Device) -> Result<Float32Array> {
        let rows = batch.num_rows();
        let slice = if device.is_cpu() {
            self.package.network.cpu_slice_rows()
        } else {
            rows.max(1)
        };
        let mut out = Vec::with_capacity(rows);
        for start in (0..rows).step_by(slice) {
            let part = batch.slice(start, slice.min(rows - start));
            let x = self.inputs.tensor(&part, device)?;
            out.extend(self.package.predict(&x)?.to_vec1::<f32>()?);
        }
        Ok(Float32Array::from(out))
    }
}

/// A challenger that produces the output score for a fixed share of keys.
struct Canary {
    model: Model,
    /// Keys whose hash falls below this (of 2^32) go to the canary.
    threshold: u64,
    key_idx: usize,
}

/// Scores whole batches: one input tensor per batch (per slice on the CPU),
/// one forward pass per model. The champion's score is the output, except
/// for the canary's share of keys; every other model's score goes to
/// `shadow_scores`, and each row names the model and version that produced
/// its `score`.
pub struct Scorer {
    champion: Model,
    shadows: Vec<Model>,
    canary: Option<Canary>,
    device: Device,
    in_schema: SchemaRef,
    out_schema: SchemaRef,
}

/// Whether `key` is in the canary's share: deterministic per key (murmur3),
/// so an entity is always scored by the same model. The scorer computes
/// the same per batch; tests ask it of one key.
#[cfg(test)]
pub(crate) fn in_canary(key: &str, fraction: f64) -> bool {
    canary_hash(key) < canary_threshold(fraction)
}

/// The hash below which a key belongs to the canary: `fraction` of 2^32.
fn canary_threshold(fraction: f64) -> u64 {
    (fraction.clamp(0.0, 1.0) * 4_294_967_296.0) as u64
}

fn canary_hash(key: &str) -> u64 {
    u64::from(murmur3::murmur3_32(&mut std::io::Cursor::new(key.as_bytes()), 0).unwrap_or(0))
}

impl Scorer {
    /// Binds the package's inputs to the batches it will receive; every input
    /// that does not fit is reported.
    ///
    /// On the CPU, forward passes run on the calling thread alone: the
    /// pipeline's other stages already keep the cores busy, and candle's
    /// intra-op threads then spin at their barriers waiting for each other
    /// (13% of the job's CPU in `scorestream bench`). So gemm is told never
    /// to thread, and slices stay under candle's elementwise threshold
    /// ([`Model::cpu_slice_rows`]).
    pub fn new(
        package: ModelPackage,
        device: Device,
        input: &SchemaRef,
    ) -> Result<Self, Vec<OperatorError>> {
        let champion = Model::bind(package, input)?;
        let mut fields: Vec<_> = input.fields().iter().cloned().collect();
        fields.extend(score_fields().into_iter().map(Arc::new));
        if device.is_cpu() {
            // Process-wide, and only candle's CPU matmuls use gemm.
            gemm::set_threading_threshold(usize::MAX);
        }
        Ok(Self {
            champion,
            shadows: Vec::new(),
            canary: None,
            device,
            in_schema: input.clone(),
            out_schema: Arc::new(Schema::new(fields)),
        })
    }

    /// Also scores every batch with `package`, into `shadow_scores`.
    pub fn with_shadow(mut self, package: ModelPackage) -> Result<Self, Vec<OperatorError>> {
        self.shadows.push(Model::bind(package, &self.in_schema)?);
        Ok(self)
    }

    /// Lets `package` produce the score for `fraction` of the values of the
    /// string column `key` (the others go to the champion; both are scored).
    pub fn with_canary(
        mut self,
        package: ModelPackage,
        fraction: f64,
        key: &str,
    ) -> Result<Self, Vec<OperatorError>> {
        let key_idx = match self.in_schema.index_of(key) {
            Ok(i) if self.in_schema.field(i).data_type() == &DataType::Utf8 => i,
            _ => {
                return Err(vec![OperatorError::ModelInput {
                    input: "canary key".into(),
                    reason: format!("`{key}` is not a string column of the batches"),
                }]);
            }
        };
        self.canary = Some(Canary {
            model: Model::bind(package, &self.in_schema)?,
            threshold: canary_threshold(fraction),
            key_idx,
        });
        Ok(self)
    }

    /// Scores the following batches with `package` as the champion (a new
    /// version, hot-reloaded); if its inputs do not bind, the current one
    /// stays.
    pub fn swap(&mut self, package: ModelPackage) -> Result<(), Vec<OperatorError>> {
        self.replace(ModelRole::Champion, package)
    }

    /// Scores the following batches with `package` in `role`, as [`Scorer::swap`]
    /// does for the champion. The new model is bound before anything is
    /// replaced, so a version that does not fit leaves every model as it was.
    pub fn replace(
        &mut self,
        role: ModelRole,
        package: ModelPackage,
    ) -> Result<(), Vec<OperatorError>> {
        let absent = || {
            vec![OperatorError::ModelInput {
                input: role.to_string(),
                reason: "this job has no such model to replace".into(),
            }]
        };
        let model = Model::bind(package, &self.in_schema)?;
        let slot = match role {
            ModelRole::Champion => &mut self.champion,
            ModelRole::Shadow(i) => self.shadows.get_mut(i).ok_or_else(absent)?,
            ModelRole::Canary => &mut self.canary.as_mut().ok_or_else(absent)?.model,
        };
        *slot = model;
        Ok(())
    }

    pub fn input_schema(&self) -> &SchemaRef {
        &self.in_schema
    }

    pub fn output_schema(&self) -> &SchemaRef {
        &self.out_schema
    }

    pub fn model_name(&self) -> &str {
        self.champion.name()
    }

    pub fn model_version(&self) -> &str {
        self.champion.version()
    }

    /// Every model scoring now (champion first, then shadows, then the
    /// canary), for status pages.
    pub fn models(&self) -> Vec<ModelInUse> {
        let entry = |role: &'static str, m: &Model| ModelInUse {
            role,
            name: m.name().to_owned(),
            version: m.version().to_owned(),
        };
        let mut out = vec![entry(ModelRole::Champion.as_str(), &self.champion)];
        let shadow = ModelRole::Shadow(0).as_str();
        out.extend(self.shadows.iter().map(|m| entry(shadow, m)));
        let canary = ModelRole::Canary.as_str();
        out.extend(self.canary.iter().map(|c| entry(canary, &c.model)));
        out
    }

    /// The precision the champion runs in.
    pub fn precision(&self) -> super::Precision {
        self.champion.package.precision
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The champion's score of every row of `batch`, in row order.
    pub fn scores(&self, batch: &RecordBatch) -> Result<Float32Array> {
        self.champion.scores(batch, &self.device)
    }

    /// Appends `score`, `model_name`, `model_version`, `scored_at` and
    /// `shadow_scores`.
    pub fn process(&self, mut env: Envelope) -> Result<Envelope> {
        let Some(batch) = env.batch.take() else {
            return Ok(env);
        };
        let champion = self.champion.scores(&batch, &self.device)?;
        let cols = if self.shadows.is_empty() && self.canary.is_none() {
            self.champion_columns(champion, batch.num_rows())
        } else {
            self.mixed_columns(&batch, champion)?
        };
        self.finish(env, &batch, cols)
    }

    /// One model: constant name and version, every shadow list empty.
    fn champion_columns(&self, champion: Float32Array, n: usize) -> Vec<ArrayRef> {
        vec![
            Arc::new(champion) as ArrayRef,
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                self.champion.name(),
                n,
            ))),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                self.champion.version(),
                n,
            ))),
            self.scored_at(n),
            Arc::new(ListArray::new(
                Arc::new(shadow_entry_field()),
                OffsetBuffer::new_zeroed(n),
                arrow::array::new_empty_array(&DataType::Struct(shadow_score_fields())),
                None,
            )),
        ]
    }

    /// Shadows and a canary: per row, the model that answers for it and
    /// every other model's score in `shadow_scores`.
    fn mixed_columns(&self, batch: &RecordBatch, champion: Float32Array) -> Result<Vec<ArrayRef>> {
        let n = batch.num_rows();
        let shadows = self
            .shadows
            .iter()
            .map(|m| Ok((m, m.scores(batch, &self.device)?)))
            .collect::<Result<Vec<_>>>()?;
        // Which rows the canary answers for, and its scores.
        let canary = match &self.canary {
            None => None,
            Some(c) => {
                let keys = batch.column(c.key_idx).as_string::<i32>();
                let chosen: Vec<bool> = keys
                    .iter()
                    .map(|k| k.is_some_and(|k| canary_hash(k) < c.threshold))
                    .collect();
                Some((c, c.model.scores(batch, &self.device)?, chosen))
            }
        };
        let mut out = MixedColumns::new(n);
        for i in 0..n {
            match &canary {
                Some((c, cs, chosen)) if chosen[i] => {
                    out.answer(c.model.label(), cs.value(i));
                    out.also(self.champion.label(), champion.value(i));
                }
                _ => {
                    out.answer(self.champion.label(), champion.value(i));
                    if let Some((c, cs, _)) = &canary {
                        out.also(c.model.label(), cs.value(i));
                    }
                }
            }
            for (m, s) in &shadows {
                out.also(m.label(), s.value(i));
            }
            out.end_row();
        }
        Ok(out.finish(self.scored_at(n)))
    }

    fn scored_at(&self, n: usize) -> ArrayRef {
        Arc::new(
            TimestampMillisecondArray::from_iter_values(std::iter::repeat_n(crate::now_ms(), n))
                .with_timezone(scorestream_schemas::UTC),
        )
    }

    /// The batch with the score columns appended.
    fn finish(
        &self,
        mut env: Envelope,
        batch: &RecordBatch,
        added: Vec<ArrayRef>,
    ) -> Result<Envelope> {
        let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
        cols.extend(added);
        env.batch = Some(RecordBatch::try_new(self.out_schema.clone(), cols)?);
        Ok(env)
    }
}

/// The item field of `shadow_scores`.
pub(super) fn shadow_entry_field() -> Field {
    Field::new_list_field(DataType::Struct(shadow_score_fields()), false)
}
