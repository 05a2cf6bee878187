use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Schema};

use super::{InputSpec, Transform};
use crate::{OperatorError, Result};

/// How one input column is computed, with column indices resolved once.
#[derive(Debug, Clone)]
enum Resolved {
    Numeric {
        col: usize,
        log: bool,
        mean: f32,
        inv_std: f32,
    },
    Equals {
        col: usize,
        value: String,
    },
    SameAs {
        col: usize,
        other: usize,
    },
}

/// Turns a batch into the model's row-major `[rows, inputs]` f32 matrix.
///
/// Column lookups and type checks happen once, in [`InputMatrix::bind`]; per
/// batch the work is one pass per input column over Arrow buffers.
#[derive(Debug, Clone)]
pub struct InputMatrix {
    inputs: Vec<Resolved>,
}

impl InputMatrix {
    /// Resolves every input against the schema. Reports every problem, each
    /// naming its input.
    pub fn bind(specs: &[InputSpec], schema: &Schema) -> Result<Self, Vec<OperatorError>> {
        let mut inputs = Vec::with_capacity(specs.len());
        let mut errors = Vec::new();
        let err = |s: &InputSpec, reason: String| OperatorError::ModelInput {
            input: s.name.clone(),
            reason,
        };
        let col = |s: &InputSpec, name: &str| -> Result<(usize, DataType), OperatorError> {
            schema
                .index_of(name)
                .map(|i| (i, schema.field(i).data_type().clone()))
                .map_err(|_| {
                    err(
                        s,
                        format!("column `{name}` is neither an event field nor a feature"),
                    )
                })
        };
        for s in specs {
            let resolved = match &s.transform {
                Transform::Standard { mean, std } | Transform::LogStandard { mean, std } => {
                    col(s, &s.column).and_then(|(c, t)| {
                        if t.is_numeric() || t == DataType::Boolean {
                            Ok(Resolved::Numeric {
                                col: c,
                                log: matches!(s.transform, Transform::LogStandard { .. }),
                                mean: *mean as f32,
                                inv_std: (1.0 / std) as f32,
                            })
                        } else {
                            Err(err(
                                s,
                                format!(
                                    "column `{}` is {t}, a numeric transform needs a number",
                                    s.column
                                ),
                            ))
                        }
                    })
                }
                Transform::Equals { value } => col(s, &s.column).and_then(|(c, t)| {
                    expect_string(s, &s.column, &t)?;
                    Ok(Resolved::Equals {
                        col: c,
                        value: value.clone(),
                    })
                }),
                Transform::SameAs { other } => col(s, &s.column).and_then(|(c, t)| {
                    expect_string(s, &s.column, &t)?;
                    let (o, ot) = col(s, other)?;
                    expect_string(s, other, &ot)?;
                    Ok(Resolved::SameAs { col: c, other: o })
                }),
            };
            match resolved {
                Ok(r) => inputs.push(r),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Self { inputs })
        } else {
            Err(errors)
        }
    }

    pub fn width(&self) -> usize {
        self.inputs.len()
    }

    /// The row-major matrix for `batch` (bound schema assumed; checked once).
    pub fn build(&self, batch: &RecordBatch) -> Result<Vec<f32>> {
        let rows = batch.num_rows();
        let width = self.inputs.len();
        let mut out = vec![0f32; rows * width];
        for (j, input) in self.inputs.iter().enumerate() {
            match input {
                Resolved::Numeric {
                    col,
                    log,
                    mean,
                    inv_std,
                } => {
                    let values = cast(batch.column(*col), &DataType::Float64)?;
                    let values = values.as_primitive::<Float64Type>();
                    for (i, v) in values.iter().enumerate() {
                        // Missing values take the training mean: 0 after standardising.
                        out[i * width + j] = match v {
                            Some(v) => {
                                let x = if *log {
                                    (v.max(0.0)).ln_1p() as f32
                                } else {
                                    v as f32
                                };
                                (x - mean) * inv_std
                            }
                            None => 0.0,
                        };
                    }
                }
                Resolved::Equals { col, value } => {
                    let s = batch.column(*col).as_string::<i32>();
                    for (i, v) in s.iter().enumerate() {
                        out[i * width + j] = f32::from(v == Some(value.as_str()));
                    }
                }
                Resolved::SameAs { col, other } => {
                    let a: &StringArray = batch.column(*col).as_string::<i32>();
                    let b: &StringArray = batch.column(*other).as_string::<i32>();
                    for i in 0..rows {
                        let same = a.is_valid(i) && b.is_valid(i) && a.value(i) == b.value(i);
                        out[i * width + j] = f32::from(same);
                    }
                }
            }
        }
        Ok(out)
    }
}

fn expect_string(s: &InputSpec, column: &str, t: &DataType) -> Result<(), OperatorError> {
    if t == &DataType::Utf8 {
        Ok(())
    } else {
        Err(OperatorError::ModelInput {
            input: s.name.clone(),
            reason: format!("column `{column}` is {t}, a string comparison needs a string column"),
        })
    }
}
