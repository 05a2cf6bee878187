//! Feature values as a networked store returns them, one entity at a time,
//! and their assembly into Arrow columns aligned with a batch's keys.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder,
};
use arrow::datatypes::DataType;
use serde::Deserialize;
use toml_value::Scalar;

/// Feature value types, named as in Feast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureType {
    Float64,
    Float32,
    Int64,
    Int32,
    String,
    Bool,
}

impl FeatureType {
    pub fn data_type(self) -> DataType {
        match self {
            FeatureType::Float64 => DataType::Float64,
            FeatureType::Float32 => DataType::Float32,
            FeatureType::Int64 => DataType::Int64,
            FeatureType::Int32 => DataType::Int32,
            FeatureType::String => DataType::Utf8,
            FeatureType::Bool => DataType::Boolean,
        }
    }

    pub fn of(t: &DataType) -> Option<Self> {
        Some(match t {
            DataType::Float64 => FeatureType::Float64,
            DataType::Float32 => FeatureType::Float32,
            DataType::Int64 => FeatureType::Int64,
            DataType::Int32 => FeatureType::Int32,
            DataType::Utf8 => FeatureType::String,
            DataType::Boolean => FeatureType::Bool,
            _ => return None,
        })
    }
}

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
    pub fn from_default(d: &Scalar, t: FeatureType) -> Result<Self, String> {
        let wrong = || format!("{d:?} is not a valid {t:?} value");
        Ok(match (t, d) {
            (FeatureType::Float64, Scalar::Float(f)) => Self::Float64(*f),
            (FeatureType::Float64, Scalar::Int(i)) => Self::Float64(*i as f64),
            (FeatureType::Float32, Scalar::Float(f)) => Self::Float32(*f as f32),
            (FeatureType::Float32, Scalar::Int(i)) => Self::Float32(*i as f32),
            (FeatureType::Int64, Scalar::Int(i)) => Self::Int64(*i),
            (FeatureType::Int32, Scalar::Int(i)) => {
                Self::Int32(i32::try_from(*i).map_err(|_| wrong())?)
            }
            (FeatureType::String, Scalar::String(s)) => Self::String(s.as_str().into()),
            (FeatureType::Bool, Scalar::Bool(b)) => Self::Bool(*b),
            _ => return Err(wrong()),
        })
    }

    /// Parses the text a plain Redis hash holds.
    pub fn parse(text: &str, t: FeatureType) -> Result<Self, String> {
        let s = text.trim();
        let bad = |e: &dyn std::fmt::Display| format!("`{text}` is not a {t:?}: {e}");
        Ok(match t {
            FeatureType::Float64 => Self::Float64(s.parse().map_err(|e| bad(&e))?),
            FeatureType::Float32 => Self::Float32(s.parse().map_err(|e| bad(&e))?),
            FeatureType::Int64 => Self::Int64(s.parse().map_err(|e| bad(&e))?),
            FeatureType::Int32 => Self::Int32(s.parse().map_err(|e| bad(&e))?),
            FeatureType::String => Self::String(text.into()),
            FeatureType::Bool => Self::Bool(match s.to_ascii_lowercase().as_str() {
                "1" | "true" | "t" | "yes" => true,
                "0" | "false" | "f" | "no" => false,
                _ => return Err(bad(&"expected true/false or 1/0")),
            }),
        })
    }

    /// The value converted to `t`, where no precision or meaning is lost
    /// (Feast may store an int32 feature as int64, a float as double).
    pub fn coerce(self, t: FeatureType) -> Option<Self> {
        use FeatureValue as V;
        Some(match (self, t) {
            (v @ V::Float64(_), FeatureType::Float64) => v,
            (V::Float32(f), FeatureType::Float64) => V::Float64(f as f64),
            (V::Int64(i), FeatureType::Float64) => V::Float64(i as f64),
            (V::Int32(i), FeatureType::Float64) => V::Float64(i as f64),
            (v @ V::Float32(_), FeatureType::Float32) => v,
            (V::Float64(f), FeatureType::Float32) => V::Float32(f as f32),
            (v @ V::Int64(_), FeatureType::Int64) => v,
            (V::Int32(i), FeatureType::Int64) => V::Int64(i as i64),
            (v @ V::Int32(_), FeatureType::Int32) => v,
            (V::Int64(i), FeatureType::Int32) => V::Int32(i32::try_from(i).ok()?),
            (v @ V::String(_), FeatureType::String) => v,
            (v @ V::Bool(_), FeatureType::Bool) => v,
            _ => return None,
        })
    }
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
    pub(super) fn new(t: FeatureType, rows: usize) -> Self {
        match t {
            FeatureType::Float64 => Self::Float64(Float64Builder::with_capacity(rows)),
            FeatureType::Float32 => Self::Float32(Float32Builder::with_capacity(rows)),
            FeatureType::Int64 => Self::Int64(Int64Builder::with_capacity(rows)),
            FeatureType::Int32 => Self::Int32(Int32Builder::with_capacity(rows)),
            FeatureType::String => Self::String(StringBuilder::with_capacity(rows, rows * 8)),
            FeatureType::Bool => Self::Bool(BooleanBuilder::with_capacity(rows)),
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
