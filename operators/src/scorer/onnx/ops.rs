//! Which ONNX operators a graph may use: those candle-onnx 0.11 evaluates
//! at all, and those it can evaluate next to values on a GPU. Checked at
//! load, so a model that would fail on its first batch is refused by
//! `scorestream validate`, naming the operator.

use std::collections::{BTreeMap, HashMap, HashSet};

use candle_onnx::onnx::{GraphProto, NodeProto};

/// The operators candle-onnx 0.11 evaluates (its `simple_eval` match arms),
/// in the default ONNX domain, less [`REFUSED_OPS`]. Checked at load so a
/// model that would fail on its first batch is refused by `scorestream
/// validate`, naming the operator. `ops_tests.rs` asks candle-onnx about
/// every ONNX operator, so this list fails a test when it drifts.
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
    "ReduceL2",
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

/// Operators candle-onnx 0.11 evaluates that a scoring model may not use,
/// with why.
const REFUSED_OPS: &[(&str, &str)] = &[
    (
        "RandomNormal",
        "it draws unseeded random numbers (candle-onnx refuses a seed): scores would not repeat",
    ),
    (
        "RandomUniform",
        "it draws unseeded random numbers (candle-onnx refuses a seed): scores would not repeat",
    ),
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
/// evaluate, or that [`REFUSED_OPS`] refuses, as one error naming each with
/// the first node using it.
pub(super) fn unsupported_ops(graph: &GraphProto) -> Result<(), String> {
    let supported: HashSet<&str> = SUPPORTED_OPS.iter().copied().collect();
    let refused: HashMap<&str, &str> = REFUSED_OPS.iter().copied().collect();
    // Operator → (first node using it, why it is refused if candle-onnx
    // evaluates it).
    let mut found: BTreeMap<String, (String, Option<&str>)> = BTreeMap::new();
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
                let why = refused.get(op.as_str()).copied();
                found.entry(op).or_insert_with(|| (node.name.clone(), why));
            } else if node.op_type == "Gelu" && tanh_gelu(node) {
                // candle-onnx ignores `approximate` and computes the erf
                // form: scores would be off by up to ~2e-4, silently.
                found
                    .entry("Gelu(approximate=\"tanh\")".to_owned())
                    .or_insert_with(|| (node.name.clone(), None));
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
            .map(|(op, (node, why))| match why {
                None => format!("`{op}` (node `{node}`)"),
                Some(why) => format!("`{op}` (node `{node}`: {why})"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn tanh_gelu(node: &NodeProto) -> bool {
    node.attribute
        .iter()
        .any(|a| a.name == "approximate" && a.s == b"tanh")
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
