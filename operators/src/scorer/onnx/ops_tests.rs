//! The operator lists in `ops.rs` against candle-onnx itself.
//!
//! candle-onnx has no API that lists the operators it evaluates: they are
//! the match arms of `simple_eval`, whose fallback arm fails with
//! "unsupported op_type {op} for op {node:?}". So these tests ask it: each
//! operator name of the default ONNX domain is put in a one-node graph and
//! evaluated. An operator candle-onnx knows fails on its missing inputs or
//! attributes (or on nothing); one it does not know reaches the fallback.
//! Every listed operator must be one it knows, and every other name of the
//! ONNX catalogue one it does not, so an upgrade that adds or drops an
//! operator fails here, naming it.
//!
//! Why not read candle-onnx's `eval.rs` instead: a test has no sound way to
//! find the package's source. `CARGO_HOME` is not set at compile time, the
//! registry folder's name is a hash of the index URL (and a vendored build
//! has none), candle-onnx declares no `links`, so no `DEP_*` variable
//! carries its path, and `cargo metadata` from a test needs every
//! platform's packages downloaded (it fails offline here) and the
//! workspace's lock. Asking the evaluator also checks behaviour rather
//! than the spelling of a match arm.
//!
//! The one thing this cannot see is an operator outside the ONNX catalogue
//! below; candle-onnx 0.11 evaluates none (it ignores a node's domain, and
//! `unsupported_ops` refuses every other domain anyway).

use std::collections::{BTreeSet, HashMap};

use candle_onnx::onnx::{GraphProto, ModelProto, NodeProto};

use super::*;

/// Every operator of the default ONNX domain, deprecated ones included: the
/// schemas of ONNX 1.23 (opset 28), `onnx.defs.get_all_schemas_with_history()`.
const ONNX_OPERATORS: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "AffineGrid",
    "And",
    "ArgMax",
    "ArgMin",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "Attention",
    "AveragePool",
    "BatchNormalization",
    "Bernoulli",
    "BitCast",
    "BitShift",
    "BitwiseAnd",
    "BitwiseNot",
    "BitwiseOr",
    "BitwiseXor",
    "BlackmanWindow",
    "Cast",
    "CastLike",
    "CausalConvWithState",
    "Ceil",
    "Celu",
    "CenterCropPad",
    "Clip",
    "Col2Im",
    "Compress",
    "Concat",
    "ConcatFromSequence",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvInteger",
    "ConvTranspose",
    "Cos",
    "Cosh",
    "CumProd",
    "CumSum",
    "DFT",
    "DeformConv",
    "DepthToSpace",
    "DequantizeLinear",
    "Det",
    "Div",
    "Dropout",
    "DynamicQuantizeLinear",
    "Einsum",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "EyeLike",
    "Flatten",
    "Floor",
    "GRU",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalLpPool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "GridSample",
    "GroupNormalization",
    "HammingWindow",
    "HannWindow",
    "HardSigmoid",
    "HardSwish",
    "Hardmax",
    "Identity",
    "If",
    "ImageDecoder",
    "InstanceNormalization",
    "IsInf",
    "IsNaN",
    "LRN",
    "LSTM",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "LinearAttention",
    "Log",
    "LogSoftmax",
    "Loop",
    "LpNormalization",
    "LpPool",
    "MatMul",
    "MatMulInteger",
    "Max",
    "MaxPool",
    "MaxRoiPool",
    "MaxUnpool",
    "Mean",
    "MeanVarianceNormalization",
    "MelWeightMatrix",
    "Min",
    "Mish",
    "Mod",
    "Mul",
    "Multinomial",
    "Neg",
    "NegativeLogLikelihoodLoss",
    "NonMaxSuppression",
    "NonZero",
    "Not",
    "OneHot",
    "Optional",
    "OptionalGetElement",
    "OptionalHasElement",
    "Or",
    "PRelu",
    "Pad",
    "Pow",
    "QLinearConv",
    "QLinearMatMul",
    "QuantizeLinear",
    "RMSNormalization",
    "RNN",
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "RegexFullMatch",
    "Relu",
    "Reshape",
    "Resize",
    "ReverseSequence",
    "RoiAlign",
    "RotaryEmbedding",
    "Round",
    "STFT",
    "Scan",
    "Scatter",
    "ScatterElements",
    "ScatterND",
    "Selu",
    "SequenceAt",
    "SequenceConstruct",
    "SequenceEmpty",
    "SequenceErase",
    "SequenceInsert",
    "SequenceLength",
    "SequenceMap",
    "Shape",
    "Shrink",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Size",
    "Slice",
    "Softmax",
    "SoftmaxCrossEntropyLoss",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "SplitToSequence",
    "Sqrt",
    "Squeeze",
    "StringConcat",
    "StringNormalizer",
    "StringSplit",
    "Sub",
    "Sum",
    "SwiGLU",
    "Swish",
    "Tan",
    "Tanh",
    "TensorScatter",
    "TfIdfVectorizer",
    "ThresholdedRelu",
    "Tile",
    "TopK",
    "Transpose",
    "Trilu",
    "Unique",
    "Unsqueeze",
    "Upsample",
    "Where",
    "Xor",
];

/// candle-onnx's words when `simple_eval` meets an operator it has no arm for.
fn unsupported_wording(op: &str) -> String {
    format!("unsupported op_type {op} for op ")
}

/// What candle-onnx says when it evaluates a graph of one `op` node whose
/// inputs are all missing: the error, or `None` if it evaluated.
fn evaluate_alone(op: &str) -> Option<String> {
    // More inputs and outputs than any operator reads, so an arm that
    // indexes them fails on a missing value rather than panicking.
    let names = |prefix: &str| (0..8).map(|i| format!("{prefix}{i}")).collect();
    let node = NodeProto {
        name: "probe".into(),
        op_type: op.into(),
        input: names("missing_input_"),
        output: names("output_"),
        ..Default::default()
    };
    let model = ModelProto {
        graph: Some(GraphProto {
            node: vec![node],
            ..Default::default()
        }),
        ..Default::default()
    };
    candle_onnx::simple_eval(&model, HashMap::new())
        .err()
        .map(|e| e.to_string())
}

fn candle_onnx_evaluates(op: &str) -> bool {
    // The probe itself: if candle-onnx reworded its fallback, every
    // operator would look evaluated; fail instead.
    let control = evaluate_alone("NoSuchOperator").unwrap_or_default();
    assert!(
        control.contains(&unsupported_wording("NoSuchOperator")),
        "candle-onnx reports an unknown operator in other words now: {control:?}; \
         update `unsupported_wording`"
    );
    evaluate_alone(op).is_none_or(|e| !e.contains(&unsupported_wording(op)))
}

fn listed() -> BTreeSet<&'static str> {
    SUPPORTED_OPS
        .iter()
        .copied()
        .chain(REFUSED_OPS.iter().map(|(op, _)| *op))
        .collect()
}

#[test]
fn every_listed_operator_is_one_candle_onnx_evaluates() {
    let not: Vec<&str> = listed()
        .into_iter()
        .filter(|op| !candle_onnx_evaluates(op))
        .collect();
    assert!(
        not.is_empty(),
        "listed in ops.rs but candle-onnx does not evaluate them: {not:?}"
    );
}

#[test]
fn every_other_onnx_operator_is_one_candle_onnx_refuses() {
    let listed = listed();
    let evaluated: Vec<&str> = ONNX_OPERATORS
        .iter()
        .copied()
        .filter(|op| !listed.contains(op) && candle_onnx_evaluates(op))
        .collect();
    assert!(
        evaluated.is_empty(),
        "candle-onnx evaluates {evaluated:?}, which ops.rs does not list: add each to \
         SUPPORTED_OPS (and to CPU_ONLY_OPS if it makes tensors on the CPU) or to REFUSED_OPS \
         with the reason"
    );
}

#[test]
fn the_lists_are_sorted_disjoint_onnx_names() {
    let catalogue: BTreeSet<&str> = ONNX_OPERATORS.iter().copied().collect();
    let refused: Vec<&str> = REFUSED_OPS.iter().map(|(op, _)| *op).collect();
    for (name, list) in [
        ("SUPPORTED_OPS", SUPPORTED_OPS),
        ("CPU_ONLY_OPS", CPU_ONLY_OPS),
        ("REFUSED_OPS", &refused[..]),
    ] {
        assert!(
            list.is_sorted_by(|a, b| a < b),
            "{name} is not sorted or repeats a name"
        );
        for op in list {
            assert!(
                catalogue.contains(op),
                "{name}: `{op}` is not an ONNX operator"
            );
        }
    }
    for op in &refused {
        assert!(
            !SUPPORTED_OPS.contains(op),
            "`{op}` is both supported and refused"
        );
    }
    for op in CPU_ONLY_OPS {
        assert!(
            SUPPORTED_OPS.contains(op),
            "CPU_ONLY_OPS: `{op}` is not supported at all"
        );
    }
}

#[test]
fn a_refused_operator_is_named_with_its_reason() {
    let node = |op: &str, name: &str| NodeProto {
        name: name.into(),
        op_type: op.into(),
        ..Default::default()
    };
    let graph = GraphProto {
        node: vec![
            node("RandomNormal", "noise"),
            node("Add", "add"),
            node("LayerNormalization", "ln"),
        ],
        ..Default::default()
    };
    let err = unsupported_ops(&graph).expect_err("refused");
    assert!(err.contains("`LayerNormalization` (node `ln`)"), "{err}");
    assert!(
        err.contains("`RandomNormal` (node `noise`: ") && err.contains("would not repeat"),
        "{err}"
    );
    assert!(!err.contains("`Add`"), "{err}");
}
