use serde::{Deserialize, Serialize};

/// What a model package contains, in `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    pub name: String,
    pub version: String,
    pub architecture: Architecture,
    /// The model's inputs in tensor column order.
    pub inputs: Vec<InputSpec>,
    /// Which output of the network is the score, and what it holds.
    #[serde(default, skip_serializing_if = "OutputSpec::is_default")]
    pub output: OutputSpec,
    /// Reduced precisions the model keeps its accuracy in (checked by its
    /// authors), so a GPU may run it in one: `["bf16", "f16"]`, first
    /// preferred. f32 is always allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub precisions: Vec<Precision>,
    /// Free-form training facts (data size, seed, held-out AUC...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub training: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Architecture {
    /// Fully connected layers `layers.{i}.weight` (`[out, in]`) and
    /// `layers.{i}.bias`, `hidden` widths between the inputs and one output
    /// logit; no hidden layer is logistic regression.
    Mlp {
        hidden: Vec<usize>,
        activation: Activation,
    },
    /// An ONNX graph (`file`, default `model.onnx`) taking one `[rows,
    /// inputs]` float tensor; needs a binary built with the `onnx` feature.
    Onnx {
        #[serde(default = "default_onnx_file")]
        file: String,
    },
}

fn default_onnx_file() -> String {
    "model.onnx".to_owned()
}

/// The network output that becomes the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The output's name (for ONNX, a graph output).
    #[serde(default = "default_output_name")]
    pub name: String,
    /// `logit`: the score is its sigmoid; `probability`: it is the score.
    #[serde(default)]
    pub kind: OutputKind,
    /// For a `[rows, classes]` output, the class column that is the score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

impl Default for OutputSpec {
    fn default() -> Self {
        Self {
            name: default_output_name(),
            kind: OutputKind::Logit,
            index: None,
        }
    }
}

impl OutputSpec {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn default_output_name() -> String {
    "logit".to_owned()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    #[default]
    Logit,
    Probability,
}

/// Floating-point precision of a model's weights and activations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    #[default]
    F32,
    F16,
    Bf16,
}

impl Precision {
    pub fn dtype(self) -> candle_core::DType {
        match self {
            Self::F32 => candle_core::DType::F32,
            Self::F16 => candle_core::DType::F16,
            Self::Bf16 => candle_core::DType::BF16,
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Tanh,
    Gelu,
    Sigmoid,
}

/// One scalar input of the model, computed from one or two columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    pub column: String,
    /// The Arrow type the model was trained on for `column`; when given, a
    /// job whose column has another type is refused at validate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<InputDType>,
    pub transform: Transform,
}

/// Column types a model input may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputDType {
    Float64,
    Float32,
    Int64,
    Int32,
    Bool,
    String,
}

impl InputDType {
    pub fn arrow(self) -> arrow::datatypes::DataType {
        use arrow::datatypes::DataType;
        match self {
            Self::Float64 => DataType::Float64,
            Self::Float32 => DataType::Float32,
            Self::Int64 => DataType::Int64,
            Self::Int32 => DataType::Int32,
            Self::Bool => DataType::Boolean,
            Self::String => DataType::Utf8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// `(x - mean) / std`; a missing value becomes 0, the training mean.
    Standard { mean: f64, std: f64 },
    /// `(ln(1 + max(x, 0)) - mean) / std`, for long-tailed amounts and counts.
    LogStandard { mean: f64, std: f64 },
    /// 1 when the string column equals `value`, else 0 (one-hot encoding).
    Equals { value: String },
    /// 1 when the string column equals the string column `other`, else 0.
    SameAs { other: String },
}

impl Transform {
    pub(crate) fn is_numeric(&self) -> bool {
        matches!(
            self,
            Transform::Standard { .. } | Transform::LogStandard { .. }
        )
    }
}

impl ModelManifest {
    /// Problems with the manifest on its own (weights are checked on load).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.inputs.is_empty() {
            p.push("declares no inputs".to_owned());
        }
        match &self.architecture {
            Architecture::Mlp { hidden, .. } => {
                if hidden.contains(&0) {
                    p.push("architecture.hidden: layer widths must be at least 1".to_owned());
                }
                if self.output.index.is_some() {
                    p.push("output.index: an MLP has one output logit".to_owned());
                }
            }
            Architecture::Onnx { file } => {
                if file.is_empty() || file.contains('/') || file.contains('\\') {
                    p.push(format!(
                        "architecture.file: `{file}` must be a file name in the package directory"
                    ));
                }
                if self.precisions.iter().any(|p| *p != Precision::F32) {
                    p.push(
                        "precisions: an ONNX graph runs in the types it was exported in".to_owned(),
                    );
                }
            }
        }
        for i in &self.inputs {
            if let Some(d) = i.dtype {
                let string = d == InputDType::String;
                if string == i.transform.is_numeric() {
                    p.push(format!(
                        "input `{}`: dtype {} does not fit a {} transform",
                        i.name,
                        d.arrow(),
                        if string { "numeric" } else { "string" }
                    ));
                }
            }
            if let Transform::Standard { std, .. } | Transform::LogStandard { std, .. } =
                i.transform
                && !(std.is_finite() && std > 0.0)
            {
                p.push(format!(
                    "input `{}`: std must be a positive number, got {std}",
                    i.name
                ));
            }
        }
        p
    }

    /// Widths of every layer's input and output: `[inputs, hidden..., 1]`.
    pub(crate) fn layer_widths(&self) -> Vec<usize> {
        let mut w = vec![self.inputs.len()];
        if let Architecture::Mlp { hidden, .. } = &self.architecture {
            w.extend(hidden);
        }
        w.push(1);
        w
    }
}
