use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder, RecordBatch, StringArray,
    new_null_array,
};
use arrow::buffer::BooleanBuffer;
use arrow::compute::kernels::zip::zip;
use arrow::compute::{filter_record_batch, nullif};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use metrics::counter;
use scorestream_schemas::{ReasonCode, columns};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::config::{OnMissing, OnUnavailable};
use super::join_rows::{Feature, Problems, dead_letters, names, reason};
use super::policy::JoinPolicy;
use super::values::default_column;
use super::watch::{MissingWatch, Watched};

use super::{FeatureRows, FeatureStore};
use crate::{Envelope, OperatorError, Result};

/// Appends a batch's features to its rows, with what analysts filter on:
/// `features_missing` (the store has no entry for the key),
/// `missing_features` / `stale_features` (names), and
/// `features_unavailable` (scored while the store was unreachable).
pub struct FeatureJoin {
    store: Arc<dyn FeatureStore>,
    key_idx: usize,
    policy: JoinPolicy,
    features: Vec<Feature>,
    out_schema: SchemaRef,
    cancel: CancellationToken,
    /// While the store is down under `on_unavailable = "defaults"`, batches
    /// do not wait for a timeout each; the store is tried again after this.
    retry_at: std::sync::Mutex<Option<Instant>>,
    watch: MissingWatch,
}

const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

fn names_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
        false,
    )
}

impl FeatureJoin {
    /// Checks, once, that the key is a string column of the input, that no
    /// feature name collides with an input column, and that defaults fit.
    pub fn try_new(
        store: Arc<dyn FeatureStore>,
        input: &SchemaRef,
        key: &str,
        policy: JoinPolicy,
    ) -> Result<Self, String> {
        let key_idx = input
            .index_of(key)
            .map_err(|_| format!("key `{key}` is not a field of the event schema"))?;
        if input.field(key_idx).data_type() != &DataType::Utf8 {
            return Err(format!("key `{key}` must be a string field"));
        }
        let mut fields: Vec<_> = input.fields().iter().cloned().collect();
        let mut features = Vec::new();
        let mut watched = Vec::new();
        for f in store.schema().fields() {
            if input.field_with_name(f.name()).is_ok() {
                return Err(format!(
                    "feature `{}` has the same name as an event field",
                    f.name()
                ));
            }
            let p = policy.features.get(f.name()).cloned().unwrap_or_default();
            let default = default_column(f, p.default.as_ref())?;
            watched.push(Watched {
                feature: f.name().clone(),
                view: p.view.clone().unwrap_or_default(),
            });
            features.push(Feature {
                name: f.name().clone(),
                max_age_ms: p.max_age.map(|d| d.as_millis() as i64),
                default,
            });
            fields.push(f.clone());
        }
        fields.push(Arc::new(Field::new(
            columns::FEATURES_MISSING,
            DataType::Boolean,
            false,
        )));
        fields.push(Arc::new(names_field(columns::MISSING_FEATURES)));
        fields.push(Arc::new(names_field(columns::STALE_FEATURES)));
        fields.push(Arc::new(Field::new(
            columns::FEATURES_UNAVAILABLE,
            DataType::Boolean,
            false,
        )));
        Ok(Self {
            store,
            key_idx,
            watch: MissingWatch::new(policy.missing_check.clone(), watched),
            policy,
            features,
            out_schema: Arc::new(Schema::new(fields)),
            cancel: CancellationToken::new(),
            retry_at: std::sync::Mutex::new(None),
        })
    }

    /// Stops waiting for an unreachable store when `cancel` fires (the job
    /// is stopping); the batch is then not committed and is read again on
    /// restart.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    pub fn output_schema(&self) -> &SchemaRef {
        &self.out_schema
    }

    pub async fn process(&self, mut env: Envelope) -> Result<Envelope> {
        // Past this stage nothing needs the original messages.
        let origin = env.origin.take();
        let Some(batch) = env.batch.take() else {
            return Ok(env);
        };
        let keys = batch.column(self.key_idx).as_string::<i32>();
        let (rows, unavailable) = self.lookup(keys).await?;
        let n = batch.num_rows();
        let (missing, stale) = self.flags(&rows, unavailable, n);
        if !unavailable {
            self.watch.record(&missing, n)?;
        }
        let reject = self.rejections(keys, &rows, unavailable, [&missing, &stale])?;
        let joined = self.joined(&batch, &rows, unavailable, [&missing, &stale])?;
        if reject.iter().all(Option::is_none) {
            env.batch = Some(joined);
            return Ok(env);
        }
        let rejected: BooleanArray = reject.iter().map(|r| Some(r.is_some())).collect();
        let kept: BooleanArray = reject.iter().map(|r| Some(r.is_none())).collect();
        let reasons = reject.into_iter().flatten().map(reason).collect();
        env.dead_letters
            .extend(dead_letters(&batch, &rejected, origin.as_deref(), reasons)?);
        let kept = filter_record_batch(&joined, &kept)?;
        env.batch = (kept.num_rows() > 0).then_some(kept);
        Ok(env)
    }

    /// Per feature, which rows lack a value and which have one too old.
    fn flags(
        &self,
        rows: &FeatureRows,
        unavailable: bool,
        n: usize,
    ) -> (Vec<BooleanArray>, Vec<BooleanArray>) {
        let now = crate::now_ms();
        let nf = self.features.len();
        let mut missing: Vec<BooleanArray> = Vec::with_capacity(nf);
        let mut stale: Vec<BooleanArray> = Vec::with_capacity(nf);
        let none = BooleanArray::new(BooleanBuffer::new_unset(n), None);
        for (j, f) in self.features.iter().enumerate() {
            let col = &rows.columns[j];
            // A value is present where the column is valid (not-found rows
            // are null in every column): one bitmap operation, no row loop.
            let absent = match (unavailable, col.logical_nulls()) {
                (true, _) => BooleanArray::new(BooleanBuffer::new_set(n), None),
                (false, Some(nulls)) => BooleanArray::new(!nulls.inner(), None),
                (false, None) => none.clone(),
            };
            let old = match f.max_age_ms {
                None => none.clone(),
                Some(max) => {
                    let written = rows.written_at_ms.get(j).and_then(Option::as_ref);
                    let mut s = BooleanBufferBuilder::new(n);
                    for i in 0..n {
                        s.append(
                            !absent.value(i)
                                && match written {
                                    // No write time recorded: its age is
                                    // unknown, which a max_age cannot accept.
                                    Some(w) if w.is_valid(i) => now - w.value(i) > max,
                                    _ => true,
                                },
                        );
                    }
                    BooleanArray::new(s.finish(), None)
                }
            };
            missing.push(absent);
            stale.push(old);
        }
        (missing, stale)
    }

    /// Per row, the reasons a `dead_letter` policy sends it away (`None`
    /// for rows kept); a `fail` policy stops the job at the first such row.
    fn rejections(
        &self,
        keys: &StringArray,
        rows: &FeatureRows,
        unavailable: bool,
        [missing, stale]: [&[BooleanArray]; 2],
    ) -> Result<Vec<Option<Problems>>> {
        let mut reject = vec![None::<Problems>; keys.len()];
        for (kind, flags, policy) in [
            ("missing", missing, self.policy.on_missing),
            ("stale", stale, self.policy.on_stale),
        ] {
            if unavailable || !matches!(policy, OnMissing::DeadLetter | OnMissing::Fail) {
                continue;
            }
            for (j, f) in self.features.iter().enumerate() {
                if flags[j].true_count() == 0 {
                    continue;
                }
                for (i, reason) in reject.iter_mut().enumerate() {
                    if !flags[j].value(i) {
                        continue;
                    }
                    if policy == OnMissing::Fail {
                        return Err(self.fail(keys, i, &f.name, kind, rows.found.value(i)));
                    }
                    let problems = reason.get_or_insert_with(Vec::new);
                    if rows.found.value(i) {
                        problems.push(match kind {
                            "missing" => (
                                ReasonCode::FeatureMissing,
                                format!("no value for feature `{}`", f.name),
                            ),
                            _ => (
                                ReasonCode::FeatureStale,
                                format!("a value for feature `{}` older than its max_age", f.name),
                            ),
                        });
                    }
                }
            }
        }
        Ok(reject)
    }

    /// The batch with its features appended: stale values dropped, then the
    /// default policy filling, then the flag and name columns.
    fn joined(
        &self,
        batch: &RecordBatch,
        rows: &FeatureRows,
        unavailable: bool,
        [missing, stale]: [&[BooleanArray]; 2],
    ) -> Result<RecordBatch> {
        let n = batch.num_rows();
        let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
        for (j, f) in self.features.iter().enumerate() {
            let mut col = rows.columns[j].clone();
            if stale[j].true_count() > 0 {
                col = nullif(&col, &stale[j])?;
            }
            let fill = |flags: &BooleanArray, policy: OnMissing| {
                unavailable || (policy == OnMissing::Default && flags.true_count() > 0)
            };
            if let Some(d) = &f.default {
                for (flags, policy) in [
                    (&missing[j], self.policy.on_missing),
                    (&stale[j], self.policy.on_stale),
                ] {
                    if fill(flags, policy) {
                        col = zip(flags, &arrow::array::Scalar::new(d.clone()), &col)?;
                    }
                }
            }
            cols.push(col);
        }
        cols.push(Arc::new(arrow::compute::not(&rows.found)?));
        cols.push(names(&self.features, missing, n)?);
        cols.push(names(&self.features, stale, n)?);
        cols.push(Arc::new(BooleanArray::new(
            if unavailable {
                BooleanBuffer::new_set(n)
            } else {
                BooleanBuffer::new_unset(n)
            },
            None,
        )));
        Ok(RecordBatch::try_new(self.out_schema.clone(), cols)?)
    }

    fn fail(
        &self,
        keys: &StringArray,
        row: usize,
        feature: &str,
        kind: &str,
        found: bool,
    ) -> OperatorError {
        let key = if keys.is_null(row) {
            "<null>".to_owned()
        } else {
            keys.value(row).to_owned()
        };
        if !found {
            return OperatorError::MissingFeatures { key };
        }
        OperatorError::UnusableFeature {
            key,
            feature: feature.to_owned(),
            problem: kind.to_owned(),
        }
    }

    /// Asks the store; while it is unreachable, waits with backoff (the
    /// default) or answers with nothing and `unavailable = true`.
    async fn lookup(&self, keys: &StringArray) -> Result<(FeatureRows, bool)> {
        let mut delay = RETRY_FIRST;
        let mut failures = 0u64;
        loop {
            let skip = self.policy.on_unavailable == OnUnavailable::Defaults
                && self
                    .retry_at
                    .lock()
                    .ok()
                    .and_then(|t| *t)
                    .is_some_and(|t| Instant::now() < t);
            let err = if skip {
                None
            } else {
                match self.store.lookup(keys).await {
                    Ok(rows) => {
                        if failures > 0 || self.retry_at.lock().is_ok_and(|t| t.is_some()) {
                            warn!("feature store reachable again");
                            if let Ok(mut t) = self.retry_at.lock() {
                                *t = None;
                            }
                        }
                        metrics::gauge!("scorestream_feature_store_available").set(1.0);
                        return Ok((rows, false));
                    }
                    Err(e @ OperatorError::FeatureStoreUnavailable { .. }) => Some(e),
                    Err(e) => return Err(e),
                }
            };
            if let Some(e) = &err {
                metrics::gauge!("scorestream_feature_store_available").set(0.0);
                counter!("scorestream_feature_store_errors_total").increment(1);
                if failures == 0 || failures.is_power_of_two() {
                    warn!(error = %e, policy = ?self.policy.on_unavailable, "feature store unavailable");
                }
                failures += 1;
            }
            match self.policy.on_unavailable {
                OnUnavailable::Defaults => {
                    if err.is_some()
                        && let Ok(mut t) = self.retry_at.lock()
                    {
                        *t = Some(Instant::now() + RETRY_FIRST * 10);
                    }
                    counter!("scorestream_feature_rows_unavailable_total")
                        .increment(keys.len() as u64);
                    return Ok((self.nothing(keys.len()), true));
                }
                OnUnavailable::Wait => {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.cancel.cancelled() => {
                            return Err(err.unwrap_or(OperatorError::FeatureStoreUnavailable {
                                store: "feature store".into(),
                                reason: "the job stopped while waiting for it".into(),
                            }));
                        }
                    }
                    delay = (delay * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// An answer with no features for any key.
    fn nothing(&self, n: usize) -> FeatureRows {
        let schema = self.store.schema();
        FeatureRows {
            columns: schema
                .fields()
                .iter()
                .map(|f| new_null_array(f.data_type(), n))
                .collect(),
            found: BooleanArray::from(vec![false; n]),
            written_at_ms: Vec::new(),
        }
    }
}
