use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::cast;
use arrow::compute::kernels::cmp::eq;
use arrow::datatypes::ArrowNativeType;
use arrow::datatypes::{DataType, Float64Type, Schema};
use candle_core::{Device, Tensor};

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

/// The `equals` inputs that read one string column: a one-hot encoding is
/// several of them over the same column, and one pass serves them all.
#[derive(Debug, Clone)]
struct OneHot {
    col: usize,
    values: Vec<Wanted>,
}

/// One `equals` value and the input's position in the slab.
#[derive(Debug, Clone)]
struct Wanted {
    bytes: Box<[u8]>,
    /// The value as two words, when it has at most 16 bytes (see [`packed`]).
    packed: Option<(u64, u64)>,
    input: usize,
}

/// Turns a batch into the model's `[rows, inputs]` f32 input.
///
/// Column lookups and type checks happen once, in [`InputMatrix::bind`]; per
/// batch the work is one pass per input column over Arrow buffers.
#[derive(Debug, Clone)]
pub struct InputMatrix {
    inputs: Vec<Resolved>,
    one_hot: Vec<OneHot>,
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
            if let (Some(d), Ok((_, t))) = (s.dtype, col(s, &s.column))
                && t != d.arrow()
            {
                errors.push(err(
                    s,
                    format!(
                        "the model declares dtype {} for column `{}`, but the job's column is {t}",
                        d.arrow(),
                        s.column
                    ),
                ));
                continue;
            }
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
            let one_hot = one_hot_groups(&inputs);
            Ok(Self { inputs, one_hot })
        } else {
            Err(errors)
        }
    }

    pub fn width(&self) -> usize {
        self.inputs.len()
    }

    /// The batch as one contiguous, column-major `[inputs, rows]` f32 slab:
    /// input `j`'s values are `out[j * rows..(j + 1) * rows]`.
    ///
    /// Each input is one Arrow kernel (cast or comparison) and one tight
    /// pass over its values slice that the compiler vectorises; nulls and
    /// string matches are applied by runs of the validity or match bitmap.
    /// Nothing is done row by row, and no row is ever assembled.
    pub fn build(&self, batch: &RecordBatch) -> Result<Vec<f32>> {
        let rows = batch.num_rows();
        let mut out = vec![0f32; rows * self.inputs.len()];
        if rows == 0 {
            return Ok(out);
        }
        for (input, dst) in self.inputs.iter().zip(out.chunks_exact_mut(rows)) {
            match input {
                Resolved::Numeric {
                    col,
                    log,
                    mean,
                    inv_std,
                } => {
                    let values = cast(batch.column(*col), &DataType::Float64)?;
                    let values = values.as_primitive::<Float64Type>();
                    let (mean, inv_std) = (*mean, *inv_std);
                    let src = values.values();
                    if *log {
                        for (d, &v) in dst.iter_mut().zip(src.iter()) {
                            *d = ((v.max(0.0)).ln_1p() as f32 - mean) * inv_std;
                        }
                    } else {
                        for (d, &v) in dst.iter_mut().zip(src.iter()) {
                            *d = (v as f32 - mean) * inv_std;
                        }
                    }
                    // Missing values take the training mean: 0 after standardising.
                    if let Some(nulls) = values.nulls().filter(|n| n.null_count() > 0) {
                        let mut next = 0;
                        for (start, end) in nulls.inner().set_slices() {
                            dst[next..start].fill(0.0);
                            next = end;
                        }
                        dst[next..].fill(0.0);
                    }
                }
                // Filled below, a column at a time.
                Resolved::Equals { .. } => {}
                Resolved::SameAs { col, other } => {
                    let matches = eq(batch.column(*col), batch.column(*other))?;
                    ones_where(&matches, dst);
                }
            }
        }
        for group in &self.one_hot {
            one_hot(batch.column(group.col), &group.values, &mut out, rows)?;
        }
        Ok(out)
    }

    /// The batch as the model's `[rows, inputs]` input on `device`: one
    /// host-to-device copy of the column-major slab, used through a
    /// transposed view (matrix multiplication reads either layout).
    pub fn tensor(&self, batch: &RecordBatch, device: &Device) -> Result<Tensor> {
        let x = self.build(batch)?;
        Ok(Tensor::from_vec(x, (self.width(), batch.num_rows()), device)?.t()?)
    }
}

/// The `equals` inputs grouped by column, in the order columns first appear.
fn one_hot_groups(inputs: &[Resolved]) -> Vec<OneHot> {
    let mut groups: Vec<OneHot> = Vec::new();
    for (j, input) in inputs.iter().enumerate() {
        if let Resolved::Equals { col, value } = input {
            let wanted = Wanted {
                bytes: value.as_bytes().into(),
                packed: packed(value.as_bytes()),
                input: j,
            };
            match groups.iter_mut().find(|g| g.col == *col) {
                Some(g) => g.values.push(wanted),
                None => groups.push(OneHot {
                    col: *col,
                    values: vec![wanted],
                }),
            }
        }
    }
    groups
}

/// A string of at most 16 bytes as its first and last 8 bytes (zero-padded,
/// the second word 0 up to 8 bytes). With the length, equal words mean
/// equal strings.
fn packed(bytes: &[u8]) -> Option<(u64, u64)> {
    let len = bytes.len();
    if len > 16 {
        return None;
    }
    let mut head = [0u8; 8];
    let mut tail = [0u8; 8];
    let h = len.min(8);
    head[..h].copy_from_slice(&bytes[..h]);
    if len > 8 {
        tail.copy_from_slice(&bytes[len - 8..]);
    }
    Some((u64::from_le_bytes(head), u64::from_le_bytes(tail)))
}

/// Sets `out[input * rows + row]` to 1.0 where the column's value at `row`
/// is the wanted one, for each wanted value; nulls match nothing.
///
/// Arrow's `eq` kernel per input cost a pass, a boolean array and a
/// `memcmp` call per row for each of a one-hot's values: with the demo's
/// ten (and its one `same_as`), 2.6% of the whole job's CPU under `perf`.
/// Here each row is read once, packed into two words, and matched by
/// integer compares.
fn one_hot(column: &ArrayRef, values: &[Wanted], out: &mut [f32], rows: usize) -> Result<()> {
    let column = column.as_string_opt::<i32>().ok_or_else(|| {
        OperatorError::Internal(format!(
            "a one-hot input's column is {}, bound as Utf8",
            column.data_type()
        ))
    })?;
    let offsets = column.value_offsets();
    let data = column.value_data();
    let nulls = column.nulls().filter(|n| n.null_count() > 0);
    for (row, w) in offsets.windows(2).enumerate().take(rows) {
        if nulls.is_some_and(|n| n.is_null(row)) {
            continue;
        }
        let Some(bytes) = data.get(w[0].as_usize()..w[1].as_usize()) else {
            continue;
        };
        let row_packed = packed(bytes);
        for v in values {
            let hit = match (row_packed, v.packed) {
                (Some(r), Some(p)) => r == p && bytes.len() == v.bytes.len(),
                (None, None) => *bytes == *v.bytes,
                _ => false,
            };
            if hit {
                out[v.input * rows + row] = 1.0;
            }
        }
    }
    Ok(())
}

/// 1.0 where `matches` is true and not null (the slab starts at 0).
fn ones_where(matches: &BooleanArray, dst: &mut [f32]) {
    let hits = match matches.nulls() {
        Some(valid) => matches.values() & valid.inner(),
        None => matches.values().clone(),
    };
    for (start, end) in hits.set_slices() {
        dst[start..end].fill(1.0);
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
