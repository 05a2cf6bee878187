//! Plain hashes: one per entity at `key_template`, one text field per
//! feature, optionally a field with the write time.

use super::Layout;
use crate::features::values::{EntityFeatures, FeatureValue};
use scorestream_schemas::ColumnType;

use crate::features::FeatureColumn;

pub(crate) struct HashLayout {
    prefix: String,
    suffix: String,
    fields: Vec<Vec<u8>>,
    types: Vec<ColumnType>,
    has_timestamp: bool,
}

impl HashLayout {
    pub(crate) fn new(
        template: &str,
        timestamp_field: Option<&str>,
        columns: &[FeatureColumn],
    ) -> Self {
        let (prefix, suffix) = template.split_once("{key}").unwrap_or((template, ""));
        let mut fields: Vec<Vec<u8>> = columns
            .iter()
            .map(|c| c.name.clone().into_bytes())
            .collect();
        if let Some(ts) = timestamp_field {
            fields.push(ts.as_bytes().to_vec());
        }
        Self {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            fields,
            types: columns.iter().map(|c| c.kind).collect(),
            has_timestamp: timestamp_field.is_some(),
        }
    }
}

/// Epoch seconds (up to 10 digits), epoch milliseconds, or RFC 3339.
fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<f64>() {
        return Ok(if n.abs() < 1e11 {
            (n * 1000.0) as i64
        } else {
            n as i64
        });
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_millis())
        .map_err(|e| format!("`{text}` is not epoch seconds, epoch ms or RFC 3339: {e}"))
}

impl Layout for HashLayout {
    fn key(&self, entity: &str) -> Vec<u8> {
        format!("{}{entity}{}", self.prefix, self.suffix).into_bytes()
    }

    fn fields(&self) -> &[Vec<u8>] {
        &self.fields
    }

    fn decode(&self, reply: Vec<Option<Vec<u8>>>, problems: &mut Vec<String>) -> EntityFeatures {
        let n = self.types.len();
        let written = if self.has_timestamp {
            reply.get(n).cloned().flatten().and_then(|raw| {
                parse_time(&String::from_utf8_lossy(&raw))
                    .map_err(|e| problems.push(format!("timestamp field: {e}")))
                    .ok()
            })
        } else {
            None
        };
        let mut values = Vec::with_capacity(n);
        for (i, t) in self.types.iter().enumerate() {
            let v = reply.get(i).cloned().flatten().and_then(|raw| {
                match std::str::from_utf8(&raw) {
                    Ok(s) => FeatureValue::parse(s, *t),
                    Err(_) => Err("is not UTF-8 text".into()),
                }
                .map_err(|e| {
                    problems.push(format!(
                        "field `{}`: {e}",
                        String::from_utf8_lossy(&self.fields[i])
                    ))
                })
                .ok()
            });
            values.push(v);
        }
        EntityFeatures {
            values,
            written_at_ms: vec![written; n],
        }
    }
}
