//! ONNX networks, evaluated by candle-onnx on the job's device.
//!
//! candle-onnx decodes every initializer and `Constant` from the protobuf on
//! each evaluation, on the CPU. We decode them once at load, onto the
//! device, and hand them in as ready values, so a batch costs only the
//! graph's arithmetic and a CUDA job keeps its weights on the GPU: the same
//! evaluation runs on either device.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_onnx::onnx::{self, ModelProto, NodeProto};

use super::manifest::OutputSpec;

mod ops;

use ops::{cpu_only_ops, unsupported_ops};

/// A loaded ONNX graph with one `[rows, inputs]` input and the output that is
/// the score.
#[derive(Debug, Clone)]
pub(super) struct OnnxNetwork {
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
    pub(super) fn load(
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
        graph.node = lower_gemms(kept, &mut constants, device).map_err(|e| e.to_string())?;
        if !device.is_cpu() {
            cpu_only_ops(graph)?;
        }

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
    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
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

/// Its graph's widths are not known, so CPU slices take the default size.
impl super::model::Model for OnnxNetwork {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        OnnxNetwork::forward(self, x)
    }
}

/// Rewrites each `Gemm` (`alpha * A' @ B' + beta * C`) as MatMul, Mul and Add
/// nodes, folding a constant B's transpose and `beta * C` into new
/// constants. candle-onnx's Gemm builds full-size `alpha`/`beta` tensors on
/// the CPU on every call: slower there, and an error next to GPU values.
fn lower_gemms(
    nodes: Vec<NodeProto>,
    constants: &mut HashMap<String, Tensor>,
    device: &Device,
) -> candle_core::Result<Vec<NodeProto>> {
    let mut out = Vec::with_capacity(nodes.len());
    for node in nodes {
        if node.op_type != "Gemm" || !(node.domain.is_empty() || node.domain == "ai.onnx") {
            out.push(node);
        } else {
            lower_gemm(&node, constants, device, &mut out)?;
        }
    }
    Ok(out)
}

/// One `Gemm` as the nodes (and constants) that replace it, onto `out`.
fn lower_gemm(
    node: &NodeProto,
    constants: &mut HashMap<String, Tensor>,
    device: &Device,
    out: &mut Vec<NodeProto>,
) -> candle_core::Result<()> {
    let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
    let alpha = attr("alpha").map_or(1.0, |a| a.f);
    let beta = attr("beta").map_or(1.0, |a| a.f);
    let trans_a = attr("transA").is_some_and(|a| a.i != 0);
    let trans_b = attr("transB").is_some_and(|a| a.i != 0);
    let dtype = constants
        .get(&node.input[1])
        .map_or(DType::F32, Tensor::dtype);
    let result = node.output[0].clone();
    let tmp = |what: &str| format!("{result}/scorestream_{what}");
    let mut push = |op: &str, inputs: Vec<String>, output: String| {
        out.push(NodeProto {
            input: inputs,
            output: vec![output.clone()],
            name: format!("{}/{op}", node.name),
            op_type: op.to_owned(),
            ..Default::default()
        });
        output
    };

    let mut a = node.input[0].clone();
    if trans_a {
        a = push("Transpose", vec![a], tmp("a_t"));
    }
    let mut b = node.input[1].clone();
    if trans_b {
        b = match constants.get(&b) {
            Some(t) => {
                let name = tmp("b_t");
                constants.insert(name.clone(), t.t()?.contiguous()?);
                name
            }
            None => push("Transpose", vec![b], tmp("b_t")),
        };
    }
    let c = node.input.get(2).filter(|c| !c.is_empty()).cloned();
    let last_is_matmul = alpha == 1.0 && c.is_none();
    let mut y = push(
        "MatMul",
        vec![a, b],
        if last_is_matmul {
            result.clone()
        } else {
            tmp("ab")
        },
    );
    if alpha != 1.0 {
        let k = tmp("alpha");
        constants.insert(k.clone(), Tensor::new(alpha, device)?.to_dtype(dtype)?);
        let to = if c.is_none() {
            result.clone()
        } else {
            tmp("alpha_ab")
        };
        y = push("Mul", vec![y, k], to);
    }
    if let Some(mut c) = c {
        if beta != 1.0 {
            c = match constants.get(&c) {
                Some(t) => {
                    let name = tmp("beta_c");
                    constants.insert(name.clone(), t.affine(f64::from(beta), 0.0)?);
                    name
                }
                None => {
                    let k = tmp("beta");
                    constants.insert(k.clone(), Tensor::new(beta, device)?.to_dtype(dtype)?);
                    push("Mul", vec![c, k], tmp("beta_c"))
                }
            };
        }
        push("Add", vec![y, c], result);
    }
    Ok(())
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

#[cfg(test)]
mod tests;
