//! scorestream's statistics against scipy's and numpy's on the committed
//! fixture (`tests/fixtures/drift/make_drift_fixtures.py`).

use serde_json::Value;

use super::stats::{bin_index, ks_statistic};
use super::*;

fn cases() -> Vec<Value> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/drift/cases.json");
    let file: Value = serde_json::from_slice(&std::fs::read(path).expect("cases")).expect("json");
    file["cases"].as_array().expect("cases").clone()
}

fn close(name: &str, stat: &str, got: Option<f64>, want: &Value) {
    match (got, want.as_f64()) {
        (None, None) => {}
        (Some(g), Some(w)) => assert!(
            (g - w).abs() <= 1e-6,
            "{name} {stat}: scorestream {g}, scipy/numpy {w}"
        ),
        (g, _) => panic!("{name} {stat}: scorestream {g:?}, scipy/numpy {want}"),
    }
}

#[test]
fn statistics_match_scipy_and_numpy_within_1e_6() {
    let mut checked = 0;
    for case in cases() {
        let name = case["name"].as_str().expect("name");
        let expected = &case["expected"];
        let window = case["window"].as_array().expect("window");
        let total = window.len() as u64;
        let missing = window.iter().filter(|v| v.is_null()).count() as u64;
        let (stats, counts) = match case["kind"].as_str() {
            Some("numeric") => {
                let profile: NumericProfile =
                    serde_json::from_value(case["reference"].clone()).expect("profile");
                assert!(profile.problems().is_empty(), "{name}");
                let mut values: Vec<f64> = window.iter().filter_map(Value::as_f64).collect();
                let counts = profile.bin_counts(&values);
                (
                    profile.compare(&counts, &mut values, missing, total),
                    counts,
                )
            }
            _ => {
                let profile: CategoricalProfile =
                    serde_json::from_value(case["reference"].clone()).expect("profile");
                let mut counts = vec![0u64; profile.categories.len() + 1];
                for v in window.iter().filter_map(Value::as_str) {
                    counts[profile.slot(v)] += 1;
                }
                (profile.compare(&counts, missing, total), counts)
            }
        };
        let want_counts: Vec<u64> =
            serde_json::from_value(expected["window_counts"].clone()).expect("counts");
        assert_eq!(counts, want_counts, "{name}: window bin counts");
        for s in Statistic::ALL {
            if let Some(want) = expected.get(s.name()) {
                close(name, s.name(), stats.get(s), want);
                checked += 1;
            } else {
                assert_eq!(stats.get(s), None, "{name} {}: not for this kind", s.name());
            }
        }
    }
    assert_eq!(checked, 10 * 5 + 4 * 5);
}

#[test]
fn identical_samples_have_no_drift_and_disjoint_ones_the_maximum() {
    let a = [1.0, 2.0, 2.0, 3.0];
    assert_eq!(ks_statistic(&a, &a), 0.0);
    assert_eq!(wasserstein(&a, &a), 0.0);
    assert_eq!(psi(&[5, 5], &[5, 5]), 0.0);
    assert_eq!(js_distance(&[5, 5], &[5, 5]), 0.0);
    assert_eq!(ks_statistic(&[1.0, 2.0], &[10.0, 11.0]), 1.0);
    assert!((js_distance(&[1, 0], &[0, 1]) - std::f64::consts::LN_2.sqrt()).abs() < 1e-12);
    assert_eq!(bin_index(&[1.0, 2.0], 1.0), 0);
    assert_eq!(bin_index(&[1.0, 2.0], 1.5), 1);
    assert_eq!(bin_index(&[1.0, 2.0], 9.0), 2);
}

#[test]
fn broken_profiles_say_what_is_wrong() {
    let p = NumericProfile {
        edges: vec![2.0, 1.0],
        counts: vec![1, 2],
        sample: vec![3.0, 1.0],
        missing: 0,
        total: 3,
    };
    let problems = p.problems().join("; ");
    assert!(problems.contains("2 edges need 3 counts"), "{problems}");
    assert!(problems.contains("strictly increasing"), "{problems}");
    assert!(problems.contains("sorted"), "{problems}");
}

fn profile_of(cases: &[Value], names: &[&str]) -> ReferenceProfile {
    let mut columns = std::collections::BTreeMap::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        if !names.contains(&name) {
            continue;
        }
        let p = match case["kind"].as_str() {
            Some("numeric") => ColumnProfile::Numeric(
                serde_json::from_value(case["reference"].clone()).expect("p"),
            ),
            _ => ColumnProfile::Categorical(
                serde_json::from_value(case["reference"].clone()).expect("p"),
            ),
        };
        columns.insert(name.to_owned(), p);
    }
    ReferenceProfile {
        source: "fixture".into(),
        rows: 0,
        columns,
    }
}

/// A window fed batch by batch gives the statistics of its rows (the
/// scipy-checked ones), and beyond its cap keeps a bounded sample.
#[test]
fn a_window_accumulates_batches_into_the_fixture_statistics() {
    use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let cases = cases();
    let pick = |name: &str| {
        cases
            .iter()
            .find(|c| c["name"] == name)
            .expect(name)
            .clone()
    };
    let (num, cat) = (pick("with_nulls"), pick("categorical_unseen_and_missing"));
    let profile = profile_of(&cases, &["with_nulls", "categorical_unseen_and_missing"]);
    let nums: Vec<Option<f64>> = num["window"]
        .as_array()
        .expect("w")
        .iter()
        .map(Value::as_f64)
        .collect();
    let cats: Vec<Option<&str>> = cat["window"]
        .as_array()
        .expect("w")
        .iter()
        .map(Value::as_str)
        .collect();
    let n = nums.len().min(cats.len());
    let batch = RecordBatch::try_from_iter([
        (
            "with_nulls",
            Arc::new(Float64Array::from(nums[..n].to_vec())) as ArrayRef,
        ),
        (
            "categorical_unseen_and_missing",
            Arc::new(StringArray::from(cats[..n].to_vec())) as ArrayRef,
        ),
    ])
    .expect("batch");
    let columns = [
        "with_nulls".to_owned(),
        "categorical_unseen_and_missing".to_owned(),
    ];
    let mut w = Window::new(&profile, &columns, 100_000, 1);
    for start in (0..n).step_by(97) {
        w.add(&batch, start, (start + 97).min(n), 0);
    }
    assert_eq!(w.rows, n as u64);
    let got = w.close();

    // The same rows compared directly.
    let ColumnProfile::Numeric(np) = &profile.columns["with_nulls"] else {
        panic!()
    };
    let mut values: Vec<f64> = nums[..n].iter().flatten().copied().collect();
    let missing = nums[..n].iter().filter(|v| v.is_none()).count() as u64;
    let num_counts = np.bin_counts(&values);
    assert_eq!(
        got[0].stats,
        np.compare(&num_counts, &mut values, missing, n as u64)
    );
    assert_eq!(got[0].rows, n as u64);
    let ColumnProfile::Categorical(cp) = &profile.columns["categorical_unseen_and_missing"] else {
        panic!()
    };
    let mut counts = vec![0; cp.categories.len() + 1];
    for v in cats[..n].iter().flatten() {
        counts[cp.slot(v)] += 1;
    }
    let missing = cats[..n].iter().filter(|v| v.is_none()).count() as u64;
    assert_eq!(got[1].stats, cp.compare(&counts, missing, n as u64));
    assert_eq!(got[1].counts, counts);

    // Past the cap the window holds a sample: statistics stay close.
    let mut small = Window::new(&profile, &columns, 200, 1);
    small.add(&batch, 0, n, 0);
    let sampled = small.close();
    let (full, part) = (
        got[0].stats.ks.expect("ks"),
        sampled[0].stats.ks.expect("ks"),
    );
    assert!((full - part).abs() < 0.1, "KS {full} vs sampled {part}");
    // Bins count every row, whatever the sample's size.
    assert_eq!(sampled[0].counts, num_counts);
    assert_eq!(sampled[0].stats.psi, got[0].stats.psi);
}

/// A window fifty times its sample: the bin and category counts, PSI,
/// Jensen-Shannon and chi-square are those of every row (numpy's counts
/// and scipy's values, from the fixture, for the window repeated fifty
/// times: shares do not change, and chi-square grows fiftyfold), and only
/// KS and Wasserstein come from the sample.
#[test]
fn counts_psi_js_and_chi_square_cover_the_full_window_beyond_the_sample() {
    use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    const TIMES: u64 = 50;
    let cases = cases();
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let window = case["window"].as_array().expect("w");
        let column: ArrayRef = if case["kind"] == "numeric" {
            Arc::new(Float64Array::from_iter(window.iter().map(Value::as_f64)))
        } else {
            Arc::new(StringArray::from_iter(window.iter().map(Value::as_str)))
        };
        let batch = RecordBatch::try_from_iter([(name, column)]).expect("batch");
        let profile = profile_of(&cases, &[name]);
        let mut w = Window::new(&profile, &[name.to_owned()], window.len().div_ceil(2), 3);
        for _ in 0..TIMES {
            w.add(&batch, 0, window.len(), 0);
        }
        let got = w.close().remove(0);
        let expected = &case["expected"];
        let want: Vec<u64> =
            serde_json::from_value(expected["window_counts"].clone()).expect("counts");
        let want: Vec<u64> = want.iter().map(|c| c * TIMES).collect();
        assert_eq!(got.counts, want, "{name}: counts over the full window");
        let scale = |s: Statistic| match s {
            Statistic::ChiSquare => TIMES as f64,
            _ => 1.0,
        };
        for s in [Statistic::Psi, Statistic::JsDistance, Statistic::ChiSquare] {
            let (g, e) = (
                got.stats.get(s),
                expected.get(s.name()).and_then(Value::as_f64),
            );
            assert!(
                match (g, e) {
                    (Some(g), Some(e)) =>
                        (g - e * scale(s)).abs() <= 1e-12 * (e * scale(s)).max(1.0),
                    (g, e) => g.is_none() && e.is_none(),
                },
                "{name} {}: {g:?} vs scipy/numpy {e:?} x {}",
                s.name(),
                scale(s)
            );
        }
        let sampled = expected.get("ks").is_some_and(Value::is_f64);
        assert_eq!(got.stats.ks.is_some(), sampled, "{name}");
    }
}
