//! ONNX networks, evaluated by candle-onnx on the job's device.
//!
//! candle-onnx decodes every initializer and `Constant` from the protobuf on
//! each evaluation, on the CPU. We decode them once at load, onto the
//! device, and hand them in as ready values, so a batch costs only the
//! graph's arithmetic and a CUDA job keeps its weights on the GPU: the same
//! evaluation runs on either device.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_onnx::onnx::{self, GraphProto, ModelProto, NodeProto};

use super::manifest::OutputSpec;

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

/// A loaded ONNX graph with one `[rows, inputs]` input and the output that is
/// the score.
#[derive(Debug, Clone)]
pub struct OnnxNetwork {
    /// The graph without its initializers and `Constant` nodes.
    model: ModelProto,
    /// Those initializers and constants, decoded onto the device.
    constants: HashMap<String, Tensor>,
    input: String,
    input_dtype: DType,
    output: String,
    index: Option<usize>,
}

impl OnnxNetwork {
    /// Reads `path` and checks it against the manifest: only supported
    /// operators, one input of width `width`, the named output present. The
    /// error says which of these failed.
    pub fn load(
        path: &Path,
        width: usize,
        output: &OutputSpec,
        device: &Device,
    ) -> Result<Self, String> {
        let mut model = candle_onnx::read_file(path)
            .map_err(|e| format!("cannot read ONNX model {}: {e}", path.display()))?;
        let Some(graph) = model.graph.as_mut() else {
            return Err("the ONNX model has no graph".into());
        };
        unsupported_ops(graph)?;

        let mut constants = HashMap::new();
        for t in std::mem::take(&mut graph.initializer) {
            let tensor = candle_onnx::eval::get_tensor(&t, &t.name)
                .and_then(|v| v.to_device(device))
                .map_err(|e| format!("initializer `{}`: {e}", t.name))?;
            constants.insert(t.name, tensor);
        }
        let mut kept = Vec::with_capacity(graph.node.len());
        for node in std::mem::take(&mut graph.node) {
            match constant_tensor(&node) {
                Some(t) => {
                    let tensor = candle_onnx::eval::get_tensor(t, &node.name)
                        .and_then(|v| v.to_device(device))
                        .map_err(|e| format!("constant `{}`: {e}", node.name))?;
                    constants.insert(node.output[0].clone(), tensor);
                }
                None => kept.push(node),
            }
        }
        graph.node = kept;

        let inputs: Vec<_> = graph
            .input
            .iter()
            .filter(|i| !constants.contains_key(&i.name))
            .collect();
        let [input] = inputs.as_slice() else {
            return Err(format!(
                "the ONNX graph takes {} inputs ({}); scorestream feeds one [rows, {width}] tensor",
                inputs.len(),
                inputs
                    .iter()
                    .map(|i| format!("`{}`", i.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let (input_dtype, dims) = tensor_type(input)?;
        if dims.len() != 2 || dims[1].is_some_and(|d| d != width) {
            return Err(format!(
                "the ONNX input `{}` has shape {}; the manifest's {width} inputs need [rows, {width}]",
                input.name,
                show_dims(&dims)
            ));
        }
        if !graph.output.iter().any(|o| o.name == output.name) {
            return Err(format!(
                "the manifest's output `{}` is not an output of the ONNX graph (it has: {})",
                output.name,
                graph
                    .output
                    .iter()
                    .map(|o| format!("`{}`", o.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(Self {
            input: input.name.clone(),
            input_dtype,
            output: output.name.clone(),
            index: output.index,
            model,
            constants,
        })
    }

    /// The score output for `x` (`[rows, inputs]`, f32), shape `[rows]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let rows = x.dim(0)?;
        let mut values = self.constants.clone();
        values.insert(self.input.clone(), x.to_dtype(self.input_dtype)?);
        let mut outputs = candle_onnx::simple_eval(&self.model, values)?;
        let Some(y) = outputs.remove(&self.output) else {
            candle_core::bail!("the graph did not produce output `{}`", self.output)
        };
        let y = match (y.rank(), self.index) {
            (2, Some(i)) => y.narrow(1, i, 1)?.flatten_all()?,
            _ => y.flatten_all()?,
        };
        if y.dim(0)? != rows {
            candle_core::bail!(
                "output `{}` has {} values for {rows} rows{}",
                self.output,
                y.dim(0)?,
                if self.index.is_none() {
                    "; for a [rows, classes] output set `output.index`"
                } else {
                    ""
                }
            )
        }
        y.to_dtype(DType::F32)
    }
}

/// Every operator in `graph` (and its subgraphs) that candle-onnx cannot
/// evaluate, as one error naming each with the first node using it.
fn unsupported_ops(graph: &GraphProto) -> Result<(), String> {
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
        "the ONNX graph uses operator(s) that candle-onnx {} does not support: {}",
        "0.11",
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

/// The tensor a `Constant` node holds in its `value` attribute.
fn constant_tensor(node: &NodeProto) -> Option<&onnx::TensorProto> {
    if node.op_type != "Constant" || !(node.domain.is_empty() || node.domain == "ai.onnx") {
        return None;
    }
    node.attribute
        .iter()
        .find(|a| a.name == "value")
        .and_then(|a| a.t.as_ref())
}

/// The element type and dims (`None` for a symbolic dim) of a graph input.
fn tensor_type(info: &onnx::ValueInfoProto) -> Result<(DType, Vec<Option<usize>>), String> {
    let Some(onnx::type_proto::Value::TensorType(t)) =
        info.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(format!("the ONNX input `{}` is not a tensor", info.name));
    };
    let dtype = onnx::tensor_proto::DataType::try_from(t.elem_type)
        .ok()
        .and_then(candle_onnx::dtype)
        .filter(|d| d.is_float())
        .ok_or_else(|| {
            format!(
                "the ONNX input `{}` has element type {}; scorestream feeds floats",
                info.name, t.elem_type
            )
        })?;
    let dims = t
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(onnx::tensor_shape_proto::dimension::Value::DimValue(v)) => {
                        usize::try_from(v).ok()
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((dtype, dims))
}

fn show_dims(dims: &[Option<usize>]) -> String {
    let d: Vec<String> = dims
        .iter()
        .map(|d| d.map_or_else(|| "?".to_owned(), |d| d.to_string()))
        .collect();
    format!("[{}]", d.join(", "))
}
