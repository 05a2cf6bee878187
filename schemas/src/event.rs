use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use serde::Deserialize;

use crate::output::is_reserved;
use crate::{ColumnType, SchemaError};

/// The types an event field may have. The narrower int32/float32 are
/// feature types: JSON numbers carry no width, so an event field declares the
/// wide type and a model input cast narrows it.
pub const EVENT_TYPES: [ColumnType; 5] = [
    ColumnType::String,
    ColumnType::Int64,
    ColumnType::Float64,
    ColumnType::Bool,
    ColumnType::Timestamp,
];

/// One field of the events a job consumes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: ColumnType,
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
            if !EVENT_TYPES.contains(&f.field_type) {
                return Err(SchemaError::UnsupportedType {
                    field: f.name.clone(),
                    found: f.field_type,
                    accepted: ColumnType::names(&EVENT_TYPES),
                });
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
    use arrow::datatypes::DataType;

    fn spec(name: &str, t: ColumnType, required: bool) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            field_type: t,
            required,
        }
    }

    #[test]
    fn required_fields_are_not_nullable() {
        let s = EventSchema::try_new(vec![
            spec("event_id", ColumnType::String, true),
            spec("amount", ColumnType::Float64, false),
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
            spec("a", ColumnType::String, true),
            spec("a", ColumnType::Int64, false),
        ]);
        assert!(matches!(dup, Err(SchemaError::DuplicateField(n)) if n == "a"));
        let reserved = EventSchema::try_new(vec![spec("score", ColumnType::Float64, false)]);
        assert!(matches!(reserved, Err(SchemaError::ReservedField(n)) if n == "score"));
        let narrow = EventSchema::try_new(vec![spec("n", ColumnType::Int32, false)]);
        let Err(e) = narrow else {
            panic!("an int32 event field was accepted")
        };
        assert_eq!(
            e.to_string(),
            "field `n` has type int32; event fields take string, int64, float64, bool, timestamp"
        );
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
