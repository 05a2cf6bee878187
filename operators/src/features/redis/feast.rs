//! Feast's Redis online store, read as `feast materialize` writes it (see
//! `tests/fixtures/feast/LAYOUT.md`, checked against Feast's own output):
//!
//! - key: `serialize_entity_key(entity)` followed by the project name;
//! - one hash per entity for all its feature views; a feature's field is the
//!   4-byte little-endian unsigned murmur3 (seed 0) of `view:feature`;
//! - values are protobuf `feast.types.Value`; each view's write time is a
//!   protobuf `google.protobuf.Timestamp` in field `_ts:<view>`.

use std::collections::BTreeMap;

use prost::Message;

use super::Layout;
use crate::features::values::{EntityFeatures, FeatureValue};
use scorestream_schemas::ColumnType;

use crate::features::FeatureColumn;
use crate::{OperatorError, Result};

/// Feast's `ValueType.STRING`.
const STRING_TYPE: u32 = 2;

/// `feast.types.Value`: the scalar kinds scorestream reads. Lists and other
/// kinds decode to `None` and count as undecodable.
#[derive(Clone, PartialEq, Message)]
struct Value {
    #[prost(oneof = "Val", tags = "1, 2, 3, 4, 5, 6, 7, 8, 19")]
    val: Option<Val>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Val {
    #[prost(bytes, tag = "1")]
    Bytes(Vec<u8>),
    #[prost(string, tag = "2")]
    String(String),
    #[prost(int32, tag = "3")]
    Int32(i32),
    #[prost(int64, tag = "4")]
    Int64(i64),
    #[prost(double, tag = "5")]
    Double(f64),
    #[prost(float, tag = "6")]
    Float(f32),
    #[prost(bool, tag = "7")]
    Bool(bool),
    #[prost(int64, tag = "8")]
    UnixTimestamp(i64),
    #[prost(int32, tag = "19")]
    Null(i32),
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// Feast's `serialize_entity_key` for one string join key. Public so that
/// tools writing Feast's layout (`scorestream bench --features feast`)
/// write the keys the join reads.
pub fn serialize_entity_key(join_key: &str, value: &str, version: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + join_key.len() + value.len());
    if version >= 3 {
        out.extend_from_slice(&1u32.to_le_bytes());
    }
    out.extend_from_slice(&STRING_TYPE.to_le_bytes());
    if version >= 3 {
        out.extend_from_slice(&(join_key.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(join_key.as_bytes());
    out.extend_from_slice(&STRING_TYPE.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value.as_bytes());
    out
}

/// The hash field of a feature: Feast's `_mmh3(f"{view}:{feature}")`.
pub fn feast_field(view: &str, feature: &str) -> Vec<u8> {
    let text = format!("{view}:{feature}");
    let h = murmur3::murmur3_32(&mut std::io::Cursor::new(text.as_bytes()), 0).unwrap_or(0);
    h.to_le_bytes().to_vec()
}

pub(crate) struct FeastLayout {
    project: String,
    join_key: String,
    version: u32,
    /// Feature fields, then one `_ts:<view>` field per view.
    fields: Vec<Vec<u8>>,
    types: Vec<ColumnType>,
    /// Per feature, the index of its view's timestamp field in `fields`.
    ts_of: Vec<usize>,
    names: Vec<String>,
}

impl FeastLayout {
    pub(crate) fn new(
        project: &str,
        join_key: &str,
        version: u32,
        columns: &[FeatureColumn],
    ) -> Result<Self> {
        let mut fields = Vec::with_capacity(columns.len() + 2);
        let mut views: BTreeMap<&str, usize> = BTreeMap::new();
        for c in columns {
            let view = c.view.as_deref().ok_or_else(|| {
                OperatorError::FeatureStoreConfig(format!(
                    "feature `{}` names no Feast feature view (`view`)",
                    c.name
                ))
            })?;
            fields.push(feast_field(view, &c.name));
            views.entry(view).or_insert(0);
        }
        for (view, at) in views.iter_mut() {
            *at = fields.len();
            fields.push(format!("_ts:{view}").into_bytes());
        }
        let ts_of = columns
            .iter()
            .map(|c| views[c.view.as_deref().unwrap_or_default()])
            .collect();
        Ok(Self {
            project: project.to_owned(),
            join_key: join_key.to_owned(),
            version,
            fields,
            types: columns.iter().map(|c| c.kind).collect(),
            ts_of,
            names: columns.iter().map(|c| c.name.clone()).collect(),
        })
    }
}

fn decode_value(raw: &[u8], t: ColumnType) -> Result<Option<FeatureValue>, String> {
    let Some(value) = decode_stored(raw)? else {
        return Ok(None);
    };
    let kind = format!("{value:?}");
    value
        .coerce(t)
        .map(Some)
        .ok_or_else(|| format!("holds {kind}, which does not fit the declared type {t:?}"))
}

/// A stored `Value` as it is, before any conversion to a declared type;
/// `None` for Feast's null.
pub(super) fn decode_stored(raw: &[u8]) -> Result<Option<FeatureValue>, String> {
    let v = Value::decode(raw).map_err(|e| format!("not a Feast Value: {e}"))?;
    Ok(Some(match v.val {
        None | Some(Val::Null(_)) => return Ok(None),
        Some(Val::Double(x)) => FeatureValue::Float64(x),
        Some(Val::Float(x)) => FeatureValue::Float32(x),
        Some(Val::Int64(x)) => FeatureValue::Int64(x),
        Some(Val::Int32(x)) => FeatureValue::Int32(x),
        Some(Val::String(x)) => FeatureValue::String(x.into()),
        Some(Val::Bool(x)) => FeatureValue::Bool(x),
        Some(Val::UnixTimestamp(x)) => FeatureValue::Int64(x),
        Some(Val::Bytes(_)) => return Err("is bytes, which scorestream cannot score".into()),
    }))
}

impl Layout for FeastLayout {
    fn key(&self, entity: &str) -> Vec<u8> {
        let mut k = serialize_entity_key(&self.join_key, entity, self.version);
        k.extend_from_slice(self.project.as_bytes());
        k
    }

    fn fields(&self) -> &[Vec<u8>] {
        &self.fields
    }

    fn decode(&self, reply: Vec<Option<Vec<u8>>>, problems: &mut Vec<String>) -> EntityFeatures {
        let n = self.types.len();
        let mut values = Vec::with_capacity(n);
        let mut written_at_ms = Vec::with_capacity(n);
        for i in 0..n {
            let v = reply.get(i).and_then(Option::as_deref).and_then(|raw| {
                decode_value(raw, self.types[i])
                    .map_err(|e| problems.push(format!("feature `{}`: {e}", self.names[i])))
                    .ok()
                    .flatten()
            });
            let ts = reply
                .get(self.ts_of[i])
                .and_then(Option::as_deref)
                .and_then(|raw| {
                    Timestamp::decode(raw)
                        .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
                        .map_err(|e| {
                            problems.push(format!("timestamp of `{}`: {e}", self.names[i]))
                        })
                        .ok()
                });
            values.push(v);
            written_at_ms.push(ts);
        }
        EntityFeatures {
            values,
            written_at_ms,
        }
    }
}
