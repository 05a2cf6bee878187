//! The reference in `docs/` is checked against the code, so it cannot fall
//! behind it unnoticed: a new job-file key, metric or route without docs
//! fails here, and so does an example that no longer loads or a link that
//! no longer leads anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use scorestream_pipeline::config::{JobConfig, load_str};
use scorestream_pipeline::runtime::Job;
use scorestream_pipeline::{PipelineError, Problem};

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
    let mut files = Vec::new();
    toml_files(&repo().join("jobs"), &mut files);
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

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("jobs dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            toml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
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

/// The dotted keys of a TOML document, read with a small parser of its own:
/// the root package has no TOML parser among its dependencies, and the job
/// files keep to plain TOML (tables, arrays of tables, inline tables,
/// arrays, strings and scalars). `tests/jobs.rs` loads each of them with
/// the CLI's loader, so they are valid TOML and this only has to find keys.
mod toml_keys {
    use std::collections::BTreeSet;

    /// Keys with at least one dot: `batch.max_wait`, `sink.roll.max_bytes`,
    /// `features.columns[].name`. The keys inside a `free_form` table are
    /// left out; the table's own key is kept.
    pub fn keys(text: &str, free_form: &[&str]) -> Result<BTreeSet<String>, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
            free_form,
            out: BTreeSet::new(),
        };
        p.document().map_err(|e| {
            let line = text[..p.i.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {e}")
        })?;
        Ok(p.out)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
        free_form: &'a [&'a str],
        out: BTreeSet<String>,
    }

    impl Parser<'_> {
        fn peek(&self) -> Option<u8> {
            self.s.get(self.i).copied()
        }

        fn starts_with(&self, t: &str) -> bool {
            self.s[self.i..].starts_with(t.as_bytes())
        }

        /// Spaces and tabs, and with `newlines` also line ends and comments.
        fn skip(&mut self, newlines: bool) {
            while let Some(c) = self.peek() {
                match c {
                    b' ' | b'\t' | b'\r' => self.i += 1,
                    b'\n' if newlines => self.i += 1,
                    b'#' if newlines => {
                        while self.peek().is_some_and(|c| c != b'\n') {
                            self.i += 1;
                        }
                    }
                    _ => break,
                }
            }
        }

        fn expect(&mut self, t: &str) -> Result<(), String> {
            if self.starts_with(t) {
                self.i += t.len();
                Ok(())
            } else {
                Err(format!("expected `{t}`"))
            }
        }

        fn record(&mut self, key: &str, emit: bool) -> bool {
            if emit && key.contains('.') {
                self.out.insert(key.to_owned());
            }
            emit && !self.free_form.contains(&key)
        }

        fn document(&mut self) -> Result<(), String> {
            let mut prefix = String::new();
            let mut emit = true;
            loop {
                self.skip(true);
                match self.peek() {
                    None => return Ok(()),
                    Some(b'[') => {
                        let array = self.starts_with("[[");
                        self.i += if array { 2 } else { 1 };
                        self.skip(false);
                        let path = self.key_path()?;
                        self.skip(false);
                        self.expect(if array { "]]" } else { "]" })?;
                        emit = true;
                        let mut key = String::new();
                        for (n, part) in path.iter().enumerate() {
                            if n > 0 {
                                key.push('.');
                            }
                            key.push_str(part);
                            emit = self.record(&key, emit);
                        }
                        prefix = if array { format!("{key}[]") } else { key };
                    }
                    Some(_) => {
                        self.key_value(&prefix, emit)?;
                        self.skip(false);
                        if self.peek() == Some(b'#') {
                            self.skip(true);
                        } else if self.peek().is_some() {
                            self.expect("\n")?;
                        }
                    }
                }
            }
        }

        fn key_value(&mut self, prefix: &str, emit: bool) -> Result<(), String> {
            let path = self.key_path()?;
            let mut key = prefix.to_owned();
            let mut emit = emit;
            for part in &path {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(part);
                emit = self.record(&key, emit);
            }
            self.skip(false);
            self.expect("=")?;
            self.skip(false);
            self.value(&key, emit)
        }

        fn key_path(&mut self) -> Result<Vec<String>, String> {
            let mut parts = Vec::new();
            loop {
                self.skip(false);
                let part = match self.peek() {
                    Some(q @ (b'"' | b'\'')) => self.string(q)?,
                    _ => {
                        let start = self.i;
                        while self
                            .peek()
                            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                        {
                            self.i += 1;
                        }
                        if start == self.i {
                            return Err("expected a key".into());
                        }
                        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
                    }
                };
                parts.push(part);
                self.skip(false);
                if self.peek() == Some(b'.') {
                    self.i += 1;
                } else {
                    return Ok(parts);
                }
            }
        }

        /// A string's contents (escapes kept as written: keys never need them).
        fn string(&mut self, quote: u8) -> Result<String, String> {
            let triple = [quote; 3];
            let multi = self.s[self.i..].starts_with(&triple);
            self.i += if multi { 3 } else { 1 };
            let start = self.i;
            loop {
                let Some(c) = self.peek() else {
                    return Err("unterminated string".into());
                };
                if c == b'\\' && quote == b'"' {
                    self.i += 2;
                    continue;
                }
                if c == b'\n' && !multi {
                    return Err("unterminated string".into());
                }
                if multi && self.s[self.i..].starts_with(&triple) {
                    let s = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                    self.i += 3;
                    return Ok(s);
                }
                if !multi && c == quote {
                    let s = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                    self.i += 1;
                    return Ok(s);
                }
                self.i += 1;
            }
        }

        fn value(&mut self, key: &str, emit: bool) -> Result<(), String> {
            match self.peek() {
                Some(q @ (b'"' | b'\'')) => self.string(q).map(drop),
                Some(b'[') => {
                    self.i += 1;
                    let element = format!("{key}[]");
                    loop {
                        self.skip(true);
                        if self.peek() == Some(b']') {
                            self.i += 1;
                            return Ok(());
                        }
                        self.value(&element, emit)?;
                        self.skip(true);
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b']') => {}
                            _ => return Err(format!("expected `,` or `]` in `{key}`")),
                        }
                    }
                }
                Some(b'{') => {
                    self.i += 1;
                    loop {
                        self.skip(false);
                        if self.peek() == Some(b'}') {
                            self.i += 1;
                            return Ok(());
                        }
                        self.key_value(key, emit)?;
                        self.skip(false);
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {}
                            _ => return Err(format!("expected `,` or `}}` in `{key}`")),
                        }
                    }
                }
                // Numbers, booleans, dates: up to the next delimiter.
                _ => {
                    let start = self.i;
                    while self
                        .peek()
                        .is_some_and(|c| !matches!(c, b',' | b']' | b'}' | b'\n' | b'#'))
                    {
                        self.i += 1;
                    }
                    if self.s[start..self.i].iter().all(u8::is_ascii_whitespace) {
                        Err(format!("`{key}` has no value"))
                    } else {
                        Ok(())
                    }
                }
            }
        }
    }

    #[test]
    fn finds_nested_inline_and_array_keys_and_skips_free_form_tables() {
        let text = r#"
# a comment
[job]
name = "x"   # trailing

[source]
topics = ["a", "b"]
[source.options]
"security.protocol" = "ssl"

[schema]
fields = [
  { name = "a", type = "string" },   # one
  { name = "b", type = "int64", required = true },
]

[sink]
roll = { max_bytes = "1MiB", interval = "3s" }
s3.region = "eu"

[[features.columns]]
name = "f"
type = "float64"

[drift]
column_thresholds = { score = { psi = 0.3 } }
"#;
        let keys = keys(text, &["source.options", "drift.column_thresholds"]).expect("keys");
        let want = [
            "job.name",
            "source.topics",
            "source.options",
            "schema.fields",
            "schema.fields[].name",
            "schema.fields[].type",
            "schema.fields[].required",
            "sink.roll",
            "sink.roll.max_bytes",
            "sink.roll.interval",
            "sink.s3",
            "sink.s3.region",
            "features.columns",
            "features.columns[].name",
            "features.columns[].type",
            "drift.column_thresholds",
        ];
        assert_eq!(
            keys.iter().map(String::as_str).collect::<Vec<_>>(),
            {
                let mut w = want.to_vec();
                w.sort_unstable();
                w
            },
            "{keys:?}"
        );
        assert!(super::toml_keys::keys("a = ", &[]).is_err());
        assert!(super::toml_keys::keys("[a]\nb = \"open", &[]).is_err());
    }
}
