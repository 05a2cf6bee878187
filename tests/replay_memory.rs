//! `scorestream replay` streams: replaying far more dead-letter bytes than
//! a fixed memory bound stays under that bound, against a real broker
//! (tansu). A counting global allocator (this test binary only) measures
//! the peak of live heap bytes, on every thread, while the replay runs
//! (librdkafka's own buffers, outside Rust's heap, are bounded by the one
//! batch awaited before the next is read). A global allocator is `unsafe`
//! by its trait; it only counts and defers to the system's.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::tansu::Tansu;
use parquet::file::properties::WriterProperties;
use scorestream_operators::sink::parquet::{DEAD_LETTERS_DIR, write_synced};
use scorestream_operators::source::kafka::KafkaSourceConfig;
use scorestream_schemas::{
    DeadLetter, DeadLetterBuilder, DeadLetterStage, KafkaHeader, ReasonCode,
};
use scorestream_tools::replay::{Progress, ReplayOptions, replay};

/// Live heap bytes now, and the most there were since the last reset.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; this only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc`, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const LETTERS: usize = 6_000;
const VALUE_BYTES: usize = 16 << 10;
/// Per file: 500 letters, 8 MiB of values.
const PER_FILE: usize = 500;
/// The bound: well under the ~94 MiB of values held at once.
const BOUND: usize = 40 << 20;

fn letter(i: usize) -> DeadLetter {
    let mut raw = vec![0u8; VALUE_BYTES];
    let mut x = i as u64 * 0x9e37_79b9_7f4a_7c15 + 1;
    for b in raw.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    DeadLetter {
        raw,
        key: Some(format!("k{i}").into_bytes()),
        headers: vec![KafkaHeader {
            key: "h".into(),
            value: Some(b"v".to_vec()),
        }],
        topic: "tx".into(),
        partition: 0,
        offset: i as i64,
        source_timestamp_ms: Some(1_700_000_000_000),
        stage: DeadLetterStage::Parse,
        reason_code: ReasonCode::InvalidJson,
        reason: "not valid JSON".into(),
        rejected_at_ms: 1_700_000_000_000,
    }
}

#[test]
fn replay_streams_more_dead_letters_than_a_fixed_bound_holds() {
    let broker = Tansu::start();
    broker.create_topic("tx", 1);
    let out = tempfile::tempdir().expect("tmp");
    let dir = out.path().join(DEAD_LETTERS_DIR);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for file in 0..LETTERS / PER_FILE {
        let mut b = DeadLetterBuilder::default();
        for i in file * PER_FILE..(file + 1) * PER_FILE {
            b.push(&letter(i));
        }
        write_synced(
            &dir.join(format!("tx+0+{:020}.parquet", file * PER_FILE)),
            &b.finish().expect("batch"),
            &WriterProperties::default(),
        )
        .expect("write");
    }
    const _: () = assert!(
        LETTERS * VALUE_BYTES > 2 * BOUND,
        "replays more than the bound"
    );
    let source: KafkaSourceConfig = toml::from_str(&format!(
        "brokers = \"{}\"\ntopics = [\"tx\"]\ngroup_id = \"g\"",
        broker.brokers
    ))
    .expect("source");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let mut batches = 0;
    let report = rt
        .block_on(replay(
            &source,
            out.path(),
            &ReplayOptions::default(),
            &mut |p| batches += usize::from(matches!(p, Progress::Batch(_))),
        ))
        .expect("replay");
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert_eq!((report.found, report.resubmitted), (LETTERS, LETTERS));
    assert!(
        batches > LETTERS / 1_000,
        "progress came batch by batch: {batches}"
    );
    assert!(
        peak < BOUND,
        "replaying {} MiB of dead letters peaked at {} MiB of heap; the bound is {} MiB",
        (LETTERS * VALUE_BYTES) >> 20,
        peak >> 20,
        BOUND >> 20
    );
    eprintln!("replay heap peak: {} MiB", peak >> 20);
}
