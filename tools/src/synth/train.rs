use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use candle_core::{Device, Tensor};
use scorestream_operators::decode::{Decoder, JsonDecoder};
use scorestream_operators::features::{
    FeatureJoin, FeatureStore, FileFeatureStore, JoinPolicy, OnMissing,
};
use scorestream_operators::scorer::train::{TrainOptions, auc, fit_standardisation, train};
use scorestream_operators::scorer::{
    Activation, Architecture, InputMatrix, InputSpec, ModelManifest, ModelPackage, Transform,
};
use scorestream_operators::source::kafka::RawChunk;
use scorestream_operators::{Envelope, OperatorError};
use scorestream_schemas::EventSchema;
use serde_json::json;

use super::{EventGen, EventKind, GenOptions, World};
use crate::ToolError;
use scorestream_pipeline::config::JobConfig;

#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub rows: usize,
    pub fraud_rate: f64,
    pub holdout_auc: f64,
}

/// The demo model's 20 inputs (the small 20-64-32-1 shape).
fn demo_inputs() -> Vec<InputSpec> {
    let num = |name: &str, log: bool| InputSpec {
        name: name.into(),
        column: name.into(),
        dtype: None,
        transform: if log {
            Transform::LogStandard {
                mean: 0.0,
                std: 1.0,
            }
        } else {
            Transform::Standard {
                mean: 0.0,
                std: 1.0,
            }
        },
    };
    let eq = |column: &str, value: &str| InputSpec {
        name: format!("{column}={value}"),
        column: column.into(),
        dtype: None,
        transform: Transform::Equals {
            value: value.into(),
        },
    };
    let mut v = vec![
        num("amount", true),
        num("avg_amount_30d", true),
        num("account_age_days", true),
        num("chargeback_rate_90d", false),
        num("failed_logins_7d", false),
        num("is_verified", false),
        num("distinct_countries_30d", false),
        num("txn_count_7d", true),
        num("utilization", false),
        InputSpec {
            name: "at_home".into(),
            column: "country".into(),
            dtype: None,
            transform: Transform::SameAs {
                other: "home_country".into(),
            },
        },
    ];
    v.extend(["pos", "web", "mobile"].map(|c| eq("channel", c)));
    v.extend(
        [
            "grocery",
            "restaurants",
            "travel",
            "electronics",
            "entertainment",
            "gift_cards",
            "crypto",
        ]
        .map(|m| eq("merchant_category", m)),
    );
    v
}

/// Builds the demo's feature file and trains its model from generated data,
/// through the same decode, join and input code the pipeline scores with.
/// Writes `features.csv` and `model/` under `out`.
pub async fn train_demo_model(
    job: &JobConfig,
    out: &Path,
    accounts: usize,
    events: usize,
    seed: u64,
) -> Result<TrainSummary, ToolError> {
    std::fs::create_dir_all(out)
        .map_err(|e| ToolError::io(format!("creating {}", out.display()), e))?;
    let world = World::new(accounts, seed);
    let features = out.join("features.csv");
    world.write_features_csv(&features)?;
    let store = Arc::new(FileFeatureStore::load(&features, "account_id")?);

    let (chunk, labels) = training_events(&world, events, seed);
    let batch = decode_and_join(job, store, &chunk).await?;
    let (specs, x) = standardised_inputs(&batch)?;
    let fitted = fit(&x, &labels, specs.len(), seed)?;

    let manifest = ModelManifest {
        name: "fraud-mlp".into(),
        output: Default::default(),
        precisions: Vec::new(),
        version: "1".into(),
        architecture: Architecture::Mlp {
            hidden: fitted.options.hidden.clone(),
            activation: fitted.options.activation,
        },
        inputs: specs,
        training: fitted.record(accounts, events, seed),
    };
    ModelPackage::save(&out.join("model"), &manifest, &fitted.tensors)?;
    Ok(TrainSummary {
        rows: fitted.rows,
        fraud_rate: fitted.fraud_rate,
        holdout_auc: fitted.holdout_auc,
    })
}

/// Well-formed events from known accounts only, with their fraud labels:
/// the model should learn fraud, not the generator's deliberate noise.
fn training_events(world: &World, events: usize, seed: u64) -> (RawChunk, Vec<f32>) {
    let opts = GenOptions {
        seed: seed + 1,
        malformed_rate: 0.0,
        unknown_account_rate: 0.0,
        ..Default::default()
    };
    let mut generator = EventGen::new(world, opts);
    let mut chunk = RawChunk::with_capacity(events);
    let (mut buf, mut key) = (String::new(), String::new());
    let mut labels = Vec::with_capacity(events);
    for i in 0..events {
        if let EventKind::Good { fraud } = generator.next_into(&mut buf, &mut key) {
            chunk.push(
                "train",
                0,
                i as i64,
                0,
                Some(key.as_bytes()),
                buf.as_bytes(),
            );
            labels.push(f32::from(fraud));
        }
    }
    (chunk, labels)
}

/// The events as the scorer would see them, via the pipeline's own decoder
/// and join; any row lost here would misalign the labels, so none may be.
async fn decode_and_join(
    job: &JobConfig,
    store: Arc<FileFeatureStore>,
    chunk: &RawChunk,
) -> Result<RecordBatch, ToolError> {
    let schema = EventSchema::try_new(job.schema.fields.clone()).map_err(OperatorError::from)?;
    let decoder = JsonDecoder::new(schema, usize::MAX);
    let decoded = decoder.decode(chunk)?;
    if !decoded.dead_letters.is_empty() {
        return Err(ToolError::Incomplete(format!(
            "{} generated training events did not decode: {}",
            decoded.dead_letters.len(),
            decoded.dead_letters[0].reason
        )));
    }
    let join = FeatureJoin::try_new(
        store as Arc<dyn FeatureStore>,
        decoder.output_schema(),
        "account_id",
        JoinPolicy::on_missing(OnMissing::Fail),
    )
    .map_err(ToolError::Incomplete)?;
    let joined = join.process(decoded).await?;
    let Envelope {
        batch: Some(batch), ..
    } = joined
    else {
        return Err(ToolError::Incomplete("no training rows".into()));
    };
    Ok(batch)
}

/// The demo inputs with their standardisation fitted to this data, and the
/// input matrix built with it (two passes: raw values give the fit).
fn standardised_inputs(batch: &RecordBatch) -> Result<(Vec<InputSpec>, Vec<f32>), ToolError> {
    let bind = |specs: &[InputSpec]| {
        InputMatrix::bind(specs, &batch.schema())
            .map_err(|e| ToolError::Incomplete(format!("{e:?}")))
    };
    let mut specs = demo_inputs();
    let width = specs.len();
    let raw = bind(&specs)?.build(batch)?;
    fit_standardisation(&mut specs, &raw, width);
    let x = bind(&specs)?.build(batch)?;
    Ok((specs, x))
}

/// A trained model and how well it did on the rows held out from training.
struct Fitted {
    tensors: HashMap<String, Tensor>,
    options: TrainOptions,
    rows: usize,
    split: usize,
    holdout_auc: f64,
    fraud_rate: f64,
}

/// Trains on the first four fifths of the rows and scores the rest.
fn fit(x: &[f32], labels: &[f32], width: usize, seed: u64) -> Result<Fitted, ToolError> {
    let rows = labels.len();
    let split = rows * 4 / 5;
    let options = TrainOptions {
        hidden: vec![64, 32],
        activation: Activation::Relu,
        epochs: 10,
        batch_size: 512,
        learning_rate: 2e-3,
        seed,
    };
    let (tensors, mlp) = train(&x[..split * width], &labels[..split], width, &options)?;
    let holdout = Tensor::from_slice(&x[split * width..], (rows - split, width), &Device::Cpu)
        .map_err(OperatorError::from)?;
    let p = mlp
        .predict(&holdout)
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(OperatorError::from)?;
    let holdout_auc = auc(&p, &labels[split..]);
    let fraud_rate = labels.iter().sum::<f32>() as f64 / rows as f64;
    Ok(Fitted {
        tensors,
        options,
        rows,
        split,
        holdout_auc,
        fraud_rate,
    })
}

impl Fitted {
    /// The manifest's `training` section: the command that rebuilds the
    /// model, and the world it came from, which `demo` regenerates events
    /// from so they match the feature file.
    fn record(
        &self,
        accounts: usize,
        events: usize,
        seed: u64,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut training = serde_json::Map::new();
        training.insert(
            "command".into(),
            json!(format!(
                "scorestream train --accounts {accounts} --events {events} --seed {seed}"
            )),
        );
        training.insert("world_seed".into(), json!(seed));
        training.insert("accounts".into(), json!(accounts));
        training.insert("rows".into(), json!(self.split));
        training.insert("holdout_rows".into(), json!(self.rows - self.split));
        training.insert(
            "holdout_auc".into(),
            json!((self.holdout_auc * 10_000.0).round() / 10_000.0),
        );
        training.insert(
            "fraud_rate".into(),
            json!((self.fraud_rate * 10_000.0).round() / 10_000.0),
        );
        training
    }
}
