//! The one vocabulary of column types a job file speaks: event fields,
//! feature columns and (with the formats issue) Avro/Protobuf reader views
//! all name their types from this enum, so a type means the same Arrow
//! type wherever it is written.

use std::fmt;

use arrow::datatypes::{DataType, TimeUnit};
use serde::Deserialize;

/// A column type as a job config spells it (`type = "float64"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    String,
    Int32,
    Int64,
    Float32,
    Float64,
    Bool,
    /// RFC 3339 text or epoch milliseconds; stored as UTC milliseconds.
    Timestamp,
}

impl ColumnType {
    /// Every type, timestamp last (features take all the others).
    pub const ALL: [ColumnType; 7] = [
        ColumnType::String,
        ColumnType::Int32,
        ColumnType::Int64,
        ColumnType::Float32,
        ColumnType::Float64,
        ColumnType::Bool,
        ColumnType::Timestamp,
    ];

    pub fn data_type(self) -> DataType {
        match self {
            ColumnType::String => DataType::Utf8,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float32 => DataType::Float32,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Timestamp => {
                DataType::Timestamp(TimeUnit::Millisecond, Some(crate::UTC.into()))
            }
        }
    }

    /// The type whose Arrow type is `t`, if a job can declare it.
    pub fn of(t: &DataType) -> Option<Self> {
        Self::ALL.into_iter().find(|c| &c.data_type() == t)
    }

    /// The name a job file uses.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Int32 => "int32",
            ColumnType::Int64 => "int64",
            ColumnType::Float32 => "float32",
            ColumnType::Float64 => "float64",
            ColumnType::Bool => "bool",
            ColumnType::Timestamp => "timestamp",
        }
    }

    /// The names of `types`, for an error that lists what is accepted.
    pub fn names(types: &[ColumnType]) -> String {
        types
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_arrow() {
        #[derive(Deserialize)]
        struct T {
            t: ColumnType,
        }
        for c in ColumnType::ALL {
            let parsed: T = toml::from_str(&format!("t = \"{}\"", c.name())).expect("parses");
            assert_eq!(parsed.t, c);
            assert_eq!(ColumnType::of(&c.data_type()), Some(c));
        }
        assert_eq!(ColumnType::of(&DataType::LargeUtf8), None);
        assert!(toml::from_str::<T>("t = \"float\"").is_err());
    }
}
