//! The hot path allocates per batch, never per event: decoding, joining
//! features and coalescing 16 times as many demo events must not take
//! more heap allocations than a few per batch. A counting global
//! allocator (this test binary only) counts them on this thread.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use scorestream_operators::batch::Coalescer;
use scorestream_operators::decode::{Decoder, JsonDecoder};
use scorestream_operators::features::{FeatureJoin, FileFeatureStore, JoinPolicy, OnMissing};
use scorestream_operators::source::kafka::RawChunk;
use scorestream_pipeline::config::load_file;
use scorestream_schemas::EventSchema;
use scorestream_tools::demo::{EMBEDDED, demo_world, generator_options};
use scorestream_tools::synth::{EventGen, GenOptions};

fn chunk(rows: usize, opts: GenOptions) -> RawChunk {
    let world = demo_world(&EMBEDDED).expect("world");
    let mut g = EventGen::new(&world, opts);
    let mut c = RawChunk::with_capacity(rows);
    let (mut buf, mut key) = (String::new(), String::new());
    let topic: Arc<str> = "transactions".into();
    for i in 0..rows {
        g.next_into(&mut buf, &mut key);
        c.push(&topic, 0, i as i64, 0, Some(key.as_bytes()), buf.as_bytes());
    }
    c.coverage
        .extend(&topic, 0, 0..rows as i64)
        .expect("coverage");
    c
}

/// Heap allocations to decode, join and coalesce one chunk of `rows` events.
fn allocations(rows: usize, opts: GenOptions) -> (u64, usize) {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/demo");
    let job = load_file(&demo.join("job.toml")).expect("demo job");
    let decoder = JsonDecoder::new(
        EventSchema::try_new(job.schema.fields.clone()).expect("schema"),
        1 << 16,
    );
    let store =
        Arc::new(FileFeatureStore::load(&demo.join("features.csv"), "account_id").expect("store"));
    let join = FeatureJoin::try_new(
        store,
        decoder.output_schema(),
        "account_id",
        JoinPolicy::on_missing(OnMissing::Null),
    )
    .expect("join");
    let mut coalescer = Coalescer::new(
        join.output_schema().clone(),
        1 << 20,
        Duration::from_secs(1),
    )
    .expect("coalescer");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let raw = chunk(rows, opts);
    let now = tokio::time::Instant::now();
    // Once outside the count: lazily built state (arrow's parsers, tokio's
    // thread-locals) is not per event either way.
    let warm = rt.block_on(join.process(decoder.decode(&raw).expect("decode")));
    drop(warm);
    let mut out = None;
    let info = allocation_counter::measure(|| {
        let decoded = decoder.decode(&raw).expect("decode");
        let joined = rt.block_on(join.process(decoded)).expect("join");
        coalescer.push(joined, now).expect("push");
        out = coalescer.flush().expect("flush");
    });
    let rows_out = out.map_or(0, |e| e.rows() + e.dead_letters.len());
    assert_eq!(
        rows_out, rows,
        "every event came out, as a row or a dead letter"
    );
    (info.count_total, rows)
}

#[test]
fn decode_join_and_batch_allocate_per_batch_not_per_event() {
    let clean = GenOptions {
        malformed_rate: 0.0,
        ..generator_options(3)
    };
    let (small, n_small) = allocations(1_024, clean.clone());
    let (large, n_large) = allocations(16_384, clean);
    let per_event = large.saturating_sub(small) as f64 / (n_large - n_small) as f64;
    eprintln!(
        "allocations: {small} for {n_small} events, {large} for {n_large} ({per_event:.4} per extra event)"
    );
    assert!(
        per_event < 0.01,
        "{large} allocations for {n_large} events against {small} for {n_small}: {per_event:.3} per event"
    );
}

/// The demo's malformed events (0.2%) are dead letters: each owns its raw
/// bytes and reason, so it costs a few allocations of its own, but the
/// events around it still cost none.
#[test]
fn only_dead_letters_allocate_for_themselves() {
    let (small, n_small) = allocations(1_024, generator_options(3));
    let (large, n_large) = allocations(16_384, generator_options(3));
    let per_event = large.saturating_sub(small) as f64 / (n_large - n_small) as f64;
    eprintln!(
        "with dead letters: {small} for {n_small}, {large} for {n_large} ({per_event:.4} per extra event)"
    );
    assert!(per_event < 0.1, "{per_event:.3} allocations per event");
}
