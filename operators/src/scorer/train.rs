//! Training an MLP with candle, so the project can build the demo's model
//! itself from generated data (`scorestream train`) and the weights it ships
//! are reproducible.

use std::collections::HashMap;

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Activation, InputSpec, Mlp, Transform};
use crate::Result;

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
}

/// Sets each numeric input's mean and std from the raw (untransformed by
/// standardisation) training matrix.
pub fn fit_standardisation(specs: &mut [InputSpec], raw: &[f32], width: usize) {
    let rows = raw.len() / width.max(1);
    for (j, spec) in specs.iter_mut().enumerate() {
        if !spec.transform.is_numeric() || rows == 0 {
            continue;
        }
        let col = (0..rows).map(|i| f64::from(raw[i * width + j]));
        let mean = col.clone().sum::<f64>() / rows as f64;
        let var = col.map(|v| (v - mean).powi(2)).sum::<f64>() / rows as f64;
        let std = if var.sqrt() > 1e-9 { var.sqrt() } else { 1.0 };
        spec.transform = match spec.transform {
            Transform::LogStandard { .. } => Transform::LogStandard { mean, std },
            _ => Transform::Standard { mean, std },
        };
    }
}

/// Trains on the row-major matrix `x` (`[rows, width]`) against 0/1 labels.
/// Returns the weights under the package's tensor names and the model.
pub fn train(
    x: &[f32],
    y: &[f32],
    width: usize,
    opts: &TrainOptions,
) -> Result<(HashMap<String, Tensor>, Mlp)> {
    let device = Device::Cpu;
    let rows = y.len();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut widths = vec![width];
    widths.extend(&opts.hidden);
    widths.push(1);
    let mut vars = Vec::new();
    for pair in widths.windows(2) {
        let (fan_in, fan_out) = (pair[0], pair[1]);
        let bound = 1.0 / (fan_in as f32).sqrt();
        let w: Vec<f32> = (0..fan_in * fan_out)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let b: Vec<f32> = (0..fan_out)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        vars.push((
            Var::from_tensor(&Tensor::from_vec(w, (fan_out, fan_in), &device)?)?,
            Var::from_tensor(&Tensor::from_vec(b, fan_out, &device)?)?,
        ));
    }
    let mlp = Mlp::new(
        vars.iter()
            .map(|(w, b)| (w.as_tensor().clone(), b.as_tensor().clone()))
            .collect(),
        opts.activation,
    );
    let params = ParamsAdamW {
        lr: opts.learning_rate,
        weight_decay: 1e-4,
        ..Default::default()
    };
    let mut opt = AdamW::new(
        vars.iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect(),
        params,
    )?;

    let mut order: Vec<usize> = (0..rows).collect();
    let mut xb = Vec::with_capacity(opts.batch_size * width);
    let mut yb = Vec::with_capacity(opts.batch_size);
    for _ in 0..opts.epochs {
        order.shuffle(&mut rng);
        for idx in order.chunks(opts.batch_size.max(1)) {
            xb.clear();
            yb.clear();
            for &i in idx {
                xb.extend_from_slice(&x[i * width..(i + 1) * width]);
                yb.push(y[i]);
            }
            let xt = Tensor::from_slice(&xb, (idx.len(), width), &device)?;
            let yt = Tensor::from_slice(&yb, idx.len(), &device)?;
            let loss = bce_with_logits(&mlp.logits(&xt)?, &yt)?;
            opt.backward_step(&loss)?;
        }
    }
    let mut tensors = HashMap::new();
    for (i, (w, b)) in vars.iter().enumerate() {
        tensors.insert(format!("layers.{i}.weight"), w.as_tensor().detach());
        tensors.insert(format!("layers.{i}.bias"), b.as_tensor().detach());
    }
    Ok((tensors, mlp))
}

/// Binary cross-entropy on logits, in the stable form
/// `max(z, 0) - z*y + ln(1 + e^-|z|)` (candle's version takes `ln(sigmoid)`,
/// which overflows for confident logits).
pub(crate) fn bce_with_logits(z: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    let pos = z.relu()?;
    let soft = (z.abs()?.neg()?.exp()? + 1.0)?.log()?;
    ((pos - (z * y)?)? + soft)?.mean_all()
}

/// Area under the ROC curve: the chance a random positive outscores a random negative.
pub fn auc(scores: &[f32], labels: &[f32]) -> f64 {
    let mut pairs: Vec<(f32, bool)> = scores
        .iter()
        .zip(labels)
        .map(|(s, l)| (*s, *l > 0.5))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut pos, mut i) = (0.0f64, 0usize, 0usize);
    while i < pairs.len() {
        // average rank over ties
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let avg_rank = (i + j + 1) as f64 / 2.0;
        for p in &pairs[i..j] {
            if p.1 {
                rank_sum += avg_rank;
                pos += 1;
            }
        }
        i = j;
    }
    let neg = pairs.len() - pos;
    if pos == 0 || neg == 0 {
        return 0.5;
    }
    (rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos as f64 * neg as f64)
}
