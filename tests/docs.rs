//! The reference in `docs/` is checked against the code, so it cannot fall
//! behind it unnoticed: a new job-file key, metric or route without docs
//! fails here, and so does an example that no longer loads or a link that
//! no longer leads anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use scorestream_pipeline::config::{JobConfig, load_str};
use scorestream_pipeline::runtime::Job;
use scorestream_pipeline::{PipelineError, Problem};

#[path = "common/job_files.rs"]
mod job_files;
use job_files::job_files;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// README.md, BENCHMARKS.md and every page under docs/, by repository path.
fn pages() -> Vec<String> {
    let mut out = vec!["README.md".to_owned(), "BENCHMARKS.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

fn show(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One fenced code block of a Markdown page.
struct Block {
    /// The fence's info string, e.g. `toml job`.
    info: String,
    /// 1-based line of the opening fence.
    line: usize,
    text: String,
}

/// The fenced blocks of `markdown` (fences may be indented, inside a list),
/// and the page's other lines with code blanked out, for prose checks.
fn split_markdown(markdown: &str) -> (Vec<Block>, Vec<String>) {
    let mut blocks = Vec::new();
    let mut prose = Vec::new();
    let mut open: Option<(Block, usize)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with("```") {
            match open.take() {
                Some((block, _)) => blocks.push(block),
                None => {
                    let block = Block {
                        info: trimmed.trim_start_matches('`').trim().to_owned(),
                        line: i + 1,
                        text: String::new(),
                    };
                    open = Some((block, indent));
                }
            }
            prose.push(String::new());
            continue;
        }
        match &mut open {
            Some((block, indent)) => {
                let cut = line.len() - line.trim_start().len();
                block.text.push_str(&line[cut.min(*indent)..]);
                block.text.push('\n');
                prose.push(String::new());
            }
            None => prose.push(line.to_owned()),
        }
    }
    assert!(open.is_none(), "a code block is never closed");
    (blocks, prose)
}

/// The demo job with the sections `fragment` defines replaced by it.
fn with_demo(fragment: &str) -> String {
    let root = |header: &str| {
        header
            .trim()
            .trim_start_matches('[')
            .split(['.', ']'])
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches('"')
            .to_owned()
    };
    let replaced: BTreeSet<String> = fragment
        .lines()
        .filter(|l| l.trim_start().starts_with('['))
        .map(root)
        .collect();
    assert!(
        !replaced.is_empty(),
        "a fragment must start with a [section] header:\n{fragment}"
    );
    let mut out = String::new();
    let mut skipping = false;
    for line in read("jobs/demo/job.toml").lines() {
        if line.trim_start().starts_with('[') {
            skipping = replaced.contains(&root(line));
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(fragment);
    out
}

/// Complete jobs are built as `validate --offline` builds them (model and
/// features loaded, inputs bound), with paths relative to `jobs/demo/`;
/// fragments are parsed and type-checked inside the demo job.
#[test]
fn the_examples_in_the_docs_load_with_the_clis_loader() {
    let mut checked = 0;
    for page in pages() {
        let (blocks, _) = split_markdown(&read(&page));
        for b in blocks {
            let mut words = b.info.split_whitespace();
            if words.next() != Some("toml") {
                continue;
            }
            let at = format!("{page}:{}", b.line);
            match words.next() {
                Some("job") => {
                    let mut config: JobConfig = load_str(&b.text).unwrap_or_else(|p| {
                        panic!("{at}: the `toml job` block does not load:\n{}", show(&p))
                    });
                    config.resolve_paths(&repo().join("jobs/demo"));
                    match Job::build(config) {
                        Ok(_) => {}
                        Err(PipelineError::InvalidConfig { problems, .. }) => panic!(
                            "{at}: the `toml job` block does not validate:\n{}",
                            show(&problems)
                        ),
                        Err(e) => panic!("{at}: the `toml job` block does not validate: {e}"),
                    }
                }
                Some("fragment") => {
                    if let Err(p) = load_str(&with_demo(&b.text)) {
                        panic!(
                            "{at}: the `toml fragment` block does not load in the demo job:\n{}",
                            show(&p)
                        );
                    }
                }
                // The reference may not hold examples nobody checks.
                _ if page == "docs/job-file.md" => panic!(
                    "{at}: mark the block ```toml job (a complete job) or ```toml fragment (sections of one)"
                ),
                _ => continue,
            }
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} checked TOML examples found");
}

/// Tables whose keys are the user's (librdkafka settings, column names),
/// not scorestream's, so only the table itself needs documenting.
const FREE_FORM: [&str; 2] = ["source.options", "drift.column_thresholds"];

/// Every key a shipped job file uses is a key a user may meet, so the
/// reference must name it, in backticks, by its dotted path (array
/// elements as `features.columns[].name`).
#[test]
fn every_key_the_job_files_use_is_in_the_job_file_reference() {
    let files = job_files(&repo().join("jobs"));
    assert!(files.len() >= 2, "expected job files, found {files:?}");
    let mut used: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("job file");
        let keys =
            toml_keys::keys(&text, &FREE_FORM).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for k in keys {
            used.entry(k)
                .or_insert_with(|| f.strip_prefix(repo()).unwrap_or(f).to_owned());
        }
    }
    // The walk itself: it must see nested, inline and array-of-table keys,
    // and nothing inside a free-form table.
    for k in [
        "batch.max_wait",
        "sink.roll.max_bytes",
        "features.store.kind",
        "schema.fields[].type",
        "features.columns[].view",
        "drift.column_thresholds",
    ] {
        assert!(used.contains_key(k), "the key walk missed `{k}`: {used:?}");
    }
    assert!(
        !used
            .keys()
            .any(|k| k.starts_with("drift.column_thresholds.")),
        "{used:?}"
    );

    let reference = read("docs/job-file.md");
    let missing: Vec<String> = used
        .iter()
        .filter(|(k, _)| !reference.contains(&format!("`{k}`")))
        .map(|(k, f)| format!("  `{k}` (used in {})", f.display()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/job-file.md does not document these keys; add each to its section's table:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_column_types_in_the_reference_are_the_ones_the_loader_takes() {
    let page = read("docs/job-file.md");
    let row = |key: &str| -> BTreeSet<String> {
        let line = page
            .lines()
            .find(|l| l.starts_with(&format!("| `{key}` |")))
            .unwrap_or_else(|| panic!("docs/job-file.md has no row for `{key}`"));
        let described = line.split('|').nth(3).expect("a description cell");
        // The type names are the code spans before any parenthesis.
        let names = described.split('(').next().expect("text");
        names
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let names = |types: &[scorestream_schemas::ColumnType]| -> BTreeSet<String> {
        types.iter().map(|t| t.name().to_owned()).collect()
    };
    assert_eq!(
        row("schema.fields[].type"),
        names(&scorestream_schemas::EVENT_TYPES)
    );
    assert_eq!(
        row("features.columns[].type"),
        names(scorestream_operators::features::FEATURE_TYPES)
    );
}

#[test]
fn every_metric_is_in_the_operations_page() {
    let page = read("docs/operations.md");
    let missing: Vec<&str> = scorestream_pipeline::telemetry::METRICS
        .iter()
        .map(|m| m.name)
        .filter(|name| !page.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/operations.md (Metrics) does not describe: {missing:?}"
    );
}

#[test]
fn every_route_is_in_the_service_api_page() {
    let page = read("docs/service-api.md");
    let spec: serde_json::Value =
        serde_json::from_str(scorestream_service::OPENAPI).expect("the OpenAPI document");
    let paths = spec["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (path, ops) in paths {
        for method in ops.as_object().expect("operations").keys() {
            if method == "parameters" {
                continue;
            }
            let route = format!("`{} {path}`", method.to_uppercase());
            if !page.contains(&route) {
                missing.push(route);
            }
        }
    }
    assert!(paths.len() >= 8, "{paths:?}");
    assert!(
        missing.is_empty(),
        "docs/service-api.md does not describe: {missing:?}"
    );
}

/// Relative links lead to a file that exists, and `#anchors` to a heading
/// of it, as GitHub names them.
#[test]
fn links_between_the_pages_resolve() {
    let mut broken = Vec::new();
    for page in pages() {
        let (_, prose) = split_markdown(&read(&page));
        let dir = Path::new(&page).parent().unwrap_or(Path::new(""));
        for (i, line) in prose.iter().enumerate() {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
                let rel = if file.is_empty() {
                    PathBuf::from(&page)
                } else {
                    normalize(&dir.join(file))
                };
                let at = format!("{page}:{}: ({target})", i + 1);
                if !repo().join(&rel).exists() {
                    broken.push(format!("{at}: no such file {}", rel.display()));
                } else if !anchor.is_empty() && rel.extension().is_some_and(|x| x == "md") {
                    let text = std::fs::read_to_string(repo().join(&rel)).expect("page");
                    if !anchors(&text).contains(anchor) {
                        broken.push(format!("{at}: no heading #{anchor}"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

fn link_targets(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(&rest[..end]);
            rest = &rest[end..];
        }
    }
    out
}

/// `a/../b` as `b`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// GitHub's heading anchors: lower case, punctuation dropped, spaces as
/// hyphens, `-1`, `-2` for repeats.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let (_, prose) = split_markdown(markdown);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in prose {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// The dotted keys of a TOML document, read with the `toml` crate.
mod toml_keys {
    use std::collections::BTreeSet;

    use toml::{Table, Value};

    /// Keys with at least one dot: `batch.max_wait`, `sink.roll.max_bytes`,
    /// `features.columns[].name`. The keys inside a `free_form` table are
    /// left out; the table's own key is kept.
    pub(crate) fn keys(text: &str, free_form: &[&str]) -> Result<BTreeSet<String>, String> {
        let table: Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut out = BTreeSet::new();
        walk(&table, "", free_form, &mut out);
        Ok(out)
    }

    fn walk(table: &Table, prefix: &str, free_form: &[&str], out: &mut BTreeSet<String>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if key.contains('.') {
                out.insert(key.clone());
            }
            if free_form.contains(&key.as_str()) {
                continue;
            }
            match v {
                Value::Table(t) => walk(t, &key, free_form, out),
                Value::Array(items) => {
                    for item in items {
                        if let Value::Table(t) = item {
                            walk(t, &format!("{key}[]"), free_form, out);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}
