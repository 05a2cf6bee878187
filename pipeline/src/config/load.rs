use std::path::Path;

use scorestream_operators::config::Validate;
use scorestream_operators::kafka::OptionPolicy;
use scorestream_operators::sink::dead_letter_topic::DeadLettersConfig;
use scorestream_operators::source::kafka::KafkaSourceConfig;
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use toml::{Table, Value};

use super::{JobConfig, QueueConfig};
use crate::{PipelineError, Problem};

/// Sections of a job file; anything else at the top level is an error.
const SECTIONS: [(&str, bool); 10] = [
    ("job", true),
    ("source", true),
    ("schema", true),
    ("features", true),
    ("batch", false),
    ("model", true),
    ("sink", true),
    ("dead_letters", false),
    ("queues", false),
    ("drift", false),
];

/// Reads and checks a job file; relative model and feature paths are
/// resolved against the file's directory.
pub fn load_file(path: &Path) -> Result<JobConfig, PipelineError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PipelineError::io(format!("reading {}", path.display()), e))?;
    let mut job = load_str(&text).map_err(|problems| PipelineError::InvalidConfig {
        path: path.display().to_string(),
        problems,
    })?;
    job.resolve_paths(path.parent().unwrap_or(Path::new(".")));
    Ok(job)
}

/// Parses a job config, collecting every problem it can find rather than
/// stopping at the first, each named by its dotted key.
pub fn load_str(text: &str) -> Result<JobConfig, Vec<Problem>> {
    load_str_as(text, &OptionPolicy::Unrestricted)
}

/// [`load_str`] for a job whose Kafka options `policy` restricts (a job
/// submitted to a service).
pub fn load_str_as(text: &str, policy: &OptionPolicy) -> Result<JobConfig, Vec<Problem>> {
    let table: Table = toml::from_str(text).map_err(|e| vec![syntax_problem(text, &e)])?;
    let mut problems = Vec::new();
    for key in table.keys() {
        if !SECTIONS.iter().any(|(s, _)| s == key) {
            let known: Vec<_> = SECTIONS.iter().map(|(s, _)| *s).collect();
            problems.push(Problem::new(
                key.as_str(),
                format!("unknown section; expected one of {}", known.join(", ")),
            ));
        }
    }
    for (s, required) in SECTIONS {
        if required && !table.contains_key(s) {
            problems.push(Problem::new(s, "missing section"));
        }
    }
    let job = section(&table, "job", &mut problems);
    let source: Option<KafkaSourceConfig> = section(&table, "source", &mut problems);
    let schema = schema_section(&table, &mut problems);
    let features: Option<scorestream_operators::features::FeaturesConfig> =
        section(&table, "features", &mut problems);
    let batch = section(&table, "batch", &mut problems);
    let model = section(&table, "model", &mut problems);
    let sink = section(&table, "sink", &mut problems);
    let dead_letters: Option<DeadLettersConfig> = section(&table, "dead_letters", &mut problems);
    let queues: Option<QueueConfig> = section(&table, "queues", &mut problems);
    let drift: Option<scorestream_operators::drift::DriftConfig> =
        section(&table, "drift", &mut problems);

    check(&source, "source", &mut problems);
    if let Some(s) = &source {
        let refused = policy.problems(&s.options);
        problems.extend(refused.into_iter().map(|e| e.within("source")));
    }
    check(&batch, "batch", &mut problems);
    check(&features, "features", &mut problems);
    check(&dead_letters, "dead_letters", &mut problems);
    if let (Some(d), Some(s)) = (&dead_letters, &source) {
        problems.extend(d.loops_back(&s.topics).map(|e| e.within("dead_letters")));
    }
    check(&queues, "queues", &mut problems);
    check(&drift, "drift", &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    match (job, source, schema, features, model, sink) {
        (Some(job), Some(source), Some(schema), Some(features), Some(model), Some(sink)) => {
            Ok(JobConfig {
                job,
                source,
                schema,
                features,
                batch: batch.unwrap_or_default(),
                model,
                sink,
                dead_letters: dead_letters.unwrap_or_default(),
                queues: queues.unwrap_or_default(),
                drift,
            })
        }
        _ => Err(vec![Problem::new("", "incomplete job config")]),
    }
}

/// A TOML syntax error by line and column. toml's own message quotes the
/// offending line, and in a job file that line may hold a password.
pub(crate) fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    let at = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!(" at line {line}, column {column}")
    });
    Problem::new(
        "",
        format!(
            "not valid TOML{}: {}",
            at.unwrap_or_default(),
            e.message().trim_end()
        ),
    )
}

/// The schema's fields are checked one by one, so a bad field does not hide
/// the problems of the fields after it.
fn schema_section(table: &Table, problems: &mut Vec<Problem>) -> Option<super::SchemaSection> {
    let value = table.get("schema")?;
    let Some(fields) = value.get("fields").and_then(Value::as_array) else {
        return section(table, "schema", problems);
    };
    let mut rest = value.clone();
    if let Some(t) = rest.as_table_mut() {
        t.insert("fields".into(), Value::Array(Vec::new()));
    }
    let shell: Option<super::SchemaSection> = parse_value(rest, "schema", problems);
    let before = problems.len();
    let parsed: Vec<_> = fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| parse_value(f.clone(), &format!("schema.fields[{i}]"), problems))
        .collect();
    if problems.len() > before {
        return None;
    }
    if let Err(e) = scorestream_schemas::EventSchema::try_new(parsed.clone()) {
        problems.push(Problem::new("schema.fields", e.to_string()));
        return None;
    }
    shell.map(|_| super::SchemaSection { fields: parsed })
}

/// A parsed section's own checks, its keys prefixed with the section's.
fn check<T: Validate>(section: &Option<T>, name: &str, problems: &mut Vec<Problem>) {
    if let Some(Err(found)) = section.as_ref().map(Validate::validate) {
        problems.extend(found.into_iter().map(|e| e.within(name)));
    }
}

/// Deserializes one section. On an error it records it, removes the offending
/// key and tries again, so one run reports every bad key of the section.
fn section<T: DeserializeOwned>(
    table: &Table,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    parse_value(table.get(name)?.clone(), name, problems)
}

fn parse_value<T: DeserializeOwned>(
    mut value: Value,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let mut removed: Vec<Vec<Segment>> = Vec::new();
    for _ in 0..64 {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(t) => return removed.is_empty().then_some(t),
            Err(e) => {
                let mut segments: Vec<Segment> = e.path().iter().cloned().collect();
                let message = clean(&e.inner().to_string());
                // An unknown field may be reported at its parent; name the field itself.
                if let Some(field) = quoted_after(&message, "unknown field `")
                    && !matches!(segments.last(), Some(Segment::Map { key }) if *key == field)
                {
                    segments.push(Segment::Map { key: field });
                }
                if let Some(field) = quoted_after(&message, "missing field `") {
                    // Missing only because we removed a bad value: already reported.
                    let mut path = segments.clone();
                    path.push(Segment::Map { key: field });
                    if !removed.iter().any(|r| same_path(r, &path)) {
                        problems.push(Problem::new(dotted(name, &segments), message));
                    }
                    return None;
                }
                problems.push(Problem::new(dotted(name, &segments), message));
                if !remove(&mut value, &segments) {
                    return None;
                }
                removed.push(segments);
            }
        }
    }
    None
}

fn same_path(a: &[Segment], b: &[Segment]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_string() == y.to_string())
}

fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next().map(str::to_owned)
}

/// The first line of a serde message (toml appends "in `key`", which the
/// dotted key already says).
fn clean(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim().to_owned()
}

fn dotted(section: &str, segments: &[Segment]) -> String {
    let mut s = section.to_owned();
    for seg in segments {
        match seg {
            Segment::Seq { index } => s.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    s.push('.');
                    s.push_str(key);
                } else {
                    s.push_str(&format!(".\"{key}\""));
                }
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    s
}

/// Removes the value at `path`; false when the path cannot be followed.
fn remove(value: &mut Value, path: &[Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = value;
    for seg in parents {
        cur = match (seg, cur) {
            (Segment::Map { key }, Value::Table(t)) => match t.get_mut(key) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Seq { index }, Value::Array(a)) => match a.get_mut(*index) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Enum { .. } | Segment::Unknown, v) => v,
            _ => return false,
        };
    }
    match (last, cur) {
        (Segment::Map { key }, Value::Table(t)) => t.remove(key).is_some(),
        _ => false,
    }
}
