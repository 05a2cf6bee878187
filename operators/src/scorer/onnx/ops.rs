//! Which ONNX operators a graph may use: those candle-onnx 0.11 evaluates
//! at all, and those it can evaluate next to values on a GPU. Checked at
//! load, so a model that would fail on its first batch is refused by
//! `scorestream validate`, naming the operator.

use std::collections::{BTreeMap, HashSet};

use candle_onnx::onnx::{GraphProto, NodeProto};

/// The operators candle-onnx 0.11 evaluates (its `simple_eval` match arms),
/// in the default ONNX domain. Checked at load so a model that would fail on
/// its first batch is refused by `scorestream validate`, naming the operator.
const SUPPORTED_OPS: &[&str] = &[
    "Abs",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Cos",
    "CumSum",
    "Div",
    "Dropout",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "GatherElements",
    "Gelu",
    "Gemm",
    "Greater",
    "GreaterOrEqual",
    "HardSwish",
    "Identity",
    "If",
    "LSTM",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "MatMul",
    "MaxPool",
    "Min",
    "Mul",
    "Neg",
    "Not",
    "OneHot",
    "Or",
    "PRelu",
    "Pad",
    "Pow",
    "RNN",
    "Range",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Resize",
    "ScatterND",
    "Selu",
    "Shape",
    "Sigmoid",
    "Sign",
    "Sin",
    "Size",
    "Slice",
    "Softmax",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tanh",
    "Tile",
    "Transpose",
    "Trilu",
    "Unsqueeze",
    "Where",
    "Xor",
];

/// Operators whose candle-onnx 0.11 implementation creates tensors on the
/// CPU (`Range`, `ConstantOfShape`, and `If`'s subgraph initializers), so
/// they cannot mix with values on a GPU.
const CPU_ONLY_OPS: &[&str] = &["ConstantOfShape", "If", "Range"];

pub(super) fn cpu_only_ops(graph: &GraphProto) -> Result<(), String> {
    match graph
        .node
        .iter()
        .find(|n| CPU_ONLY_OPS.contains(&n.op_type.as_str()))
    {
        None => Ok(()),
        Some(n) => Err(format!(
            "operator `{}` (node `{}`) runs on the CPU only in candle-onnx 0.11; \
             score this model with model.device = \"cpu\"",
            n.op_type, n.name
        )),
    }
}

/// Every operator in `graph` (and its subgraphs) that candle-onnx cannot
/// evaluate, as one error naming each with the first node using it.
pub(super) fn unsupported_ops(graph: &GraphProto) -> Result<(), String> {
    let supported: HashSet<&str> = SUPPORTED_OPS.iter().copied().collect();
    let mut found = BTreeMap::new();
    let mut stack = vec![graph];
    while let Some(g) = stack.pop() {
        for node in &g.node {
            let default_domain = node.domain.is_empty() || node.domain == "ai.onnx";
            if !default_domain || !supported.contains(node.op_type.as_str()) {
                let op = if default_domain {
                    node.op_type.clone()
                } else {
                    format!("{}:{}", node.domain, node.op_type)
                };
                found.entry(op).or_insert_with(|| node.name.clone());
            } else if node.op_type == "Gelu" && tanh_gelu(node) {
                // candle-onnx ignores `approximate` and computes the erf
                // form: scores would be off by up to ~2e-4, silently.
                found
                    .entry("Gelu(approximate=\"tanh\")".to_owned())
                    .or_insert_with(|| node.name.clone());
            }
            for attr in &node.attribute {
                stack.extend(attr.g.iter());
                stack.extend(attr.graphs.iter());
            }
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the ONNX graph uses operator(s) that candle-onnx 0.11 does not support: {}",
        found
            .iter()
            .map(|(op, node)| format!("`{op}` (node `{node}`)"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn tanh_gelu(node: &NodeProto) -> bool {
    node.attribute
        .iter()
        .any(|a| a.name == "approximate" && a.s == b"tanh")
}
