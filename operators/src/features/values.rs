//! Feature values as a networked store returns them, one entity at a time,
//! and their assembly into Arrow columns aligned with a batch's keys.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder,
};
use scorestream_schemas::ColumnType;
use toml_value::Scalar;

/// Scalars as TOML gives them, for feature defaults.
pub mod toml_value {
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(untagged)]
    pub enum Scalar {
        Bool(bool),
        Int(i64),
        Float(f64),
        String(String),
    }
}

/// One feature's value.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureValue {
    Float64(f64),
    Float32(f32),
    Int64(i64),
    Int32(i32),
    String(Arc<str>),
    Bool(bool),
}

impl FeatureValue {
    /// A configured default, checked against the feature's type.
    pub(crate) fn from_default(d: &Scalar, t: ColumnType) -> Result<Self, String> {
        let wrong = || format!("{d:?} is not a valid {t:?} value");
        Ok(match (t, d) {
            (ColumnType::Float64, Scalar::Float(f)) => Self::Float64(*f),
            (ColumnType::Float64, Scalar::Int(i)) => Self::Float64(*i as f64),
            (ColumnType::Float32, Scalar::Float(f)) => Self::Float32(*f as f32),
            (ColumnType::Float32, Scalar::Int(i)) => Self::Float32(*i as f32),
            (ColumnType::Int64, Scalar::Int(i)) => Self::Int64(*i),
            (ColumnType::Int32, Scalar::Int(i)) => {
                Self::Int32(i32::try_from(*i).map_err(|_| wrong())?)
            }
            (ColumnType::String, Scalar::String(s)) => Self::String(s.as_str().into()),
            (ColumnType::Bool, Scalar::Bool(b)) => Self::Bool(*b),
            _ => return Err(wrong()),
        })
    }

    /// Parses the text a plain Redis hash holds.
    pub fn parse(text: &str, t: ColumnType) -> Result<Self, String> {
        let s = text.trim();
        let bad = |e: &dyn std::fmt::Display| format!("`{text}` is not a {t:?}: {e}");
        Ok(match t {
            ColumnType::Float64 => Self::Float64(s.parse().map_err(|e| bad(&e))?),
            ColumnType::Float32 => Self::Float32(s.parse().map_err(|e| bad(&e))?),
            ColumnType::Int64 => Self::Int64(s.parse().map_err(|e| bad(&e))?),
            ColumnType::Int32 => Self::Int32(s.parse().map_err(|e| bad(&e))?),
            ColumnType::String => Self::String(text.into()),
            ColumnType::Bool => Self::Bool(match s.to_ascii_lowercase().as_str() {
                "1" | "true" | "t" | "yes" => true,
                "0" | "false" | "f" | "no" => false,
                _ => return Err(bad(&"expected true/false or 1/0")),
            }),
            ColumnType::Timestamp => return Err(bad(&"timestamp is not a feature type")),
        })
    }

    /// The value converted to `t`, where no precision or meaning is lost
    /// (Feast may store an int32 feature as int64, a float as double).
    pub(crate) fn coerce(self, t: ColumnType) -> Option<Self> {
        use FeatureValue as V;
        Some(match (self, t) {
            (v @ V::Float64(_), ColumnType::Float64) => v,
            (V::Float32(f), ColumnType::Float64) => V::Float64(f as f64),
            (V::Int64(i), ColumnType::Float64) => V::Float64(i as f64),
            (V::Int32(i), ColumnType::Float64) => V::Float64(i as f64),
            (v @ V::Float32(_), ColumnType::Float32) => v,
            (V::Float64(f), ColumnType::Float32) => V::Float32(f as f32),
            (v @ V::Int64(_), ColumnType::Int64) => v,
            (V::Int32(i), ColumnType::Int64) => V::Int64(i as i64),
            (v @ V::Int32(_), ColumnType::Int32) => v,
            (V::Int64(i), ColumnType::Int32) => V::Int32(i32::try_from(i).ok()?),
            (v @ V::String(_), ColumnType::String) => v,
            (v @ V::Bool(_), ColumnType::Bool) => v,
            _ => return None,
        })
    }
}

/// A feature's configured default as a one-row column of its type, checked
/// once when the join is built.
pub(super) fn default_column(
    f: &arrow::datatypes::Field,
    default: Option<&FeatureValue>,
) -> Result<Option<ArrayRef>, String> {
    let Some(v) = default else {
        return Ok(None);
    };
    let t = ColumnType::of(f.data_type()).ok_or_else(|| {
        format!(
            "feature `{}` has type {} which takes no default",
            f.name(),
            f.data_type()
        )
    })?;
    let v = v.clone().coerce(t).ok_or_else(|| {
        format!(
            "the default of feature `{}` does not fit its type {t:?}",
            f.name()
        )
    })?;
    let mut b = ColumnBuilder::new(t, 1);
    b.push(Some(&v));
    Ok(Some(b.finish()))
}

/// Builds one feature column of a batch, row by row.
pub(super) enum ColumnBuilder {
    Float64(Float64Builder),
    Float32(Float32Builder),
    Int64(Int64Builder),
    Int32(Int32Builder),
    String(StringBuilder),
    Bool(BooleanBuilder),
}

impl ColumnBuilder {
    pub(super) fn new(t: ColumnType, rows: usize) -> Self {
        match t {
            ColumnType::Float64 => Self::Float64(Float64Builder::with_capacity(rows)),
            ColumnType::Float32 => Self::Float32(Float32Builder::with_capacity(rows)),
            ColumnType::Int64 => Self::Int64(Int64Builder::with_capacity(rows)),
            ColumnType::Int32 => Self::Int32(Int32Builder::with_capacity(rows)),
            ColumnType::String => Self::String(StringBuilder::with_capacity(rows, rows * 8)),
            ColumnType::Bool => Self::Bool(BooleanBuilder::with_capacity(rows)),
            // Refused by the features config check; an int64 column here
            // would fail the batch's schema check rather than pass unseen.
            ColumnType::Timestamp => Self::Int64(Int64Builder::with_capacity(rows)),
        }
    }

    /// Appends `v`, or a null when it is absent or (a bug upstream) of
    /// another type.
    pub(super) fn push(&mut self, v: Option<&FeatureValue>) {
        use FeatureValue as V;
        match (self, v) {
            (Self::Float64(b), Some(V::Float64(x))) => b.append_value(*x),
            (Self::Float32(b), Some(V::Float32(x))) => b.append_value(*x),
            (Self::Int64(b), Some(V::Int64(x))) => b.append_value(*x),
            (Self::Int32(b), Some(V::Int32(x))) => b.append_value(*x),
            (Self::String(b), Some(V::String(x))) => b.append_value(x),
            (Self::Bool(b), Some(V::Bool(x))) => b.append_value(*x),
            (Self::Float64(b), _) => b.append_null(),
            (Self::Float32(b), _) => b.append_null(),
            (Self::Int64(b), _) => b.append_null(),
            (Self::Int32(b), _) => b.append_null(),
            (Self::String(b), _) => b.append_null(),
            (Self::Bool(b), _) => b.append_null(),
        }
    }

    pub(super) fn finish(self) -> ArrayRef {
        match self {
            Self::Float64(mut b) => Arc::new(b.finish()),
            Self::Float32(mut b) => Arc::new(b.finish()),
            Self::Int64(mut b) => Arc::new(b.finish()),
            Self::Int32(mut b) => Arc::new(b.finish()),
            Self::String(mut b) => Arc::new(b.finish()),
            Self::Bool(mut b) => Arc::new(b.finish()),
        }
    }
}

/// What a store knows about one entity: a value and a write time (epoch ms)
/// per requested feature, `None` where it has none.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EntityFeatures {
    pub values: Vec<Option<FeatureValue>>,
    pub written_at_ms: Vec<Option<i64>>,
}
