//! Per-operator throughput on seeded demo data. Run with
//! `cargo bench --bench operators`; setup is outside the timed loops.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int32Type;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use object_store::memory::InMemory;
use scorestream_operators::batch::Coalescer;
use scorestream_operators::decode::{Decoder, JsonDecoder};
use scorestream_operators::drift::Window;
use scorestream_operators::features::{FeatureJoin, FileFeatureStore, JoinPolicy, OnMissing};
use scorestream_operators::scorer::{InputMatrix, ModelPackage, Scorer};
use scorestream_operators::sink::parquet::{
    ObjectUrl, OutputPath, ParquetSink, ParquetSinkConfig, PartitionSpec, Store,
};
use scorestream_operators::source::kafka::RawChunk;
use scorestream_operators::{Coverage, Envelope};
use scorestream_pipeline::config::load_file;
use scorestream_schemas::{EventSchema, columns};
use scorestream_tools::demo::{EMBEDDED, demo_world, generator_options};
use scorestream_tools::synth::EventGen;

const ROWS: usize = 16_384;

fn chunk(rows: usize) -> RawChunk {
    let world = demo_world(&EMBEDDED).expect("world");
    let mut g = EventGen::new(&world, generator_options(3));
    let mut c = RawChunk::with_capacity(rows);
    let (mut buf, mut key) = (String::new(), String::new());
    for i in 0..rows {
        g.next_into(&mut buf, &mut key);
        c.push(
            "transactions",
            (i % 6) as i32,
            i as i64,
            0,
            Some(key.as_bytes()),
            buf.as_bytes(),
        );
    }
    c
}

fn operators(c: &mut Criterion) {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/demo");
    let job = load_file(&demo.join("job.toml")).expect("demo job");
    let decoder = JsonDecoder::new(
        EventSchema::try_new(job.schema.fields.clone()).expect("schema"),
        1 << 16,
    );
    let raw = chunk(ROWS);
    let store =
        Arc::new(FileFeatureStore::load(&demo.join("features.csv"), "account_id").expect("store"));
    let join = FeatureJoin::try_new(
        store,
        decoder.output_schema(),
        "account_id",
        JoinPolicy::on_missing(OnMissing::Null),
    )
    .expect("join");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let decoded = decoder.decode(&raw).expect("decode");
    let joined = rt
        .block_on(join.process(decoder.decode(&raw).expect("decode")))
        .expect("join");
    let package =
        ModelPackage::load(&demo.join("model"), &candle_core::Device::Cpu).expect("model");
    let input =
        InputMatrix::bind(&package.manifest.inputs, join.output_schema()).expect("model inputs");
    let scorer =
        Scorer::new(package, candle_core::Device::Cpu, join.output_schema()).expect("scorer");

    let mut g = c.benchmark_group("operators");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("decode_json", |b| {
        b.iter(|| decoder.decode(&raw).expect("decode"))
    });
    g.bench_function("feature_join", |b| {
        b.iter_batched(
            || Envelope {
                batch: decoded.batch.clone(),
                ..Default::default()
            },
            |e| rt.block_on(join.process(e)).expect("join"),
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("coalesce_4x4096", |b| {
        let batch = joined.batch.clone().expect("rows");
        b.iter(|| {
            let quarter = batch.num_rows() / 4;
            let mut co = Coalescer::new(
                join.output_schema().clone(),
                quarter * 4,
                Duration::from_secs(1),
            )
            .expect("provenance columns");
            let now = tokio::time::Instant::now();
            let mut out = Vec::new();
            for i in 0..4 {
                let part = batch.slice(i * quarter, quarter);
                out.extend(
                    co.push(
                        Envelope {
                            batch: Some(part),
                            ..Default::default()
                        },
                        now,
                    )
                    .expect("push"),
                );
            }
            out
        })
    });
    // The part of scoring that reads the batch: the demo model's 20 inputs,
    // nine numeric (four through log1p) and eleven string comparisons.
    g.bench_function("model_input_20", |b| {
        let batch = joined.batch.clone().expect("rows");
        b.iter(|| input.build(&batch).expect("input"))
    });
    g.bench_function("score_mlp_20_64_32_1", |b| {
        let batch = joined.batch.clone().expect("rows");
        b.iter(|| scorer.scores(&batch).expect("score"))
    });
    // The drift operator's work for a window of these rows: accumulate
    // every watched column, then compare each with the reference.
    let profile =
        scorestream_operators::drift::ReferenceProfile::load(&demo.join("drift-profile.json"))
            .expect("profile");
    let columns: Vec<String> = profile.columns.keys().cloned().collect();
    let scored = scorer
        .process(Envelope {
            batch: joined.batch.clone(),
            ..Default::default()
        })
        .expect("score")
        .batch
        .expect("rows");
    g.bench_function("drift_window_9_columns", |b| {
        b.iter(|| {
            let mut w = Window::new(&profile, &columns, 20_000, 0);
            w.add(&scored, 0, scored.num_rows(), 0);
            w.close()
        })
    });
    g.finish();
    sink(c, &job, scored);
    // Eight distinct 16k-row batches: replaying one batch would make every
    // column's dictionary a perfect fit, which real streams are not.
    let raw = chunk(8 * ROWS);
    let joined = rt
        .block_on(join.process(decoder.decode(&raw).expect("decode")))
        .expect("join");
    let scored = scorer.process(joined).expect("score").batch.expect("rows");
    sink_steady(c, &job, &scored);
}

/// The demo job's Hive partitioning over the scored schema.
fn partition_spec(
    job: &scorestream_pipeline::config::JobConfig,
    scored: &RecordBatch,
) -> PartitionSpec {
    PartitionSpec::new(
        &job.sink.partition_by,
        &job.sink.partition_time,
        &scored.schema(),
    )
    .expect("partitions")
}

/// A sink on a fresh temporary directory, kept alive with it;
/// `encode_threads` as in the job config (`None`: one per core).
fn local_sink(
    spec: &PartitionSpec,
    encode_threads: Option<usize>,
) -> (tempfile::TempDir, ParquetSink) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut config = ParquetSinkConfig::at(dir.path());
    config.encode_threads = encode_threads;
    let sink = ParquetSink::open(&config, spec.clone()).expect("sink");
    (dir, sink)
}

/// The Parquet sink's whole path for one batch: split into Hive partitions,
/// encode into open files, commit (entry, publish). Each iteration writes
/// to a fresh output, set up outside the timed part.
fn sink(c: &mut Criterion, job: &scorestream_pipeline::config::JobConfig, scored: RecordBatch) {
    let spec = partition_spec(job, &scored);
    let topic: Arc<str> = "transactions".into();
    let mut coverage = Coverage::default();
    for p in 0..6 {
        coverage
            .extend(&topic, p, 0..ROWS as i64)
            .expect("coverage");
    }
    let envelope = || Envelope {
        batch: Some(scored.clone()),
        coverage: coverage.clone(),
        ..Default::default()
    };
    let write = |mut s: ParquetSink| {
        s.write(envelope()).expect("write");
        s.flush().expect("commit")
    };
    let mut g = c.benchmark_group("sink");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.measurement_time(Duration::from_secs(5));
    // The batch splits into six files (one per Kafka partition), encoded
    // side by side; `_one_encode_thread` is the same on the sink's thread.
    for (name, threads) in [
        ("parquet_local_16k", None),
        ("parquet_local_16k_one_encode_thread", Some(1)),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || local_sink(&spec, threads),
                |(dir, s)| (dir, write(s)),
                criterion::BatchSize::PerIteration,
            )
        });
    }
    // The object store path (spool, upload, conditional put, copy) against
    // object_store's in-memory store: the cost of the protocol without a
    // network.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    g.bench_function("parquet_object_store_in_memory_16k", |b| {
        b.iter_batched(
            || {
                let spool = tempfile::tempdir().expect("tmp");
                let url = ObjectUrl::parse("s3://bench/out").expect("url");
                let _in_runtime = rt.enter();
                let store = Store::object(Arc::new(InMemory::new()), url.clone(), spool.path())
                    .expect("store");
                let config = ParquetSinkConfig::at_output(OutputPath::Object(url));
                let sink = ParquetSink::open_in(store, &config, spec.clone()).expect("sink");
                (spool, sink)
            },
            |(spool, s)| (spool, write(s)),
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Steady state: files stay open across eight batches of distinct rows, as
/// in a running job, so encoding dominates and file setup and commit are
/// paid once per 131,072 rows. One Kafka partition (one file), then six
/// (six files per batch, encoded side by side or on the sink's thread).
fn sink_steady(
    c: &mut Criterion,
    job: &scorestream_pipeline::config::JobConfig,
    scored: &RecordBatch,
) {
    let spec = partition_spec(job, scored);
    let topic: Arc<str> = "transactions".into();
    let mut g = c.benchmark_group("sink");
    g.throughput(Throughput::Elements(scored.num_rows() as u64));
    g.measurement_time(Duration::from_secs(5));
    for (name, partitions, threads) in [
        ("parquet_local_8x16k_one_file", 1, None),
        ("parquet_local_8x16k_six_files", 6, None),
        (
            "parquet_local_8x16k_six_files_one_encode_thread",
            6,
            Some(1),
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || local_sink(&spec, threads),
                |(dir, mut s)| {
                    // The sink checks that each partition's ranges chain and
                    // count its rows, not which offsets the rows hold.
                    let mut next = vec![0i64; partitions as usize];
                    for k in 0..scored.num_rows().div_ceil(ROWS) {
                        let first = k * ROWS;
                        let rows = scored.slice(first, ROWS.min(scored.num_rows() - first));
                        let mut coverage = Coverage::default();
                        for (p, n) in rows_per_partition(&rows, partitions) {
                            let start = next[p as usize];
                            next[p as usize] += n;
                            coverage
                                .extend(&topic, p, start..start + n)
                                .expect("coverage");
                        }
                        s.write(Envelope {
                            batch: Some(rows),
                            coverage,
                            ..Default::default()
                        })
                        .expect("write");
                    }
                    (dir, s.flush().expect("commit"))
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// Rows of each Kafka partition `0..partitions` in the batch; with one
/// partition, every row counts as partition 0's (the sink does not split).
fn rows_per_partition(rows: &RecordBatch, partitions: i32) -> Vec<(i32, i64)> {
    if partitions == 1 {
        return vec![(0, rows.num_rows() as i64)];
    }
    let col = rows
        .column_by_name(columns::SOURCE_PARTITION)
        .expect("source_partition")
        .as_primitive::<Int32Type>();
    (0..partitions)
        .map(|p| (p, col.values().iter().filter(|&&v| v == p).count() as i64))
        .collect()
}

criterion_group!(benches, operators);
criterion_main!(benches);
