//! The scorer alone: rows/s by batch size for a small (20-64-32-1) and a
//! large (64-256-256-1) MLP, on the device `auto` picks (CPU here; CUDA when
//! built with `--features cuda` on a machine with a GPU; same code path).
//! With `--features onnx`, also the ONNX fixture against the same-shaped MLP.
//! Run with `cargo bench --features onnx --bench scorer`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use candle_core::{DType, Device, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scorestream_operators::scorer::{
    Activation, Architecture, DeviceChoice, InputSpec, ModelManifest, ModelPackage, Scorer,
    Transform,
};

/// A package with random weights: `width` standardised inputs, `hidden` layers.
fn package(dir: &std::path::Path, width: usize, hidden: &[usize], device: &Device) -> ModelPackage {
    let inputs = (0..width)
        .map(|i| InputSpec {
            name: format!("x{i}"),
            column: format!("x{i}"),
            dtype: None,
            transform: Transform::Standard {
                mean: 0.0,
                std: 1.0,
            },
        })
        .collect();
    let manifest = ModelManifest {
        name: "bench".into(),
        output: Default::default(),
        precisions: Vec::new(),
        version: "1".into(),
        architecture: Architecture::Mlp {
            hidden: hidden.to_vec(),
            activation: Activation::Relu,
        },
        inputs,
        training: Default::default(),
    };
    let mut tensors = HashMap::new();
    let mut fan_in = width;
    for (i, out) in hidden.iter().copied().chain([1]).enumerate() {
        let w = Tensor::randn(0f32, 0.1, (out, fan_in), &Device::Cpu).expect("w");
        let b = Tensor::zeros(out, DType::F32, &Device::Cpu).expect("b");
        tensors.insert(format!("layers.{i}.weight"), w);
        tensors.insert(format!("layers.{i}.bias"), b);
        fan_in = out;
    }
    ModelPackage::save(dir, &manifest, &tensors).expect("save");
    ModelPackage::load(dir, device).expect("load")
}

fn batch(width: usize, rows: usize) -> RecordBatch {
    let fields: Vec<Field> = (0..width)
        .map(|i| Field::new(format!("x{i}"), DataType::Float64, true))
        .collect();
    let cols: Vec<ArrayRef> = (0..width)
        .map(|i| {
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|r| ((r * 31 + i * 7) % 101) as f64 / 10.0),
            )) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("batch")
}

fn scorer(c: &mut Criterion) {
    let device = DeviceChoice::Auto.open().expect("device");
    let label = if device.is_cuda() { "cuda" } else { "cpu" };
    let dir = tempfile::tempdir().expect("tmp");
    for (name, width, hidden) in [
        ("mlp_20_64_32_1", 20, vec![64, 32]),
        ("mlp_64_256_256_1", 64, vec![256, 256]),
    ] {
        let mut g = c.benchmark_group(format!("scorer/{label}/{name}"));
        g.measurement_time(Duration::from_secs(3));
        g.sample_size(20);
        for rows in [1_024, 8_192, 65_536] {
            let b = batch(width, rows);
            let pkg = package(&dir.path().join(name), width, &hidden, &device);
            let s = Scorer::new(pkg, device.clone(), &b.schema()).expect("scorer");
            g.throughput(Throughput::Elements(rows as u64));
            g.bench_with_input(BenchmarkId::from_parameter(rows), &b, |bench, b| {
                bench.iter(|| s.scores(b).expect("scores"))
            });
        }
        g.finish();
    }
    #[cfg(feature = "onnx")]
    onnx(c, &device, label);
}

/// The ONNX fixture (8-32-16-1: Gemm, Relu, Gelu, Sigmoid, exported by
/// torch) through candle-onnx, next to the native MLP of the same shape.
#[cfg(feature = "onnx")]
fn onnx(c: &mut Criterion, device: &Device, label: &str) {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/onnx_mlp");
    let dir = tempfile::tempdir().expect("tmp");
    let mut g = c.benchmark_group(format!("scorer/{label}/8_32_16_1"));
    g.measurement_time(Duration::from_secs(3));
    g.sample_size(20);
    for rows in [8_192, 65_536] {
        let b = batch(8, rows);
        g.throughput(Throughput::Elements(rows as u64));
        for (name, pkg) in [
            ("onnx", ModelPackage::load(&fixture, device).expect("onnx")),
            (
                "mlp",
                package(&dir.path().join("mlp"), 8, &[32, 16], device),
            ),
        ] {
            let s = Scorer::new(pkg, device.clone(), &b.schema()).expect("scorer");
            g.bench_with_input(BenchmarkId::new(name, rows), &b, |bench, b| {
                bench.iter(|| s.scores(b).expect("scores"))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, scorer);
criterion_main!(benches);
