//! Packages produced by real exporters (PyTorch's `state_dict` as
//! safetensors, `torch.onnx.export`), scored here and compared with the
//! outputs PyTorch or onnxruntime computed for the same raw rows
//! (`tests/fixtures/models/`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use candle_core::Device;

use super::{ModelPackage, Precision, PrecisionChoice, Scorer};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/models")
        .join(name)
}

fn read_json(dir: &Path, file: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(file)).expect(file)).expect("json")
}

/// The fixture's `cases.json` as a batch of nullable Float64 columns `x0..`.
fn cases(dir: &Path, width: usize) -> RecordBatch {
    let cases = read_json(dir, "cases.json");
    let rows = cases.as_array().expect("rows");
    let fields: Vec<Field> = (0..width)
        .map(|i| Field::new(format!("x{i}"), DataType::Float64, true))
        .collect();
    let cols: Vec<ArrayRef> = (0..width)
        .map(|i| {
            Arc::new(Float64Array::from(
                rows.iter()
                    .map(|r| r[format!("x{i}")].as_f64())
                    .collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("batch")
}

/// scorestream's scores of the fixture's cases next to the expected ones.
fn scored(name: &str, precision: PrecisionChoice) -> Vec<(f32, f32)> {
    let dir = fixture(name);
    let package = ModelPackage::load_as(&dir, &Device::Cpu, precision).expect("package");
    let batch = cases(&dir, package.manifest.inputs.len());
    let scorer = Scorer::new(package, Device::Cpu, &batch.schema()).expect("scorer");
    let scores = scorer.scores(&batch).expect("scores");
    let want = read_json(&dir, "expected.json")["scores"]
        .as_array()
        .expect("scores")
        .iter()
        .map(|v| v.as_f64().expect("f64") as f32)
        .collect::<Vec<_>>();
    assert_eq!(scores.len(), want.len(), "{name}");
    scores.values().iter().copied().zip(want).collect()
}

const PYTORCH_FIXTURES: [&str; 5] = ["logreg", "mlp_relu", "mlp_tanh", "mlp_gelu", "mlp_sigmoid"];

#[test]
fn pytorch_exported_packages_score_as_pytorch_does() {
    let mut checked = 0;
    for name in PYTORCH_FIXTURES {
        for (i, (got, want)) in scored(name, PrecisionChoice::Auto).into_iter().enumerate() {
            assert!(
                (got - want).abs() < 1e-5,
                "{name} row {i}: scorestream {got}, PyTorch {want}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 5 * 64);
}

/// The reduced-precision path a GPU takes (weights and activations in
/// f16/bf16, sigmoid in f32), run here on the CPU: same code, and the
/// scores stay within what those formats can hold.
#[test]
fn half_precision_scores_stay_close_to_pytorch_f32() {
    let dir = tempfile::tempdir().expect("tmp");
    for (precision, tolerance) in [(Precision::F16, 5e-3), (Precision::Bf16, 3e-2)] {
        let mut worst = 0f32;
        for name in PYTORCH_FIXTURES {
            // A copy of the package whose manifest allows the precision.
            let pkg = dir.path().join(format!("{name}-{precision}"));
            std::fs::create_dir_all(&pkg).expect("dir");
            for f in ["model.safetensors", "cases.json", "expected.json"] {
                std::fs::copy(fixture(name).join(f), pkg.join(f)).expect("copy");
            }
            let mut manifest = read_json(&fixture(name), "manifest.json");
            manifest["precisions"] = serde_json::json!([precision.to_string()]);
            std::fs::write(pkg.join("manifest.json"), manifest.to_string()).expect("write");

            let package =
                ModelPackage::load_as(&pkg, &Device::Cpu, PrecisionChoice::Exact(precision))
                    .expect("package");
            assert_eq!(package.precision, precision);
            let batch = cases(&pkg, package.manifest.inputs.len());
            let scores = Scorer::new(package, Device::Cpu, &batch.schema())
                .expect("scorer")
                .scores(&batch)
                .expect("scores");
            let want = read_json(&pkg, "expected.json")["scores"].clone();
            for (i, got) in scores.values().iter().enumerate() {
                let want = want[i].as_f64().expect("f64") as f32;
                assert!(got.is_finite(), "{name} {precision} row {i}: {got}");
                worst = worst.max((got - want).abs());
            }
        }
        eprintln!("{precision}: worst |score - PyTorch f32| = {worst:.2e}");
        assert!(worst < tolerance, "{precision}: worst |error| {worst}");
        assert!(
            worst > 0.0,
            "{precision}: identical to f32, so it did not run in {precision}"
        );
    }
}

#[test]
fn a_precision_the_manifest_does_not_allow_is_refused_naming_both() {
    let err = ModelPackage::load_as(
        &fixture("mlp_relu"),
        &Device::Cpu,
        PrecisionChoice::Exact(Precision::F16),
    )
    .expect_err("the fixture allows f32 only");
    let msg = err.to_string();
    assert!(
        msg.contains("\"f16\"") && msg.contains("fixture-mlp-relu"),
        "{msg}"
    );
    // Auto on the CPU is f32 whatever the manifest prefers.
    let p = ModelPackage::load(&fixture("mlp_relu"), &Device::Cpu).expect("package");
    assert_eq!(p.precision, Precision::F32);
}

/// A declared input dtype that the job's column does not have is refused
/// when the scorer binds, naming the input, both types and the column.
#[test]
fn declared_input_dtypes_are_checked_against_the_columns() {
    let package = ModelPackage::load(&fixture("mlp_relu"), &Device::Cpu).expect("package");
    let width = package.manifest.inputs.len();
    let mut fields: Vec<Field> = (0..width)
        .map(|i| Field::new(format!("x{i}"), DataType::Float64, true))
        .collect();
    fields[2] = Field::new("x2", DataType::Int64, true);
    let errs = match Scorer::new(package, Device::Cpu, &Arc::new(Schema::new(fields))) {
        Ok(_) => panic!("x2 is Int64 but the model declares float64"),
        Err(e) => e,
    };
    assert_eq!(errs.len(), 1, "{errs:?}");
    let msg = errs[0].to_string();
    assert!(
        msg.contains("x2") && msg.contains("Float64") && msg.contains("Int64"),
        "{msg}"
    );
}

#[cfg(feature = "onnx")]
mod onnx {
    use super::*;

    /// `torch.onnx.export` of a trained MLP (Gemm, Relu, Gelu, Sigmoid),
    /// scored within 1e-5 of onnxruntime on the same rows.
    #[test]
    fn an_exported_onnx_model_scores_as_onnxruntime_does() {
        let pairs = scored("onnx_mlp", PrecisionChoice::Auto);
        assert_eq!(pairs.len(), 64);
        for (i, (got, want)) in pairs.into_iter().enumerate() {
            assert!(
                (got - want).abs() < 1e-5,
                "row {i}: scorestream {got}, onnxruntime {want}"
            );
        }
    }

    #[test]
    fn an_unsupported_operator_is_named_when_the_model_loads() {
        let err = ModelPackage::load(&fixture("onnx_layernorm"), &Device::Cpu)
            .expect_err("LayerNormalization is not in candle-onnx");
        let msg = err.to_string();
        assert!(
            msg.contains("`LayerNormalization`") && msg.contains("onnx_layernorm"),
            "{msg}"
        );
        assert!(
            !msg.contains("`Gemm`"),
            "supported ops are not listed: {msg}"
        );
    }

    /// A manifest that disagrees with the graph: each mismatch is named.
    #[test]
    fn manifest_and_graph_mismatches_are_named() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::copy(
            fixture("onnx_mlp").join("model.onnx"),
            dir.path().join("model.onnx"),
        )
        .expect("copy");
        let base = read_json(&fixture("onnx_mlp"), "manifest.json");
        let load = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut m = base.clone();
            edit(&mut m);
            std::fs::write(dir.path().join("manifest.json"), m.to_string()).expect("write");
            ModelPackage::load(dir.path(), &Device::Cpu)
                .expect_err("mismatch")
                .to_string()
        };
        let msg = load(&|m| m["output"]["name"] = "score".into());
        assert!(
            msg.contains("`score`") && msg.contains("`probability`"),
            "{msg}"
        );
        let msg = load(&|m| {
            m["inputs"].as_array_mut().expect("inputs").pop();
        });
        assert!(
            msg.contains("`features`") && msg.contains("[rows, 7]"),
            "{msg}"
        );
        let msg = load(&|m| m["architecture"]["file"] = "missing.onnx".into());
        assert!(msg.contains("missing.onnx"), "{msg}");
    }
}

#[cfg(not(feature = "onnx"))]
#[test]
fn an_onnx_package_needs_the_onnx_feature() {
    let err = ModelPackage::load(&fixture("onnx_mlp"), &Device::Cpu)
        .expect_err("built without onnx")
        .to_string();
    assert!(err.contains("`onnx` feature"), "{err}");
}
