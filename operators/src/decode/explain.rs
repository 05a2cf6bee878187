//! A readable reason for a message arrow-json rejected. Runs only for the
//! rare rejected message, so it can afford a full `serde_json::Value` parse.

use scorestream_schemas::{ColumnType, EventSchema, ReasonCode};
use serde_json::Value;

/// The reason's code (a missing field outranks a wrong type) and its words.
pub(super) fn explain(payload: &[u8], schema: &EventSchema) -> Option<(ReasonCode, String)> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let Value::Object(map) = value else {
        return Some((
            ReasonCode::NotAnObject,
            format!("expected a JSON object, found {}", kind(&value)),
        ));
    };
    let mut missing = false;
    let mut problems = Vec::new();
    for f in schema.fields() {
        match map.get(&f.name) {
            None | Some(Value::Null) if f.required => {
                missing = true;
                problems.push(format!("missing required field `{}`", f.name));
            }
            None | Some(Value::Null) => {}
            Some(v) if !fits(v, f.field_type) => problems.push(format!(
                "field `{}`: expected {}, found {} {}",
                f.name,
                f.field_type.name(),
                kind(v),
                truncate(&v.to_string(), 40)
            )),
            Some(_) => {}
        }
    }
    let code = match missing {
        true => ReasonCode::MissingField,
        false => ReasonCode::WrongType,
    };
    (!problems.is_empty()).then(|| (code, problems.join("; ")))
}

fn fits(v: &Value, t: ColumnType) -> bool {
    match (t, v) {
        (ColumnType::String, Value::String(_)) => true,
        (ColumnType::Bool, Value::Bool(_)) => true,
        (ColumnType::Int64, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (ColumnType::Float64, Value::Number(_)) => true,
        (ColumnType::Int64 | ColumnType::Float64, Value::String(s)) => {
            s.trim().parse::<f64>().is_ok()
        }
        (ColumnType::Timestamp, Value::Number(n)) => n.is_i64(),
        (ColumnType::Timestamp, Value::String(s)) => {
            arrow::compute::kernels::cast_utils::string_to_datetime(&chrono::Utc, s).is_ok()
        }
        _ => false,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
