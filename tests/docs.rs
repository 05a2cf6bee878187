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

#[path = "common/process.rs"]
#[allow(dead_code)]
mod process;

/// The queries the docs show, in every form they take: `scorestream query`
/// command lines, ```sql blocks for DuckDB, ```python blocks, and inline
/// `read_parquet(...)` / `ds.dataset(...)` spans in the prose.
mod doc_queries {
    use super::{pages, read, split_markdown};

    #[derive(Debug)]
    pub(crate) enum Snippet {
        /// The arguments after `query`.
        Cli(Vec<String>),
        /// A DuckDB statement.
        Duckdb(String),
        /// A Python program; its last assignment is materialized and counted.
        Python(String),
    }

    #[derive(Debug)]
    pub(crate) struct Found {
        pub(crate) at: String,
        pub(crate) snippet: Snippet,
    }

    /// Every query in README.md and docs/*.md, and the ones left out
    /// (S3 locations, Spark) with why.
    pub(crate) fn collect() -> (Vec<Found>, Vec<String>) {
        let (mut found, mut skipped) = (Vec::new(), Vec::new());
        for page in pages().into_iter().filter(|p| p != "BENCHMARKS.md") {
            let text = read(&page);
            let (blocks, prose) = split_markdown(&text);
            for b in &blocks {
                let at = format!("{page}:{}", b.line);
                match b.info.split_whitespace().next() {
                    Some("sh") => {
                        for (i, line) in logical_lines(&b.text) {
                            if let Some(args) = query_args(&line) {
                                let at = format!("{page}:{}", b.line + 1 + i);
                                found.push(Found {
                                    at,
                                    snippet: Snippet::Cli(args),
                                });
                            }
                        }
                    }
                    Some("sql") => found.push(Found {
                        at,
                        snippet: Snippet::Duckdb(b.text.clone()),
                    }),
                    Some("python") => {
                        // Paragraphs are alternatives (pyarrow, then polars).
                        for part in b.text.split("\n\n").filter(|p| !p.trim().is_empty()) {
                            found.push(Found {
                                at: at.clone(),
                                snippet: Snippet::Python(part.to_owned()),
                            });
                        }
                    }
                    _ => {}
                }
            }
            for (i, line) in prose.iter().enumerate() {
                for span in line.split('`').skip(1).step_by(2) {
                    let at = format!("{page}:{}", i + 1);
                    let s3 = span.contains("s3://") || span.contains("S3FileSystem");
                    if span.starts_with("read_parquet(") {
                        if s3 {
                            skipped.push(format!("{at}: {span} (S3)"));
                            continue;
                        }
                        found.push(Found {
                            at,
                            snippet: Snippet::Duckdb(format!("SELECT count(*) FROM {span}")),
                        });
                    } else if span.starts_with("ds.dataset(") {
                        let next = prose.get(i + 1).map(String::as_str).unwrap_or_default();
                        if span.matches('(').count() != span.matches(')').count()
                            && next.contains("S3FileSystem")
                        {
                            skipped.push(format!("{at}: {span}... (S3)"));
                            continue;
                        }
                        found.push(Found {
                            at,
                            snippet: Snippet::Python(format!(
                                "import pyarrow.dataset as ds\nscores = {span}.to_table()\n"
                            )),
                        });
                    } else if span.starts_with("spark.") {
                        skipped.push(format!("{at}: {span} (no Spark here)"));
                    }
                }
            }
        }
        (found, skipped)
    }

    /// Shell lines with `\` continuations joined, and their 0-based line
    /// within the block.
    fn logical_lines(block: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut current: Option<(usize, String)> = None;
        for (i, line) in block.lines().enumerate() {
            let (start, mut text) = current.take().unwrap_or((i, String::new()));
            match line.trim_end().strip_suffix('\\') {
                Some(head) => {
                    text.push_str(head);
                    text.push(' ');
                    current = Some((start, text));
                }
                None => {
                    text.push_str(line);
                    out.push((start, text));
                }
            }
        }
        out.extend(current);
        out
    }

    /// The arguments after `scorestream query` (or `cargo run ... -- query`).
    fn query_args(line: &str) -> Option<Vec<String>> {
        let words = shell_words(line);
        let at = words.iter().position(|w| w == "query")?;
        let before = words.get(at.checked_sub(1)?)?;
        (before == "scorestream" || before == "--").then(|| words[at + 1..].to_vec())
    }

    /// Words as a POSIX shell splits them, for the quoting the docs use;
    /// a `#` comment ends the line.
    fn shell_words(line: &str) -> Vec<String> {
        let (mut words, mut word, mut quote, mut started) =
            (Vec::new(), String::new(), None::<char>, false);
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.push(c),
                (None, '"' | '\'') => {
                    quote = Some(c);
                    started = true;
                }
                (None, '#') if !started => break,
                (None, c) if c.is_whitespace() => {
                    if started {
                        words.push(std::mem::take(&mut word));
                        started = false;
                    }
                }
                (None, c) => {
                    word.push(c);
                    started = true;
                }
            }
        }
        if started {
            words.push(word);
        }
        words
    }
}

/// Runs a Python snippet and prints the rows of its last assignment
/// (a lazy polars frame is collected first), so an example that only
/// builds a plan is executed too.
const PY_RUNNER: &str = r#"
import ast, sys
src = sys.argv[1]
tree = ast.parse(src)
ns = {}
exec(compile(tree, "<doc>", "exec"), ns)
name = [n for n in tree.body if isinstance(n, ast.Assign)][-1].targets[0].id
value = ns[name]
if hasattr(value, "collect"):
    value = value.collect()
print(value.num_rows if hasattr(value, "num_rows") else len(value))
"#;

const DUCKDB_RUNNER: &str = r#"
import sys, duckdb
rows = duckdb.connect().execute(sys.argv[1]).fetchall()
print(len(rows))
"#;

/// A job with `[drift]` run by the real binary against an in-process
/// Kafka, into `<dir>/out/demo`: the demo's output, which the docs' paths
/// name, with a drift table beside it. Events are dated 2026-12-01 (the
/// day the docs' DuckDB example filters on) and `amount` triples halfway,
/// so the drift examples that select breaches have some to find.
fn demo_output_with_drift(dir: &Path) {
    use std::sync::atomic::{AtomicBool, AtomicU64};

    use scorestream_tools::demo::{demo_world, generator_options};
    use scorestream_tools::synth::{EventGen, GenOptions, Pace, produce};

    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("transactions", 2, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let world = demo_world(&scorestream_tools::demo::EMBEDDED).expect("world");
    let (progress, stop) = (AtomicU64::new(0), AtomicBool::new(false));
    let pace = Pace {
        rate: None,
        progress: &progress,
        stop: &stop,
        ahead_of: None,
    };
    let clean = GenOptions {
        start_ms: 1_796_083_200_000,
        ..generator_options(31)
    };
    let shifted = GenOptions {
        seed: 3_100,
        first_seq: 1_000_000,
        amount_factor: 3.0,
        ..clean.clone()
    };
    for opts in [clean, shifted] {
        let mut g = EventGen::new(&world, opts);
        produce(&brokers, "transactions", &mut g, 4_000, &pace).expect("produce");
    }
    let out = dir.join("out/demo");
    let job = process::job_file(dir, &brokers, &out, "docs", process::MOCK_SESSION);
    let mut toml = std::fs::read_to_string(&job).expect("job");
    toml.push_str(&format!(
        "\n[drift]\nprofile = {:?}\nwindow = {{ rows = 2000 }}\nqueue_batches = 64\n\
         thresholds = {{ psi = 0.2, missing_rate_change = 0.1 }}\n",
        repo().join("jobs/demo/drift-profile.json")
    ));
    std::fs::write(&job, toml).expect("job");
    let log = dir.join("run.log");
    let mut child = process::spawn_run(&job, &["--exit-on-idle", "3s"], &log);
    process::wait_success(&mut child, &log, std::time::Duration::from_secs(180));
    for table in ["scores", "dead_letters", "drift"] {
        assert!(
            out.join(table).is_dir(),
            "the run wrote no {table}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

/// Rows in `scorestream query --format ndjson` output.
fn ndjson_rows(stdout: &[u8]) -> usize {
    process::text(stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .count()
}

/// Every query the docs show is run against real output, so an example
/// that no longer parses, names a missing column or calls a function the
/// engine lacks fails here; each must also find rows, as a reader trying
/// it would expect. Locations are the test's output; the S3 examples' SQL
/// runs here too, only their `s3://` paths are left to tests/object_store.rs.
#[test]
fn every_query_in_the_docs_runs_against_real_output() {
    use doc_queries::Snippet;

    let (found, skipped) = doc_queries::collect();
    let count = |f: fn(&Snippet) -> bool| found.iter().filter(|q| f(&q.snippet)).count();
    assert!(
        count(|s| matches!(s, Snippet::Cli(_))) >= 8,
        "expected the docs' `scorestream query` lines: {found:#?}"
    );
    assert!(
        count(|s| matches!(s, Snippet::Duckdb(_))) >= 2,
        "{found:#?}"
    );
    assert!(
        count(|s| matches!(s, Snippet::Python(_))) >= 3,
        "{found:#?}"
    );
    eprintln!("not run here: {skipped:#?}");

    let dir = tempfile::tempdir().expect("tmp");
    demo_output_with_drift(dir.path());
    let python = |program: &str, arg: &str| {
        process::run(
            std::process::Command::new("python3")
                .args(["-c", program, arg])
                .current_dir(dir.path()),
        )
    };
    let mut failures = Vec::new();
    for q in &found {
        let (ok, rows, said) = match &q.snippet {
            Snippet::Cli(args) => {
                let mut args = args.clone();
                // The docs' locations become the test's output; flags stay.
                if let Some(i) = args.iter().position(|a| a == "--path" || a == "--job") {
                    args.splice(i..i + 2, ["--path".to_owned(), "out/demo".to_owned()]);
                }
                let o = process::run(
                    process::bin()
                        .arg("query")
                        .args(&args)
                        .current_dir(dir.path()),
                );
                let sql = args.last().cloned().unwrap_or_default();
                let n = process::run(
                    process::bin()
                        .args(["query", "--path", "out/demo", "--format", "ndjson", &sql])
                        .current_dir(dir.path()),
                );
                let said = format!("{}{}", process::text(&o.stdout), process::text(&o.stderr));
                (o.status.success(), ndjson_rows(&n.stdout), said)
            }
            Snippet::Duckdb(sql) => {
                let o = python(DUCKDB_RUNNER, sql);
                let rows = process::text(&o.stdout).trim().parse().unwrap_or(0);
                (o.status.success(), rows, process::text(&o.stderr))
            }
            Snippet::Python(code) => {
                if code.contains("import polars") && !polars_or_skip() {
                    continue;
                }
                let o = python(PY_RUNNER, code);
                let rows = process::text(&o.stdout).trim().parse().unwrap_or(0);
                (o.status.success(), rows, process::text(&o.stderr))
            }
        };
        if !ok || rows == 0 {
            failures.push(format!(
                "{}: {:?}\n  {} ({rows} rows): {said}",
                q.at,
                q.snippet,
                if ok { "found nothing" } else { "failed" }
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "examples in the docs that do not work on real output:\n{}",
        failures.join("\n")
    );
}

/// polars is what the docs show beside pyarrow; CI installs it (.ci/run),
/// elsewhere its example is skipped loudly.
fn polars_or_skip() -> bool {
    let has = std::process::Command::new("python3")
        .args(["-c", "import polars"])
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        assert!(
            std::env::var_os("CI").is_none(),
            "polars is missing: `pip install polars` (.ci/run does)"
        );
        eprintln!("SKIPPED: the polars example (pip install polars)");
    }
    has
}

/// Each fixture directory says what its files are, how they were made and
/// how to make them again (README.md), and the scripts and documents there
/// only name files that exist: a fixture nobody can regenerate or check is
/// a number nobody can trust.
#[test]
fn every_fixture_directory_has_a_readme_and_names_only_files_that_exist() {
    let root = repo().join("tests/fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/fixtures")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 3, "{dirs:?}");
    let mut problems = Vec::new();
    for dir in &dirs {
        let rel = dir
            .strip_prefix(repo())
            .unwrap_or(dir)
            .display()
            .to_string();
        if !dir.join("README.md").is_file() {
            problems.push(format!("{rel}/README.md is missing"));
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("fixture dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| ["md", "py", "sh"].iter().any(|e| x == *e))
            })
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("text");
            let name = file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            // Scripts are checked where the README names them; elsewhere
            // a `.py` may be Feast's own source, cited.
            let kinds: &[&str] = if name == "README.md" {
                &[".md", ".txt", ".py", ".sh"]
            } else {
                &[".md", ".txt"]
            };
            for token in named_files(&text, kinds) {
                if !dir.join(&token).exists() {
                    problems.push(format!(
                        "{rel}/{name} names `{token}`, which does not exist"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Bare file names in `text` (no directory: those are the fixture
/// directory's own files) ending in one of `kinds`.
fn named_files(text: &str, kinds: &[&str]) -> BTreeSet<String> {
    let is_path = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/');
    text.split(|c: char| !is_path(c))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| {
            kinds.iter().any(|x| w.ends_with(x))
                && !w.contains('/')
                && w.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        })
        .map(str::to_owned)
        .collect()
}

/// A newcomer's first `cargo run` needs what CI installs for the build:
/// the README's apt line names every system package `.ci/run` installs,
/// except the tools only the tests run.
#[test]
fn the_readme_names_the_system_packages_the_build_needs() {
    const TESTS_ONLY: [&str; 4] = ["redis-server", "chromium", "docker-compose", "prometheus"];
    let ci = read(".ci/run");
    let needed: BTreeSet<&str> = ci
        .split("need+=(")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|p| !TESTS_ONLY.contains(p))
        .collect();
    assert!(needed.contains("libssl-dev"), "{needed:?}");
    let readme = read("README.md");
    let apt = readme
        .lines()
        .find(|l| l.contains("apt-get install"))
        .expect("an apt-get install line in README.md");
    let listed: BTreeSet<&str> = apt.split_whitespace().collect();
    // `build-essential` brings make, a C compiler and perl.
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|p| !listed.contains(p))
        .filter(|p| !(matches!(*p, "make" | "perl") && listed.contains("build-essential")))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's apt line lacks {missing:?}, which .ci/run installs for the build: {apt}"
    );
    assert!(
        readme.lines().any(|l| l.contains("brew install")),
        "README.md has no brew line for macOS"
    );
}
