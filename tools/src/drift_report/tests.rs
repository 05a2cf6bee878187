//! The report against drift tables written by the drift operator's own
//! writer. (Chromium renders a real job's report in `tests/drift.rs`.)

use std::collections::BTreeMap;

use scorestream_operators::drift::{
    CategoricalProfile, ColumnProfile, ColumnStats, DriftConfig, DriftStats, DriftTable,
    NumericProfile, ReferenceProfile, Statistic, WindowReport,
};

use super::*;

fn profile() -> ReferenceProfile {
    ReferenceProfile {
        source: "train.parquet".into(),
        rows: 1000,
        columns: BTreeMap::from([
            (
                "amount".into(),
                ColumnProfile::Numeric(NumericProfile {
                    edges: vec![10.0, 20.0, 40.0],
                    counts: vec![250, 250, 250, 240],
                    sample: vec![1.0, 15.0, 30.0, 50.0],
                    missing: 10,
                    total: 1000,
                }),
            ),
            (
                "merchant <&> category".into(),
                ColumnProfile::Categorical(CategoricalProfile {
                    categories: vec!["grocery".into(), "<script>".into()],
                    counts: vec![600, 300],
                    other: 100,
                    missing: 0,
                    total: 1000,
                }),
            ),
        ]),
    }
}

fn numeric(psi: f64, counts: Vec<u64>) -> ColumnStats {
    ColumnStats {
        column: "amount".into(),
        stats: DriftStats {
            psi: Some(psi),
            js_distance: Some(psi / 4.0),
            ks: Some(0.1),
            wasserstein: Some(2.5),
            missing_rate_change: Some(0.02),
            ..DriftStats::default()
        },
        counts,
        rows: 500,
    }
}

fn categorical() -> ColumnStats {
    ColumnStats {
        column: "merchant <&> category".into(),
        stats: DriftStats {
            psi: Some(0.01),
            js_distance: Some(0.02),
            chi_square: Some(1.5),
            chi_square_p: Some(0.47),
            missing_rate_change: Some(0.0),
            ..DriftStats::default()
        },
        counts: vec![290, 160, 50],
        rows: 500,
    }
}

fn report(i: i64, psi: f64) -> WindowReport {
    let breaches = if psi > 0.2 {
        vec![("amount".to_owned(), Statistic::Psi, psi, 0.2)]
    } else {
        Vec::new()
    };
    WindowReport {
        model_name: "fraud".into(),
        model_version: "3".into(),
        start_ms: 1_700_000_000_000 + i * 60_000,
        end_ms: 1_700_000_060_000 + i * 60_000,
        rows: 500,
        skipped: i as u64,
        columns: vec![
            numeric(psi, vec![100, 100, 100, 180 + i as u64]),
            categorical(),
        ],
        breaches,
    }
}

/// A drift table of `psis.len()` windows, written by the operator's writer.
fn table(psis: &[f64]) -> (tempfile::TempDir, Vec<WindowReport>) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut t = DriftTable::open(dir.path()).expect("table");
    let reports: Vec<WindowReport> = psis
        .iter()
        .enumerate()
        .map(|(i, p)| report(i as i64, *p))
        .collect();
    for r in &reports {
        t.write("fraud-demo", r).expect("write");
    }
    // A window being written is never read.
    std::fs::write(
        dir.path().join(DRIFT_DIR).join(".partial.parquet.tmp"),
        b"not parquet",
    )
    .expect("tmp file");
    (dir, reports)
}

fn config() -> DriftConfig {
    toml::from_str(
        "profile = \"p.json\"\nthresholds = { psi = 0.2, ks = 0.15 }\n\
         column_thresholds = { amount = { psi = 0.25 } }\n",
    )
    .expect("config")
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn the_table_reads_back_as_the_operator_wrote_it() {
    let (dir, reports) = table(&[0.05, 0.4]);
    let rows = read_drift_table(&dir.path().join(DRIFT_DIR)).expect("read");
    assert_eq!(rows.len(), 4);
    let amount: Vec<&WindowRow> = rows.iter().filter(|r| r.feature == "amount").collect();
    for (row, rep) in amount.iter().zip(&reports) {
        assert_eq!(row.job, "fraud-demo");
        assert_eq!(
            (row.model_name.as_str(), row.model_version.as_str()),
            ("fraud", "3")
        );
        assert_eq!((row.start_ms, row.end_ms), (rep.start_ms, rep.end_ms));
        assert_eq!((row.rows, row.skipped), (rep.rows, rep.skipped));
        assert_eq!(row.stats, rep.columns[0].stats);
        assert_eq!(row.counts, rep.columns[0].counts);
    }
    assert!(amount[0].breached.is_empty());
    assert_eq!(amount[1].breached, vec!["psi".to_owned()]);
}

#[test]
fn a_missing_or_foreign_table_is_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let err = read_drift_table(&dir.path().join(DRIFT_DIR)).expect_err("no table");
    assert!(err.to_string().contains("drift table"), "{err}");
    assert!(err.to_string().contains("[drift]"), "{err}");

    let drift = dir.path().join(DRIFT_DIR);
    std::fs::create_dir_all(&drift).expect("dir");
    let batch = arrow::array::RecordBatch::try_from_iter([(
        "x",
        std::sync::Arc::new(arrow::array::Int32Array::from(vec![1])) as arrow::array::ArrayRef,
    )])
    .expect("batch");
    let f = std::fs::File::create(drift.join("other.parquet")).expect("file");
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    let err = read_drift_table(&drift).expect_err("foreign");
    let msg = err.to_string();
    assert!(
        msg.contains("other.parquet") && msg.contains("no column `job`"),
        "{msg}"
    );
}

#[test]
fn the_page_has_a_histogram_and_a_chart_per_statistic_for_each_feature() {
    let (dir, _) = table(&[0.05, 0.1, 0.4]);
    let out = dir.path().join("report.html");
    let cfg = config();
    let summary = write_report(dir.path(), &profile(), Some(&cfg), 100, &out).expect("report");
    assert_eq!(
        summary,
        ReportSummary {
            windows: 3,
            older: 0,
            features: 2,
            breaches: 1
        }
    );
    // Only the newest windows are read: memory is bounded by --last.
    let newest = write_report(dir.path(), &profile(), Some(&cfg), 2, &out).expect("report");
    assert_eq!((newest.windows, newest.older, newest.breaches), (2, 1, 1));
    let page = std::fs::read_to_string(&out).expect("page");
    assert!(page.contains("1 older window(s) are in the drift table"));
    assert_eq!(count(&page, "<circle class=\"point"), 2 * 10);
    let summary = write_report(dir.path(), &profile(), Some(&cfg), 100, &out).expect("report");
    assert_eq!(summary.windows, 3);
    let page = std::fs::read_to_string(&out).expect("page");
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    // Self-contained: nothing is fetched.
    for outside in ["src=", "href=\"http", "<link", "<script"] {
        assert!(!page.contains(outside), "{outside}");
    }
    assert_eq!(count(&page, "class=\"chart histogram\""), 2);
    // 4 numeric bins and 3 category slots: a reference bar each, and one
    // per window (all three are among the newest four).
    assert_eq!(count(&page, "class=\"bar ref\""), 4 + 3);
    assert_eq!(count(&page, "class=\"bar window\""), 3 * (4 + 3));
    // Each histogram's legend names the reference and every window.
    assert_eq!(count(&page, "class=\"legend-item\""), 2 * 4);
    for name in [
        ">reference</text>",
        ">window 1 · 11-14 22:13:20</text>",
        ">window 3 · 11-14 22:15:20 (latest)</text>",
    ] {
        assert_eq!(count(&page, name), 2, "{name}");
    }
    // Every chart titles both axes: 2 histograms and 10 series.
    assert_eq!(count(&page, "class=\"axis-title x\""), 12);
    assert_eq!(count(&page, "class=\"axis-title y\""), 12);
    assert!(page.contains(">amount: the reference's bins, in its units</text>"));
    assert!(
        page.contains(">in amount's units</text>"),
        "wasserstein's unit"
    );
    assert!(page.contains(">window start (UTC), oldest to newest</text>"));
    // The header lists the per-column override, and amount's section
    // marks the threshold that is its own.
    assert!(
        page.contains("<li><b>amount</b>: psi 0.25</li>"),
        "override listed"
    );
    assert!(page.contains("Thresholds: psi 0.25 (this column's), ks 0.15."));
    // amount: psi, js, ks, wasserstein, missing; the category: psi, js,
    // chi-square, its p-value, missing.
    assert_eq!(count(&page, "class=\"chart series\""), 5 + 5);
    // Three windows, one point each per chart; the breach stands out.
    assert_eq!(count(&page, "<circle class=\"point"), 3 * 10);
    assert_eq!(count(&page, "class=\"point breach\""), 1);
    // Thresholds: psi per column (amount 0.25, the category 0.2), and ks.
    assert_eq!(count(&page, "class=\"threshold\""), 3);
    assert!(page.contains("<title>threshold 0.25</title>"));
    // Labels come from the profile: the bins' edges and the categories.
    for label in [
        "≤ 10", "(10, 20]", "(20, 40]", "&gt; 40", "grocery", "other",
    ] {
        assert!(page.contains(label), "{label}");
    }
    // Reference share of the first bin: 250 of 990 values.
    assert!(page.contains("reference 25.25%"), "reference share");
    // The latest window: 100 of 482 in the first bin.
    assert!(page.contains("(latest) 20.75%"), "recent share");
    assert!(page.contains("Missing: reference 1.00%, latest window 3.00%"));
}

#[test]
fn names_from_the_data_are_escaped() {
    let (dir, _) = table(&[0.05]);
    let rows = read_drift_table(&dir.path().join(DRIFT_DIR)).expect("read");
    let page = render(&ReportInput {
        profile: &profile(),
        rows: &rows,
        config: None,
        last: 10,
        older: 0,
    });
    assert!(!page.contains("<script>"));
    assert!(page.contains("&lt;script&gt;"));
    assert!(page.contains("merchant &lt;&amp;&gt; category"));
    assert!(!page.contains("<&>"), "a feature name unescaped");
    assert!(page.contains("not known (report made without the job file"));
    assert_eq!(count(&page, "class=\"threshold\""), 0);

    // Every other string from the data: the job, the model, the profile's
    // source, a breach name, and a feature name that would end an attribute.
    let hostile: Vec<WindowRow> = rows
        .iter()
        .cloned()
        .map(|mut r| {
            r.job = "<b>job</b>".into();
            r.model_name = "<b>model</b>".into();
            r.breached = vec!["<b>statistic</b>".into()];
            if r.feature == "amount" {
                r.feature = "amount\" onclick=\"x".into();
            }
            r
        })
        .collect();
    let mut source = profile();
    source.source = "<b>source</b>".into();
    let page = render(&ReportInput {
        profile: &source,
        rows: &hostile,
        config: None,
        last: 10,
        older: 0,
    });
    assert!(!page.contains("<b>"), "markup from the data: {page}");
    for escaped in ["job", "model", "source", "statistic"] {
        assert!(
            page.contains(&format!("&lt;b&gt;{escaped}&lt;/b&gt;")),
            "{escaped}"
        );
    }
    assert!(
        !page.contains("\" onclick"),
        "an attribute ended by the data"
    );
    // In the summary's link and text, the section's id and heading, and
    // each chart's data and label attributes.
    assert!(count(&page, "amount&quot; onclick=&quot;x") >= 6);
}

#[test]
fn only_the_last_windows_are_charted_and_a_replaced_profile_is_noted() {
    let psis: Vec<f64> = (0..12).map(|i| 0.01 * i as f64).collect();
    let (dir, _) = table(&psis);
    let rows = read_drift_table(&dir.path().join(DRIFT_DIR)).expect("read");
    let mut other = profile();
    if let Some(ColumnProfile::Numeric(n)) = other.columns.get_mut("amount") {
        n.edges = vec![5.0];
        n.counts = vec![500, 490];
    }
    let page = render(&ReportInput {
        profile: &other,
        rows: &rows,
        config: None,
        last: 5,
        older: 0,
    });
    assert!(page.contains("The last 5 of 12 windows."));
    assert_eq!(count(&page, "<circle class=\"point"), 5 * 10);
    assert!(page.contains("The latest window has 4 bins and the profile 2"));
    assert_eq!(count(&page, "class=\"chart histogram\""), 1);
}

#[test]
fn an_empty_table_says_so() {
    let page = render(&ReportInput {
        profile: &profile(),
        rows: &[],
        config: None,
        last: 10,
        older: 0,
    });
    assert!(page.contains("no windows yet"));
}

#[test]
fn numbers_are_short_and_signed_thresholds_drawn_both_ways() {
    use super::svg::num;
    for (v, want) in [
        (135.9317, "135.9"),
        (2977.4349, "2977"),
        (0.0028, "0.0028"),
        (1.0612, "1.061"),
        (-7.922e-4, "-7.922e-4"),
        (0.0, "0"),
        (-0.00001, "-1.000e-5"),
        (12_000_000.0, "1.200e7"),
        (20.0, "20"),
    ] {
        assert_eq!(num(v), want, "{v}");
    }
    let (dir, _) = table(&[0.05]);
    let rows = read_drift_table(&dir.path().join(DRIFT_DIR)).expect("read");
    let cfg: DriftConfig =
        toml::from_str("profile = \"p.json\"\nthresholds = { missing_rate_change = 0.1 }\n")
            .expect("config");
    let page = render(&ReportInput {
        profile: &profile(),
        rows: &rows,
        config: Some(&cfg),
        last: 10,
        older: 0,
    });
    // Two columns, each with +0.1 and -0.1.
    assert_eq!(count(&page, "class=\"threshold\""), 4);
    assert_eq!(count(&page, "<title>threshold -0.1</title>"), 2);
}

/// A long category or bin label is cut under the axis, and the whole of
/// it is the label's `<title>` (shown on hover); more windows than the
/// histogram draws leave the oldest out.
#[test]
fn long_labels_keep_their_full_text_and_only_the_newest_windows_are_bars() {
    let (dir, _) = table(&[0.01, 0.02, 0.03, 0.04, 0.05, 0.06]);
    let rows = read_drift_table(&dir.path().join(DRIFT_DIR)).expect("read");
    let mut long = profile();
    let name = "online marketplaces and subscription services";
    if let Some(ColumnProfile::Categorical(c)) = long.columns.get_mut("merchant <&> category") {
        c.categories[0] = name.into();
    }
    let page = render(&ReportInput {
        profile: &long,
        rows: &rows,
        config: None,
        last: 10,
        older: 0,
    });
    assert!(
        page.contains(&format!("<title>{name}</title>online marketpl…</text>")),
        "{page}"
    );
    // Six windows, four drawn: windows 3 to 6.
    assert_eq!(count(&page, "class=\"bar window\""), 4 * (4 + 3));
    assert!(!page.contains(">window 2 · "));
    assert!(page.contains(">window 3 · "));
    assert!(page.contains(">window 6 · 11-14 22:18:20 (latest)</text>"));
}
