//! A one-pass, allocation-free check that a message fits the event schema:
//! the slow path for the messages the scanner ([`super::scan`]) gives up
//! on. It decides whether a message is a dead letter and which stage
//! refused it (its serde errors word broken JSON); arrow-json then decodes
//! what it lets through, and anything arrow-json still refuses becomes a
//! dead letter too, so this check only has to be no stricter than
//! arrow-json, not exact.

use std::fmt;

use scorestream_schemas::{ColumnType, FieldSpec};
use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

/// Why [`fits`] refused a message; the caller words the reason.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Misfit {
    /// Not valid JSON at all.
    Syntax(String),
    /// Valid JSON of the wrong shape: not an object, a value of the wrong
    /// type, or a required field absent.
    Schema,
}

/// Whether `payload` is one JSON object whose declared fields have values
/// arrow-json will accept. `seen` is scratch space reused across messages.
pub(super) fn fits(
    payload: &[u8],
    fields: &[FieldSpec],
    seen: &mut Vec<bool>,
) -> Result<(), Misfit> {
    seen.clear();
    seen.resize(fields.len(), false);
    let mut de = serde_json::Deserializer::from_slice(payload);
    let object = de.deserialize_any(ObjectCheck { fields, seen });
    let object = object.and_then(|ok| de.end().map(|()| ok));
    match object {
        Ok(true) => {}
        Ok(false) => return Err(Misfit::Schema),
        // A type error stops serde early; tell it apart from broken JSON.
        Err(e) if e.is_data() => return Err(Misfit::Schema),
        Err(e) => return Err(Misfit::Syntax(e.to_string())),
    }
    let complete = fields
        .iter()
        .zip(seen.iter())
        .all(|(f, &seen)| seen || !f.required);
    if complete {
        Ok(())
    } else {
        Err(Misfit::Schema)
    }
}

/// Visits the top-level value: `true` for an object whose fields fit.
struct ObjectCheck<'a> {
    fields: &'a [FieldSpec],
    seen: &'a mut Vec<bool>,
}

impl<'de> Visitor<'de> for ObjectCheck<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        // Fields usually arrive in declaration order: try the next one first.
        let mut hint = 0;
        while let Some(idx) = map.next_key_seed(FieldIndex {
            fields: self.fields,
            hint,
        })? {
            match idx {
                Some(i) => {
                    hint = i + 1;
                    let f = &self.fields[i];
                    // A duplicate key: arrow-json keeps one; either way the
                    // value is checked.
                    self.seen[i] = map.next_value_seed(ValueCheck {
                        field_type: f.field_type,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(true)
    }

    // Anything but an object: valid JSON, wrong shape. The value is consumed
    // so serde can still tell a syntax error apart.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

/// Resolves a key to its field index without allocating.
struct FieldIndex<'a> {
    fields: &'a [FieldSpec],
    hint: usize,
}

impl<'de> DeserializeSeed<'de> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        if self.fields.get(self.hint).is_some_and(|f| f.name == key) {
            return Ok(Some(self.hint));
        }
        Ok(self.fields.iter().position(|f| f.name == key))
    }
}

/// Checks one value against its field's type: `true` when present and
/// non-null, an error when it cannot be decoded as that type.
struct ValueCheck {
    field_type: ColumnType,
}

impl<'de> DeserializeSeed<'de> for ValueCheck {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueCheck {
    fn wrong<E: de::Error>(&self, found: &str) -> E {
        E::custom(format_args!(
            "expected {}, found {found}",
            self.field_type.name()
        ))
    }
}

impl<'de> Visitor<'de> for ValueCheck {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a {}", self.field_type.name())
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        // null: absent, which only a required field minds.
        Ok(false)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        match self.field_type {
            ColumnType::Bool => Ok(true),
            _ => Err(self.wrong("a boolean")),
        }
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        match self.field_type {
            ColumnType::Int64 | ColumnType::Float64 | ColumnType::Timestamp => Ok(true),
            _ => Err(self.wrong("a number")),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        match self.field_type {
            ColumnType::Int64 | ColumnType::Timestamp if i64::try_from(v).is_ok() => Ok(true),
            ColumnType::Float64 => Ok(true),
            _ => Err(self.wrong("a number")),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        match self.field_type {
            ColumnType::Float64 => Ok(true),
            // `1e3` is an integer; `1.5` would be truncated, so it is refused.
            ColumnType::Int64 if v.fract() == 0.0 && v.abs() < 9.2e18 => Ok(true),
            _ => Err(self.wrong("a fractional number")),
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
        let ok = match self.field_type {
            ColumnType::String => true,
            ColumnType::Int64 | ColumnType::Float64 => s.trim().parse::<f64>().is_ok(),
            ColumnType::Timestamp => {
                arrow::compute::kernels::cast_utils::string_to_datetime(&chrono::Utc, s).is_ok()
            }
            // Not event types (`EventSchema` refuses them).
            ColumnType::Bool | ColumnType::Int32 | ColumnType::Float32 => false,
        };
        if ok {
            Ok(true)
        } else {
            Err(self.wrong("a string"))
        }
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<bool, A::Error> {
        Err(self.wrong("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<bool, A::Error> {
        Err(self.wrong("an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<FieldSpec> {
        let f = |name: &str, field_type, required| FieldSpec {
            name: name.into(),
            field_type,
            required,
        };
        vec![
            f("id", ColumnType::String, true),
            f("n", ColumnType::Int64, false),
            f("x", ColumnType::Float64, false),
            f("ok", ColumnType::Bool, false),
            f("at", ColumnType::Timestamp, false),
        ]
    }

    fn check(json: &str) -> Result<(), Misfit> {
        fits(json.as_bytes(), &fields(), &mut Vec::new())
    }

    #[test]
    fn values_arrow_json_accepts_pass() {
        for ok in [
            r#"{"id":"a"}"#,
            r#"{"at":"2026-01-01T00:00:00Z","ok":true,"x":1,"n":-3,"id":"a\"b"}"#,
            r#"{"id":"a","n":"42","x":"1.5","at":1700000000000,"extra":{"deep":[1,2]}}"#,
            r#"{"id":"a","n":1e3,"x":18446744073709551615}"#,
            r#"{"id":"a","n":null,"x":null,"ok":null,"at":null}"#,
            " {\"id\":\"a\"}\n",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn misfits_are_told_apart_from_broken_json() {
        for schema in [
            r#"{"n":1}"#,
            r#"{"id":null}"#,
            r#"{"id":"a","n":1.5}"#,
            r#"{"id":"a","x":"N/A"}"#,
            r#"{"id":"a","ok":"yes"}"#,
            r#"{"id":"a","at":"yesterday"}"#,
            r#"{"id":1}"#,
            r#"{"id":"a","n":[1]}"#,
            r#"{"id":{"a":1}}"#,
            r#"[1,2]"#,
            r#""text""#,
            "42",
        ] {
            assert_eq!(check(schema), Err(Misfit::Schema), "{schema}");
        }
        for syntax in [
            r#"{"id":"a""#,
            "event_id=1;amount=2",
            r#"{"id":"a"} {}"#,
            "",
        ] {
            assert!(
                matches!(check(syntax), Err(Misfit::Syntax(_))),
                "{syntax}: {:?}",
                check(syntax)
            );
        }
    }
}
