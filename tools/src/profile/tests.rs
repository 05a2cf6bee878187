use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;

use super::*;

/// 1,010 rows: `amount` 0..999 shuffled plus 10 nulls, `count` a few
/// distinct integers, `channel` with known frequencies and 6 nulls, and a
/// `ts` timestamp-like string column of distinct values.
fn write_reference(path: &Path) -> (Vec<f64>, Vec<i64>) {
    let n = 1_010;
    let amount: Vec<Option<f64>> = (0..n)
        .map(|i| (i % 101 != 100).then(|| ((i * 37) % 1000) as f64))
        .collect();
    let count: Vec<i64> = (0..n).map(|i| (i % 4) as i64).collect();
    let channel: Vec<Option<&str>> = (0..n)
        .map(|i| match i % 10 {
            0..=4 => Some("pos"),
            5..=7 => Some("web"),
            8 if i % 20 == 8 => Some("mail"),
            8 => Some("atm"),
            _ if (i / 10) % 20 == 0 => None,
            _ => Some("mobile"),
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("amount", DataType::Float64, true),
        Field::new("count", DataType::Int64, false),
        Field::new("channel", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Float64Array::from(amount.clone())) as ArrayRef,
            Arc::new(Int64Array::from(count.clone())),
            Arc::new(StringArray::from(channel)),
        ],
    )
    .expect("batch");
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).expect("file"), schema, None)
        .expect("writer");
    // Several row groups, so the scan streams more than one batch.
    for start in (0..n).step_by(300) {
        w.write(&batch.slice(start, 300.min(n - start)))
            .expect("write");
        w.flush().expect("flush");
    }
    w.close().expect("close");
    (amount.into_iter().flatten().collect(), count)
}

#[tokio::test]
async fn a_profile_holds_bins_samples_and_frequencies_of_the_reference() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("train.parquet");
    let (amounts, counts) = write_reference(&path);
    let mut opts = ProfileOptions::new(&path);
    opts.sample = 500;
    opts.top = 3;
    let p = build_profile(&opts).await.expect("profile");
    assert_eq!(p.rows, 1_010);

    let ColumnProfile::Numeric(a) = &p.columns["amount"] else {
        panic!("amount is numeric")
    };
    assert_eq!((a.missing, a.total), (10, 1_010));
    assert_eq!(a.edges.len(), 9, "{:?}", a.edges);
    for (i, e) in a.edges.iter().enumerate() {
        let decile = 100.0 * (i + 1) as f64;
        assert!((e - decile).abs() < 15.0, "edge {i} = {e}, decile {decile}");
    }
    // DataFusion's bin counts are the drift operator's binning of the data.
    assert_eq!(a.counts, a.bin_counts(&amounts));
    assert_eq!(a.sample.len(), 500);
    assert!(a.sample.windows(2).all(|w| w[0] <= w[1]));
    assert!(a.sample.iter().all(|v| amounts.contains(v)));

    let ColumnProfile::Numeric(c) = &p.columns["count"] else {
        panic!("count is numeric")
    };
    let all: Vec<f64> = counts.iter().map(|&v| v as f64).collect();
    assert_eq!(
        c.counts,
        c.bin_counts(&all),
        "ties collapse edges: {:?}",
        c.edges
    );
    assert!(c.edges.windows(2).all(|w| w[0] < w[1]));

    let ColumnProfile::Categorical(ch) = &p.columns["channel"] else {
        panic!("channel is categorical")
    };
    assert_eq!(ch.categories, ["pos", "web", "mobile"]);
    assert_eq!(ch.counts, [505, 303, 95]);
    assert_eq!((ch.other, ch.missing, ch.total), (101, 6, 1_010));

    // The same input and seed give the same profile, and it round-trips.
    assert_eq!(build_profile(&opts).await.expect("again"), p);
    let saved = dir.path().join("profile.json");
    save_profile(&p, &saved).expect("save");
    let loaded = ReferenceProfile::load(&saved).expect("load");
    // serde_json parses some decimals 1 ulp off (no `float_roundtrip`).
    for (name, c) in &p.columns {
        match (c, &loaded.columns[name]) {
            (ColumnProfile::Numeric(a), ColumnProfile::Numeric(b)) => {
                assert_eq!(
                    (&a.counts, a.missing, a.total),
                    (&b.counts, b.missing, b.total)
                );
                for (x, y) in a
                    .edges
                    .iter()
                    .chain(&a.sample)
                    .zip(b.edges.iter().chain(&b.sample))
                {
                    assert!(
                        (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                        "{name}: {x} vs {y}"
                    );
                }
            }
            (a, b) => assert_eq!(a, b),
        }
    }
}

#[tokio::test]
async fn bad_inputs_and_options_name_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("train.parquet");
    write_reference(&path);
    let mut opts = ProfileOptions::new(&path);
    opts.columns = vec!["amount".into(), "amout".into()];
    let e = build_profile(&opts).await.expect_err("typo").to_string();
    assert!(
        e.contains("`amout` is not a column") && e.contains("amount, count, channel"),
        "{e}"
    );

    let e = build_profile(&ProfileOptions::new(dir.path().join("none.parquet")))
        .await
        .expect_err("missing file")
        .to_string();
    assert!(e.contains("none.parquet"), "{e}");

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, r#"{"source":"x","rows":3,"columns":{"a":{"kind":"numeric","edges":[2.0,1.0],"counts":[1,1,1],"sample":[],"missing":0,"total":3}}}"#).expect("write");
    let e = ReferenceProfile::load(&broken)
        .expect_err("unsorted edges")
        .to_string();
    assert!(
        e.contains("column `a`") && e.contains("strictly increasing"),
        "{e}"
    );
}

/// numpy's counts of `column` of the Parquet file at `path` in the bins of
/// `edges` (`searchsorted(edges, v, "left")`, the drift operator's binning),
/// or None (said loudly) where python3 with numpy and pyarrow is missing
/// outside CI.
fn numpy_counts(path: &Path, column: &str, edges: &[f64]) -> Option<Vec<u64>> {
    const SCRIPT: &str = "import sys, json, numpy as np, pyarrow.parquet as pq\n\
        v = pq.read_table(sys.argv[1]).column(sys.argv[2]).drop_null().to_numpy()\n\
        edges = np.array(json.loads(sys.argv[3]), dtype=float)\n\
        bins = np.searchsorted(edges, v.astype(float), side='left')\n\
        print(json.dumps(np.bincount(bins, minlength=len(edges) + 1).tolist()))\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(path)
        .arg(column)
        .arg(serde_json::to_string(edges).expect("edges"))
        .output();
    match out {
        Ok(o) if o.status.success() => Some(serde_json::from_slice(&o.stdout).expect("counts")),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("python3 with numpy and pyarrow is needed: {out:?}")
        }
        _ => {
            eprintln!("SKIPPED: python3 with numpy and pyarrow not found");
            None
        }
    }
}

#[tokio::test]
async fn integer_columns_get_integer_edges_and_numpys_counts() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("visits.parquet");
    // Skewed integers over a wide range: their quantiles fall between
    // integers.
    let visits: Vec<i64> = (0..5_000i64).map(|i| (i * i) % 997 + i / 50).collect();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "visits",
        DataType::Int64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(visits.clone())) as ArrayRef],
    )
    .expect("batch");
    let mut w = ArrowWriter::try_new(std::fs::File::create(&path).expect("file"), schema, None)
        .expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");

    let mut opts = ProfileOptions::new(&path);
    opts.bins = 10;
    let p = build_profile(&opts).await.expect("profile");
    let ColumnProfile::Numeric(v) = &p.columns["visits"] else {
        panic!("visits is numeric")
    };
    assert!(v.edges.len() >= 5, "{:?}", v.edges);
    assert!(
        v.edges.iter().all(|e| e.fract() == 0.0),
        "integer edges: {:?}",
        v.edges
    );
    assert!(v.problems().is_empty(), "{:?}", v.problems());
    let all: Vec<f64> = visits.iter().map(|&x| x as f64).collect();
    assert_eq!(v.counts, v.bin_counts(&all), "the drift operator's bins");
    if let Some(numpy) = numpy_counts(&path, "visits", &v.edges) {
        assert_eq!(v.counts, numpy, "numpy's counts with those edges");
    }
}
