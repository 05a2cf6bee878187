use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{AsArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float32Type, Schema};
use candle_core::{Device, Tensor};

use super::operator::in_canary;
use super::registry::version_order;
use super::train::{TrainOptions, auc, fit_standardisation, train};
use super::*;
use crate::Envelope;

fn batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("amount", DataType::Float64, true),
        Field::new("country", DataType::Utf8, true),
        Field::new("home", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Float64Array::from(vec![Some(10.0), None, Some(30.0)])),
            Arc::new(StringArray::from(vec![Some("DE"), Some("FR"), None])),
            Arc::new(StringArray::from(vec![Some("DE"), Some("DE"), Some("DE")])),
        ],
    )
    .expect("batch")
}

fn spec(name: &str, column: &str, transform: Transform) -> InputSpec {
    InputSpec {
        name: name.into(),
        column: column.into(),
        dtype: None,
        transform,
    }
}

fn specs() -> Vec<InputSpec> {
    vec![
        spec(
            "amount",
            "amount",
            Transform::Standard {
                mean: 20.0,
                std: 10.0,
            },
        ),
        spec(
            "log_amount",
            "amount",
            Transform::LogStandard {
                mean: 0.0,
                std: 1.0,
            },
        ),
        spec("is_de", "country", Transform::Equals { value: "DE".into() }),
        spec(
            "at_home",
            "country",
            Transform::SameAs {
                other: "home".into(),
            },
        ),
    ]
}

#[test]
fn input_matrix_applies_transforms_column_major_and_imputes_missing_as_mean() {
    let m = InputMatrix::bind(&specs(), &batch().schema()).expect("bind");
    let x = m.build(&batch()).expect("build");
    let expect = [
        [-1.0, (11f32).ln(), 1.0, 1.0],
        [0.0, 0.0, 0.0, 0.0],
        [1.0, (31f32).ln(), 0.0, 0.0],
    ];
    for (i, row) in expect.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            assert!(
                (x[j * 3 + i] - v).abs() < 1e-6,
                "x[{i},{j}] = {} want {v}",
                x[j * 3 + i]
            );
        }
    }
}

#[test]
fn binding_reports_every_bad_input_by_name() {
    let bad = vec![
        spec(
            "a",
            "nope",
            Transform::Standard {
                mean: 0.0,
                std: 1.0,
            },
        ),
        spec(
            "b",
            "country",
            Transform::Standard {
                mean: 0.0,
                std: 1.0,
            },
        ),
        spec("c", "amount", Transform::Equals { value: "x".into() }),
        spec(
            "ok",
            "amount",
            Transform::Standard {
                mean: 0.0,
                std: 1.0,
            },
        ),
    ];
    let errs = InputMatrix::bind(&bad, &batch().schema()).expect_err("three bad inputs");
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(text[0].contains("input `a`") && text[0].contains("`nope`"));
    assert!(text[1].contains("input `b`") && text[1].contains("numeric"));
    assert!(text[2].contains("input `c`") && text[2].contains("string"));
}

fn logistic_package(dir: &std::path::Path, w: Vec<f32>, b: f32) -> ModelManifest {
    let manifest = ModelManifest {
        name: "lr".into(),
        output: Default::default(),
        precisions: Vec::new(),
        version: "7".into(),
        architecture: Architecture::Mlp {
            hidden: vec![],
            activation: Activation::Relu,
        },
        inputs: specs(),
        training: Default::default(),
    };
    let mut t = HashMap::new();
    t.insert(
        "layers.0.weight".to_owned(),
        Tensor::from_vec(w, (1, 4), &Device::Cpu).expect("w"),
    );
    t.insert(
        "layers.0.bias".to_owned(),
        Tensor::from_vec(vec![b], 1, &Device::Cpu).expect("b"),
    );
    ModelPackage::save(dir, &manifest, &t).expect("save");
    manifest
}

#[test]
fn scorer_matches_a_hand_computed_logistic_regression() {
    let dir = tempfile::tempdir().expect("tmp");
    let w = vec![0.5f32, -0.25, 2.0, 1.0];
    logistic_package(dir.path(), w.clone(), -1.0);
    let pkg = ModelPackage::load(dir.path(), &Device::Cpu).expect("load");
    let scorer = Scorer::new(pkg, Device::Cpu, &batch().schema()).expect("bind");
    let out = scorer
        .process(Envelope {
            batch: Some(batch()),
            ..Default::default()
        })
        .expect("score");
    let b = out.batch.expect("rows");
    let scores = b
        .column_by_name("score")
        .expect("score")
        .as_primitive::<Float32Type>();
    let x = InputMatrix::bind(&specs(), &batch().schema())
        .expect("bind")
        .build(&batch())
        .expect("x");
    for i in 0..3 {
        let z: f32 = (0..4).map(|j| w[j] * x[j * 3 + i]).sum::<f32>() - 1.0;
        let want = 1.0 / (1.0 + (-z).exp());
        assert!(
            (scores.value(i) - want).abs() < 1e-6,
            "row {i}: {} vs {want}",
            scores.value(i)
        );
    }
    assert_eq!(
        b.column_by_name("model_version")
            .expect("v")
            .as_string::<i32>()
            .value(2),
        "7"
    );
    assert_eq!(
        b.column_by_name("model_name")
            .expect("n")
            .as_string::<i32>()
            .value(0),
        "lr"
    );
}

#[test]
fn weights_that_do_not_match_the_manifest_are_refused_with_shapes() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut manifest = logistic_package(dir.path(), vec![0.0; 4], 0.0);
    manifest.inputs.pop();
    std::fs::write(
        dir.path().join("manifest.json"),
        serde_json::to_string(&manifest).expect("json"),
    )
    .expect("write");
    let e = ModelPackage::load(dir.path(), &Device::Cpu)
        .expect_err("3 inputs vs 4 columns")
        .to_string();
    assert!(
        e.contains("layers.0.weight") && e.contains("[1, 4]") && e.contains("[1, 3]"),
        "{e}"
    );

    std::fs::write(dir.path().join("manifest.json"), "{\"name\": 1}").expect("write");
    let e = ModelPackage::load(dir.path(), &Device::Cpu)
        .expect_err("bad json")
        .to_string();
    assert!(e.contains("manifest.json is invalid"), "{e}");
}

#[test]
fn device_choice_errors_list_the_valid_values() {
    assert_eq!(DeviceChoice::parse("cuda:1"), Ok(DeviceChoice::Cuda(1)));
    assert_eq!(DeviceChoice::parse("cpu"), Ok(DeviceChoice::Cpu));
    let e = DeviceChoice::parse("gpu").expect_err("gpu is not a device");
    assert!(e.contains("auto, cpu, cuda:N"), "{e}");
    assert!(
        DeviceChoice::Auto.open().is_ok(),
        "auto always finds a device"
    );
    if !cfg!(feature = "cuda") {
        let e = DeviceChoice::Cuda(0)
            .open()
            .expect_err("no cuda in this build")
            .to_string();
        assert!(e.contains("without the `cuda` feature"), "{e}");
    }
}

#[test]
fn training_learns_a_nonlinear_rule() {
    // label = 1 when |x0| > 1 XOR x1 > 0: not linearly separable.
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut s = 12345u64;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f32 / (1u64 << 31) as f32) * 4.0 - 2.0
    };
    for _ in 0..6000 {
        let (a, b) = (next(), next());
        x.extend([a, b]);
        y.push(f32::from((a.abs() > 1.0) ^ (b > 0.0)));
    }
    let mut specs = vec![
        spec(
            "a",
            "a",
            Transform::Standard {
                mean: 0.0,
                std: 1.0,
            },
        ),
        spec(
            "b",
            "b",
            Transform::Standard {
                mean: 0.0,
                std: 1.0,
            },
        ),
    ];
    fit_standardisation(&mut specs, &x, 2);
    let opts = TrainOptions {
        hidden: vec![16, 8],
        activation: Activation::Relu,
        epochs: 40,
        batch_size: 128,
        learning_rate: 0.01,
        seed: 7,
    };
    let (tensors, mlp) = train(&x, &y, 2, &opts).expect("train");
    assert_eq!(tensors.len(), 6);
    let p = mlp
        .predict(&Tensor::from_vec(x, (6000, 2), &Device::Cpu).expect("x"))
        .expect("p");
    let a = auc(&p.to_vec1::<f32>().expect("vec"), &y);
    assert!(a > 0.95, "AUC {a}");
}

#[test]
fn auc_of_known_rankings() {
    assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &[0.0, 0.0, 1.0, 1.0]), 1.0);
    assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &[0.0, 0.0, 1.0, 1.0]), 0.0);
    assert_eq!(auc(&[0.5, 0.5], &[0.0, 1.0]), 0.5);
}

#[test]
fn registry_versions_order_numerically_and_rejections_wait_for_a_change() {
    use std::cmp::Ordering::*;
    assert_eq!(version_order("v2", "v10"), Less);
    assert_eq!(version_order("1.9", "1.10"), Less);
    assert_eq!(version_order("v02", "v2"), Equal);
    assert_eq!(version_order("2026-11-23", "2026-11-03"), Greater);

    let dir = tempfile::tempdir().expect("tmp");
    let write = |name: &str, manifest: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(d.join("manifest.json"), manifest).expect("manifest");
        d
    };
    let v1 = write("v1", "{}");
    let source = ModelSource::resolve(dir.path()).expect("registry");
    assert_eq!(
        source,
        ModelSource::Registry {
            dir: dir.path().to_owned(),
            latest: v1.clone()
        }
    );
    let mut w = RegistryWatcher::new(dir.path(), &v1);
    assert_eq!(w.newer().expect("list"), None);
    write(".v3", "{}"); // still being copied: hidden
    let v2 = write("v2", "{}");
    assert_eq!(w.newer().expect("list"), Some(v2.clone()));
    w.rejected(&v2);
    assert_eq!(w.newer().expect("list"), None, "not retried unchanged");
    std::fs::write(v2.join("model.safetensors"), b"fixed").expect("weights");
    assert_eq!(
        w.newer().expect("list"),
        Some(v2.clone()),
        "retried once changed"
    );
    w.accepted(&v2);
    assert_eq!(w.newer().expect("list"), None);

    let empty = tempfile::tempdir().expect("tmp");
    let e = ModelSource::resolve(empty.path()).expect_err("nothing");
    assert!(e.to_string().contains("registry directory"), "{e}");
}

/// A champion, a shadow and a canary for half the keys, all scoring the
/// same batch: each row's score and model come from the model its key
/// picks, and the other models' scores are beside it.
#[test]
fn shadows_and_a_canary_score_the_same_batch_and_rows_name_their_model() {
    use arrow::array::{Array, ArrayRef, Float64Array, StructArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models");
    let load = |n: &str| ModelPackage::load(&root.join(n), &Device::Cpu).expect(n);
    let n = 200;
    let mut fields: Vec<Field> = (0..8)
        .map(|i| Field::new(format!("x{i}"), DataType::Float64, true))
        .collect();
    fields.push(Field::new("account", DataType::Utf8, false));
    let mut cols: Vec<ArrayRef> = (0..8)
        .map(|i| {
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|r| ((r * 7 + i * 3) % 17) as f64 / 4.0),
            )) as ArrayRef
        })
        .collect();
    let keys: Vec<String> = (0..n).map(|r| format!("acct-{r}")).collect();
    cols.push(Arc::new(StringArray::from(keys.clone())));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("batch");
    let schema = batch.schema();

    let alone = |name: &str| {
        Scorer::new(load(name), Device::Cpu, &schema)
            .expect("scorer")
            .scores(&batch)
            .expect("scores")
    };
    let (champion, canary, shadow) = (alone("mlp_relu"), alone("mlp_tanh"), alone("logreg"));
    let scorer = Scorer::new(load("mlp_relu"), Device::Cpu, &schema)
        .and_then(|s| s.with_shadow(load("logreg")))
        .and_then(|s| s.with_canary(load("mlp_tanh"), 0.5, "account"))
        .expect("scorer");
    let out = scorer
        .process(Envelope {
            batch: Some(batch.clone()),
            ..Default::default()
        })
        .expect("process")
        .batch
        .expect("rows");
    let score = out
        .column_by_name("score")
        .expect("score")
        .as_primitive::<Float32Type>();
    let model = out
        .column_by_name("model_name")
        .expect("name")
        .as_string::<i32>();
    let others = out
        .column_by_name("shadow_scores")
        .expect("shadows")
        .as_list::<i32>();
    let canary_name = load("mlp_tanh").manifest.name;
    let champion_name = load("mlp_relu").manifest.name;
    let mut to_canary = 0;
    for (i, key) in keys.iter().enumerate() {
        let picked = in_canary(key, 0.5);
        to_canary += usize::from(picked);
        let (want, name, other) = if picked {
            (canary.value(i), &canary_name, champion.value(i))
        } else {
            (champion.value(i), &champion_name, canary.value(i))
        };
        assert_eq!(score.value(i), want, "row {i}");
        assert_eq!(model.value(i), name, "row {i}");
        let entries = others.value(i);
        let entries: &StructArray = entries.as_struct();
        assert_eq!(entries.len(), 2, "the other two models");
        let s = entries.column(2).as_primitive::<Float32Type>();
        assert_eq!(
            (s.value(0), s.value(1)),
            (other, shadow.value(i)),
            "row {i}"
        );
    }
    assert!((70..130).contains(&to_canary), "about half: {to_canary}");
    // deterministic per key
    assert_eq!(in_canary("acct-7", 0.5), in_canary("acct-7", 0.5));
    assert!(!in_canary("acct-7", 0.0) && in_canary("acct-7", 1.0));
}

/// Strings that share prefixes, suffixes and lengths, around the 8- and
/// 16-byte words the one-hot pass packs them into (and a NUL, which the
/// padding must not confuse with a shorter string), so a match on length
/// alone or on part of the bytes would show.
const WORDS: [&str; 14] = [
    "",
    "x",
    "x\0",
    "xy",
    "yx",
    "pos",
    "posx",
    "abcdefghi",
    "abcdefghj",
    "bbcdefghi",
    "0123456789abcdef",
    "0123456789abcdeF",
    "0123456789abcdefg",
    "0123456789abcdefh",
];

fn word() -> impl proptest::strategy::Strategy<Value = Option<&'static str>> {
    use proptest::prelude::*;
    prop_oneof![1 => Just(None), 6 => proptest::sample::select(&WORDS[..]).prop_map(Some)]
}

proptest::proptest! {
    /// One-hot inputs over one column are filled in one pass; each must
    /// still be 1.0 exactly where its column holds its value, nulls and
    /// sliced batches included, whatever order and repeats the model lists.
    #[test]
    fn one_hot_inputs_are_one_exactly_where_the_column_holds_the_value(
        a in proptest::collection::vec(word(), 1..40),
        b_seed in proptest::collection::vec(word(), 40),
        inputs in proptest::collection::vec(
            (proptest::bool::ANY, proptest::sample::select(&WORDS[..])),
            1..12,
        ),
        skip in 0usize..4,
    ) {
        let b: Vec<Option<&str>> = b_seed[..a.len()].to_vec();
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        let full = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(a.clone())),
                Arc::new(StringArray::from(b.clone())),
            ],
        )
        .expect("batch");
        let skip = skip.min(a.len() - 1);
        let batch = full.slice(skip, a.len() - skip);
        let specs: Vec<InputSpec> = inputs
            .iter()
            .enumerate()
            .map(|(i, (on_a, v))| {
                let column = if *on_a { "a" } else { "b" };
                spec(&format!("i{i}"), column, Transform::Equals { value: (*v).into() })
            })
            .collect();
        let m = InputMatrix::bind(&specs, &batch.schema()).expect("bind");
        let x = m.build(&batch).expect("build");
        let rows = batch.num_rows();
        for (j, (on_a, v)) in inputs.iter().enumerate() {
            let column = if *on_a { &a } else { &b };
            for row in 0..rows {
                let want = if column[skip + row] == Some(*v) { 1.0 } else { 0.0 };
                proptest::prop_assert_eq!(x[j * rows + row], want, "input {} row {}", j, row);
            }
        }
    }
}
