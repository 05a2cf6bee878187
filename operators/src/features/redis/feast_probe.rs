//! The Feast half of the probe. A Feast key is the serialized entity key
//! followed by the project, so every sampled key says which project, join
//! key and serialization version wrote it: a wrong `project` or version is
//! named together with what Redis does hold. In the job's own keys, each
//! view has a `_ts:<view>` field and each feature a murmur3 field, so a
//! misspelled view or feature is one that no sampled key has.

use std::collections::{BTreeMap, BTreeSet};

use super::RedisStoreConfig;
use super::feast::{decode_stored, feast_field};
use super::sample::{SAMPLE_KEYS, Sampler};
use crate::Result;
use crate::features::FeatureColumn;
use crate::features::probe::{ProbeReport, value_type_name};

/// Feast's `ValueType.STRING`: scorestream looks keys up as strings.
const STRING_TYPE: u32 = 2;
/// Distinct (project, join key, version) kinds of other keys remembered.
const OTHER_KINDS: usize = 8;

/// Who wrote a Feast key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct KeyShape {
    pub(super) version: u32,
    pub(super) join_key: String,
    /// Feast's value type of the entity value (2: string).
    pub(super) value_type: u32,
    pub(super) project: String,
}

impl KeyShape {
    fn describe(&self) -> String {
        let mut s = format!(
            "project `{}` (join key `{}`, entity_key_serialization_version {}",
            self.project, self.join_key, self.version
        );
        if self.value_type != STRING_TYPE {
            s.push_str(&format!(
                ", entity values of Feast value type {} where scorestream looks up strings",
                self.value_type
            ));
        }
        s.push(')');
        s
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// Length-prefixed bytes at `at`: (the bytes, where the next field starts).
fn sized(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let len = u32_at(b, at)? as usize;
    let start = at + 4;
    let end = start.checked_add(len)?;
    Some((b.get(start..end)?, end))
}

/// Reads a key as Feast's version 3 (names carry lengths), else as version
/// 2 with the job's join key (version 2 names have no length, so only a
/// known name can be read past).
pub(super) fn parse_key(key: &[u8], join_key: &str) -> Option<KeyShape> {
    parse_v3(key).or_else(|| parse_v2(key, join_key))
}

fn parse_v3(k: &[u8]) -> Option<KeyShape> {
    let n = u32_at(k, 0)? as usize;
    if n == 0 || n > 16 {
        return None;
    }
    let mut at = 4;
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        if u32_at(k, at)? != STRING_TYPE {
            return None;
        }
        let (name, next) = sized(k, at + 4)?;
        names.push(std::str::from_utf8(name).ok()?);
        at = next;
    }
    let mut value_type = STRING_TYPE;
    for _ in 0..n {
        value_type = u32_at(k, at)?;
        at = sized(k, at + 4)?.1;
    }
    let project = std::str::from_utf8(k.get(at..)?).ok()?;
    (!project.is_empty()).then(|| KeyShape {
        version: 3,
        join_key: names.join(","),
        value_type,
        project: project.to_owned(),
    })
}

fn parse_v2(k: &[u8], join_key: &str) -> Option<KeyShape> {
    if u32_at(k, 0)? != STRING_TYPE {
        return None;
    }
    let rest = k.get(4..)?.strip_prefix(join_key.as_bytes())?;
    let value_type = u32_at(rest, 0)?;
    let (_, at) = sized(rest, 4)?;
    let project = std::str::from_utf8(rest.get(at..)?).ok()?;
    (!project.is_empty()).then(|| KeyShape {
        version: 2,
        join_key: join_key.to_owned(),
        value_type,
        project: project.to_owned(),
    })
}

/// Which setting most likely differs from what Redis holds.
fn culprit(want: &KeyShape, others: &BTreeMap<KeyShape, u64>) -> &'static str {
    if others.keys().any(|o| {
        o.project == want.project && o.join_key == want.join_key && o.version != want.version
    }) {
        "store.entity_key_serialization_version"
    } else if others
        .keys()
        .any(|o| o.project == want.project && o.version == want.version)
    {
        "store.join_key"
    } else {
        "store.project"
    }
}

pub(super) async fn probe(
    s: &mut Sampler,
    config: &RedisStoreConfig,
    join_key: &str,
    columns: &[FeatureColumn],
) -> Result<ProbeReport> {
    let want = KeyShape {
        version: config.entity_key_serialization_version,
        join_key: join_key.to_owned(),
        value_type: STRING_TYPE,
        project: config.project.clone().unwrap_or_default(),
    };
    let mut ours = Vec::new();
    let mut others: BTreeMap<KeyShape, u64> = BTreeMap::new();
    let scanned = s
        .scan(None, |k| {
            match parse_key(&k, join_key) {
                Some(shape) if shape == want => ours.push(k),
                Some(shape) if others.len() < OTHER_KINDS || others.contains_key(&shape) => {
                    *others.entry(shape).or_default() += 1;
                }
                _ => {}
            }
            ours.len() >= SAMPLE_KEYS
        })
        .await?;
    if ours.is_empty() {
        let found = if others.is_empty() {
            "it holds no Feast keys at all".to_owned()
        } else {
            let kinds: Vec<String> = others.keys().map(KeyShape::describe).collect();
            format!("it holds Feast keys of {}", kinds.join("; "))
        };
        let m = format!(
            "no key in Redis {} belongs to {} ({}); {found}",
            s.name,
            want.describe(),
            scanned.describe()
        );
        return Ok(scanned.nothing_found(culprit(&want, &others), m));
    }
    let mut report = ProbeReport::default();
    check_fields(s, &want, &ours, columns, &mut report).await?;
    if report.problems.is_empty() {
        report.summary = format!(
            "Redis at {}: {} sampled keys of Feast project `{}` hold every declared view and feature",
            s.name,
            ours.len(),
            want.project
        );
    }
    Ok(report)
}

/// Views and features no sampled key has, and stored types that do not fit
/// the declared ones.
async fn check_fields(
    s: &mut Sampler,
    want: &KeyShape,
    keys: &[Vec<u8>],
    columns: &[FeatureColumn],
    report: &mut ProbeReport,
) -> Result<()> {
    let views: Vec<&str> = columns
        .iter()
        .filter_map(|c| c.view.as_deref())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut fields: Vec<Vec<u8>> = columns
        .iter()
        .map(|c| feast_field(c.view.as_deref().unwrap_or_default(), &c.name))
        .collect();
    fields.extend(views.iter().map(|v| format!("_ts:{v}").into_bytes()));
    let replies = s.hmget(keys, &fields).await?;
    let has = |i: usize| {
        replies
            .iter()
            .any(|r| r.get(i).is_some_and(Option::is_some))
    };
    let n = keys.len();
    let missing_views: Vec<&str> = views
        .iter()
        .enumerate()
        .filter(|(v, _)| !has(columns.len() + v))
        .map(|(_, view)| *view)
        .collect();
    let found_views = if missing_views.is_empty() {
        Vec::new()
    } else {
        views_in(s, keys).await?
    };
    for (j, c) in columns.iter().enumerate() {
        let view = c.view.as_deref().unwrap_or_default();
        if missing_views.contains(&view) {
            if columns.iter().position(|o| o.view.as_deref() == Some(view)) == Some(j) {
                report.problems.push((
                    format!("columns[{j}].view"),
                    format!(
                        "feature view `{view}` is in none of {n} sampled keys of project `{}`; the views there are: {}",
                        want.project,
                        found_views.join(", ")
                    ),
                ));
            }
            continue;
        }
        if !has(j) {
            report.problems.push((
                format!("columns[{j}].name"),
                format!(
                    "feature `{}` of view `{view}` is in none of {n} sampled keys of project `{}`, though the view is",
                    c.name, want.project
                ),
            ));
            continue;
        }
        report
            .problems
            .extend(type_problem(j, c, view, &replies, n));
    }
    Ok(())
}

/// Column `j`'s stored values against its declared type. The most common
/// stored type is named because it is the likely fix for the config; an
/// undecodable value is reported only when no value has the wrong type.
fn type_problem(
    j: usize,
    c: &FeatureColumn,
    view: &str,
    replies: &[Vec<Option<Vec<u8>>>],
    n: usize,
) -> Option<(String, String)> {
    let mut stored: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut unreadable = None;
    for raw in replies
        .iter()
        .filter_map(|r| r.get(j).and_then(Option::as_deref))
    {
        match decode_stored(raw) {
            Ok(Some(v)) if v.clone().coerce(c.kind).is_none() => {
                *stored.entry(value_type_name(&v)).or_default() += 1;
            }
            Ok(_) => {}
            Err(e) => unreadable = Some(e),
        }
    }
    if let Some((kind, count)) = stored.iter().max_by_key(|(_, c)| **c) {
        Some((
            format!("columns[{j}].type"),
            format!(
                "feature `{}` of view `{view}` is declared {}, but Feast stores {kind} ({count} of {n} sampled keys)",
                c.name,
                c.kind.name()
            ),
        ))
    } else {
        unreadable.map(|e| {
            (
                format!("columns[{j}].type"),
                format!("feature `{}` of view `{view}`: a stored value {e}", c.name),
            )
        })
    }
}

/// The views the sampled keys hold, from their `_ts:<view>` fields.
async fn views_in(s: &mut Sampler, keys: &[Vec<u8>]) -> Result<Vec<String>> {
    let mut pipe = redis::pipe();
    for k in keys {
        pipe.cmd("HKEYS").arg(k);
    }
    let all: Vec<Vec<Vec<u8>>> = s.query(pipe).await?;
    let views: BTreeSet<String> = all
        .iter()
        .flatten()
        .filter_map(|f| f.strip_prefix(b"_ts:"))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    Ok(views.into_iter().collect())
}
