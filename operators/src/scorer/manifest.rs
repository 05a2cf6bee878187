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
    pub transform: Transform,
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
    pub fn is_numeric(&self) -> bool {
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
        let Architecture::Mlp { hidden, .. } = &self.architecture;
        if hidden.contains(&0) {
            p.push("architecture.hidden: layer widths must be at least 1".to_owned());
        }
        for i in &self.inputs {
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
    pub fn layer_widths(&self) -> Vec<usize> {
        let Architecture::Mlp { hidden, .. } = &self.architecture;
        let mut w = vec![self.inputs.len()];
        w.extend(hidden);
        w.push(1);
        w
    }
}
