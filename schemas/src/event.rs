use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

use crate::SchemaError;
use crate::output::is_reserved;

/// The type of one declared event field, as a job config spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Int64,
    Float64,
    Bool,
    /// RFC 3339 text or epoch milliseconds; stored as UTC milliseconds.
    Timestamp,
}

impl FieldType {
    pub fn data_type(self) -> DataType {
        match self {
            FieldType::String => DataType::Utf8,
            FieldType::Int64 => DataType::Int64,
            FieldType::Float64 => DataType::Float64,
            FieldType::Bool => DataType::Boolean,
            FieldType::Timestamp => {
                DataType::Timestamp(TimeUnit::Millisecond, Some(crate::UTC.into()))
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int64 => "int64",
            FieldType::Float64 => "float64",
            FieldType::Bool => "bool",
            FieldType::Timestamp => "timestamp",
        }
    }
}

/// One field of the events a job consumes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// A required field that is absent or null makes the event a dead letter.
    #[serde(default)]
    pub required: bool,
}

/// The declared shape of a job's events. Checked once when the job is built,
/// so the hot path never re-validates names or types.
#[derive(Debug, Clone)]
pub struct EventSchema {
    fields: Vec<FieldSpec>,
    arrow: SchemaRef,
}

impl EventSchema {
    pub fn try_new(fields: Vec<FieldSpec>) -> Result<Self, SchemaError> {
        if fields.is_empty() {
            return Err(SchemaError::Empty);
        }
        let mut seen = HashSet::new();
        for f in &fields {
            if !seen.insert(f.name.as_str()) {
                return Err(SchemaError::DuplicateField(f.name.clone()));
            }
            if is_reserved(&f.name) {
                return Err(SchemaError::ReservedField(f.name.clone()));
            }
        }
        let arrow = Arc::new(Schema::new(
            fields
                .iter()
                .map(|f| Field::new(&f.name, f.field_type.data_type(), !f.required))
                .collect::<Vec<_>>(),
        ));
        Ok(Self { fields, arrow })
    }

    pub fn fields(&self) -> &[FieldSpec] {
        &self.fields
    }

    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The Arrow schema decoded events are checked against.
    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.arrow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, t: FieldType, required: bool) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            field_type: t,
            required,
        }
    }

    #[test]
    fn required_fields_are_not_nullable() {
        let s = EventSchema::try_new(vec![
            spec("event_id", FieldType::String, true),
            spec("amount", FieldType::Float64, false),
        ])
        .expect("valid schema");
        let a = s.arrow_schema();
        assert!(!a.field(0).is_nullable());
        assert!(a.field(1).is_nullable());
        assert_eq!(a.field(1).data_type(), &DataType::Float64);
    }

    #[test]
    fn duplicate_and_reserved_names_are_rejected() {
        let dup = EventSchema::try_new(vec![
            spec("a", FieldType::String, true),
            spec("a", FieldType::Int64, false),
        ]);
        assert!(matches!(dup, Err(SchemaError::DuplicateField(n)) if n == "a"));
        let reserved = EventSchema::try_new(vec![spec("score", FieldType::Float64, false)]);
        assert!(matches!(reserved, Err(SchemaError::ReservedField(n)) if n == "score"));
        assert!(matches!(
            EventSchema::try_new(vec![]),
            Err(SchemaError::Empty)
        ));
    }

    #[test]
    fn unknown_type_error_lists_valid_types() {
        let err = toml::from_str::<FieldSpec>("name = \"x\"\ntype = \"float\"")
            .expect_err("float is not a type");
        let msg = err.to_string();
        for t in ["string", "int64", "float64", "bool", "timestamp"] {
            assert!(msg.contains(t), "{msg} should list {t}");
        }
    }
}
