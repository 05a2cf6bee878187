use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use proptest::prelude::*;
use scorestream_schemas::{DeadLetter, DeadLetterStage, columns};
use tokio::time::Instant;

use super::*;
use crate::queue::channel;
use crate::{Coverage, Envelope};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("v", DataType::Int64, false),
        Field::new(columns::SOURCE_TOPIC, DataType::Utf8, false),
        Field::new(columns::SOURCE_PARTITION, DataType::Int32, false),
        Field::new(columns::SOURCE_OFFSET, DataType::Int64, false),
    ]))
}

/// One message of a test input: its partition, offset and whether it is a
/// good row (else a dead letter).
#[derive(Debug, Clone, Copy)]
struct Msg {
    partition: i32,
    offset: i64,
    row: bool,
}

/// An envelope holding `msgs`, covering each partition from `starts` (the
/// previous input's end) to its last message.
fn envelope(msgs: &[Msg], starts: &mut BTreeMap<i32, i64>) -> Envelope {
    let t: Arc<str> = "t".into();
    let rows: Vec<&Msg> = msgs.iter().filter(|m| m.row).collect();
    let batch = (!rows.is_empty()).then(|| {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(
                    rows.iter()
                        .map(|m| m.partition as i64 * 1_000_000 + m.offset),
                )),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "t"))),
                Arc::new(Int32Array::from_iter_values(
                    rows.iter().map(|m| m.partition),
                )),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|m| m.offset))),
            ],
        )
        .expect("batch")
    });
    let dead_letters = msgs
        .iter()
        .filter(|m| !m.row)
        .map(|m| DeadLetter {
            raw: vec![],
            key: None,
            topic: t.clone(),
            partition: m.partition,
            offset: m.offset,
            stage: DeadLetterStage::Parse,
            reason: "x".into(),
            rejected_at_ms: 0,
            headers: Vec::new(),
            source_timestamp_ms: None,
            reason_code: scorestream_schemas::ReasonCode::InvalidJson,
        })
        .collect();
    let mut coverage = Coverage::default();
    for m in msgs {
        let start = starts.get(&m.partition).copied().unwrap_or(m.offset);
        coverage
            .extend(&t, m.partition, start..m.offset + 1)
            .expect("in order");
        starts.insert(m.partition, m.offset + 1);
    }
    Envelope {
        batch,
        dead_letters,
        coverage,
        flush: false,
        fetched_at: None,
        busy: Duration::ZERO,
        origin: None,
    }
}

/// `rows` good messages of partition 0 from `first`.
fn input(first: i64, rows: usize) -> Envelope {
    let msgs: Vec<Msg> = (0..rows as i64)
        .map(|i| Msg {
            partition: 0,
            offset: first + i,
            row: true,
        })
        .collect();
    envelope(&msgs, &mut BTreeMap::new())
}

fn values(e: &Envelope) -> Vec<i64> {
    e.batch
        .as_ref()
        .map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .unwrap_or_default()
}

fn coalescer(max_rows: usize, wait_ms: u64) -> Coalescer {
    Coalescer::new(schema(), max_rows, Duration::from_millis(wait_ms)).expect("provenance columns")
}

fn range(e: &Envelope, partition: i32) -> Option<std::ops::Range<i64>> {
    e.coverage.get("t", partition).cloned()
}

#[test]
fn emits_exactly_max_rows_and_splits_coverage_where_rows_split() {
    let mut c = coalescer(10, 1000);
    let now = Instant::now();
    assert!(c.push(input(0, 7), now).expect("push").is_empty());
    let out = c.push(input(7, 25), now).expect("push");
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|e| e.rows() == 10));
    assert_eq!(values(&out[0]), (0..10).collect::<Vec<_>>());
    assert_eq!(range(&out[0], 0), Some(0..10));
    assert_eq!(range(&out[1], 0), Some(10..20));
    assert_eq!(range(&out[2], 0), Some(20..30));
    assert_eq!(c.pending_rows(), 2);
    let rest = c.flush().expect("flush").expect("pending");
    assert_eq!(values(&rest), vec![30, 31]);
    assert_eq!(range(&rest, 0), Some(30..32));
    assert!(c.flush().expect("flush").is_none());
}

#[test]
fn dead_letters_go_with_the_range_that_holds_their_offset() {
    let mut c = coalescer(2, 1000);
    let m = |offset, row| Msg {
        partition: 0,
        offset,
        row,
    };
    // rows 0, 1 | dead 2 | row 3 | dead 4, split after row 1: the first
    // output covers up to the next row (3), so dead letter 2 goes with it.
    let env = envelope(
        &[m(0, true), m(1, true), m(2, false), m(3, true), m(4, false)],
        &mut BTreeMap::new(),
    );
    let out = c.push(env, Instant::now()).expect("push");
    assert_eq!(out.len(), 1);
    assert_eq!(
        range(&out[0], 0),
        Some(0..3),
        "ends where the next row starts"
    );
    let dead: Vec<i64> = out[0].dead_letters.iter().map(|d| d.offset).collect();
    assert_eq!(dead, vec![2]);
    let rest = c.flush().expect("flush").expect("pending");
    assert_eq!(range(&rest, 0), Some(3..5));
    assert_eq!(rest.dead_letters.len(), 1);
}

#[test]
fn deadline_is_counted_from_the_oldest_pending_input() {
    let mut c = coalescer(100, 50);
    assert!(c.deadline().is_none());
    let t0 = Instant::now();
    c.push(input(0, 1), t0).expect("push");
    c.push(input(1, 1), t0 + Duration::from_millis(30))
        .expect("push");
    assert_eq!(c.deadline(), Some(t0 + Duration::from_millis(50)));
}

#[test]
fn dead_letter_only_inputs_still_flush() {
    let mut c = coalescer(100, 50);
    let env = envelope(
        &[Msg {
            partition: 3,
            offset: 9,
            row: false,
        }],
        &mut BTreeMap::new(),
    );
    c.push(env, Instant::now()).expect("push");
    assert!(c.deadline().is_some());
    let e = c.flush().expect("flush").expect("dead letter pending");
    assert!(e.batch.is_none());
    assert_eq!(e.dead_letters.len(), 1);
    assert_eq!(range(&e, 3), Some(9..10));
}

#[tokio::test(start_paused = true)]
async fn task_flushes_at_max_wait_on_request_and_on_close() {
    let (in_tx, in_rx) = channel::<Envelope>(1000);
    let (out_tx, mut out_rx) = channel::<Envelope>(1000);
    let task = tokio::spawn(run_batcher(coalescer(100, 200), in_rx, out_tx, None));
    in_tx.send(input(0, 30)).await.expect("send");
    tokio::time::sleep(Duration::from_millis(199)).await;
    let early = tokio::time::timeout(Duration::from_millis(0), out_rx.recv()).await;
    assert!(early.is_err(), "nothing may flush before max_wait");
    tokio::time::sleep(Duration::from_millis(2)).await;
    let first = out_rx.recv().await.expect("deadline flush");
    assert_eq!(first.rows(), 30);
    in_tx.send(input(30, 150)).await.expect("send");
    let full = out_rx.recv().await.expect("full batch");
    assert_eq!(full.rows(), 100, "a full batch goes out without waiting");
    let mut flush = input(180, 5);
    flush.flush = true;
    in_tx.send(flush).await.expect("send");
    let requested = out_rx.recv().await.expect("flush on request");
    assert_eq!(values(&requested), (130..185).collect::<Vec<_>>());
    in_tx.send(input(185, 3)).await.expect("send");
    drop(in_tx);
    let last = out_rx.recv().await.expect("drain on close");
    assert_eq!(values(&last), vec![185, 186, 187]);
    assert!(out_rx.recv().await.is_none());
    task.await.expect("join").expect("batcher");
}

/// Late batches make the next ones smaller, early ones bigger again, and no
/// row or offset is lost while the size changes.
#[tokio::test(start_paused = true)]
async fn task_resizes_batches_toward_the_latency_target() {
    let (in_tx, in_rx) = channel::<Envelope>(100_000);
    let (out_tx, mut out_rx) = channel::<Envelope>(100_000);
    let feedback = Arc::new(LatencyFeedback::default());
    let size = AdaptiveSize::new(Duration::from_millis(100), 10, 1_000);
    let task = tokio::spawn(run_batcher(
        coalescer(1_000, 10_000),
        in_rx,
        out_tx,
        Some((size, feedback.clone())),
    ));
    let mut next = 0i64;
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    for round in 0..40 {
        // The sink's report for the batches so far: late for 20 rounds,
        // then early.
        feedback.record(Duration::from_millis(if round < 20 { 400 } else { 10 }));
        in_tx.send(input(next, 1_000)).await.expect("send");
        next += 1_000;
        // Let the batcher take it (paused time: this advances only 1 ms).
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut first = None;
        while let Some(out) = out_rx.try_recv() {
            first.get_or_insert(out.rows());
            seen.extend(values(&out));
        }
        sizes.push(first.expect("at least one full batch per round"));
    }
    drop(in_tx);
    while let Some(rest) = out_rx.recv().await {
        seen.extend(values(&rest));
    }
    task.await.expect("join").expect("batcher");
    assert_eq!(
        seen,
        (0..next).collect::<Vec<_>>(),
        "every row once, in order"
    );
    assert_eq!(sizes[0], 750, "the first late report shrinks by a quarter");
    assert!(sizes[..20].windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    assert_eq!(sizes[19], 10, "late batches shrink to min_rows: {sizes:?}");
    assert!(sizes[20..].windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
    assert!(
        sizes[39] > 5 * sizes[20],
        "early batches grow back: {sizes:?}"
    );
}

fn arb_inputs() -> impl Strategy<Value = Vec<Vec<(i32, bool, bool)>>> {
    // per message: partition, good row?, preceded by an offset gap?
    proptest::collection::vec(
        proptest::collection::vec(
            (
                0i32..3,
                proptest::bool::weighted(0.8),
                proptest::bool::weighted(0.1),
            ),
            0..60,
        ),
        0..25,
    )
}

proptest! {
    /// Whatever the inputs (partitions interleaved, dead letters, offset
    /// gaps): rows come out in order and complete, full batches are exactly
    /// max_rows, and each output's coverage holds exactly the messages in it,
    /// each partition's ranges chaining with no gap or overlap.
    #[test]
    fn each_output_covers_exactly_what_it_holds(max_rows in 1usize..40, inputs in arb_inputs()) {
        let mut c = coalescer(max_rows, 1000);
        let now = Instant::now();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let mut starts = BTreeMap::new();
        let mut produced_rows = Vec::new();
        let mut produced_dead = 0;
        let mut outs = Vec::new();
        for msgs in inputs {
            let msgs: Vec<Msg> = msgs.into_iter().map(|(p, row, gap)| {
                let o = next.entry(p).or_insert(0);
                *o += if gap { 3 } else { 0 };
                let m = Msg { partition: p, offset: *o, row };
                *o += 1;
                m
            }).collect();
            produced_dead += msgs.iter().filter(|m| !m.row).count();
            produced_rows.extend(msgs.iter().filter(|m| m.row).map(|m| m.partition as i64 * 1_000_000 + m.offset));
            for out in c.push(envelope(&msgs, &mut starts), now).expect("push") {
                prop_assert_eq!(out.rows(), max_rows);
                outs.push(out);
            }
        }
        outs.extend(c.flush().expect("flush"));
        prop_assert_eq!(c.pending_rows(), 0);
        let emitted: Vec<i64> = outs.iter().flat_map(values).collect();
        prop_assert_eq!(emitted, produced_rows);
        prop_assert_eq!(outs.iter().map(|o| o.dead_letters.len()).sum::<usize>(), produced_dead);

        let mut chain: BTreeMap<i32, i64> = BTreeMap::new();
        for out in &outs {
            for (_, p, r) in out.coverage.iter() {
                if let Some(end) = chain.get(&p) {
                    prop_assert_eq!(*end, r.start, "ranges of partition {} must chain", p);
                }
                chain.insert(p, r.end);
            }
            let b = out.batch.as_ref();
            let mut held: Vec<(i32, i64)> = out.dead_letters.iter().map(|d| (d.partition, d.offset)).collect();
            if let Some(b) = b {
                let ps = b.column(2).as_primitive::<arrow::datatypes::Int32Type>();
                let os = b.column(3).as_primitive::<Int64Type>();
                held.extend((0..b.num_rows()).map(|i| (ps.value(i), os.value(i))));
            }
            for (p, o) in &held {
                let r = range(out, *p);
                prop_assert!(r.as_ref().is_some_and(|r| r.contains(o)), "message {}@{} outside its output's coverage {:?}", p, o, r);
            }
        }
        prop_assert_eq!(chain, next.iter().filter(|(_, o)| **o > 0).map(|(p, o)| (*p, *o)).collect::<BTreeMap<_, _>>());
    }
}
