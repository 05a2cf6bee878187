use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use proptest::prelude::*;
use tokio::time::Instant;

use super::*;
use crate::queue::channel;
use crate::{Acks, Envelope};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]))
}

/// An input of `rows` consecutive values starting at `first`, acking one offset per row
/// plus `dead` dead-letter-only offsets.
fn input(first: i64, rows: usize) -> Envelope {
    let batch = (rows > 0).then(|| {
        RecordBatch::try_new(
            schema(),
            vec![Arc::new(Int64Array::from_iter_values(
                first..first + rows as i64,
            ))],
        )
        .expect("batch")
    });
    let mut acks = Acks::default();
    let t: Arc<str> = "t".into();
    for o in first..first + rows.max(1) as i64 {
        acks.record(&t, 0, o);
    }
    Envelope {
        batch,
        dead_letters: vec![],
        acks,
    }
}

fn values(e: &Envelope) -> Vec<i64> {
    e.batch
        .as_ref()
        .map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .unwrap_or_default()
}

#[test]
fn emits_exactly_max_rows_and_keeps_the_rest() {
    let mut c = Coalescer::new(schema(), 10, Duration::from_secs(1));
    let now = Instant::now();
    assert!(c.push(input(0, 7), now).expect("push").is_empty());
    let out = c.push(input(7, 25), now).expect("push");
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|e| e.rows() == 10));
    assert_eq!(values(&out[0]), (0..10).collect::<Vec<_>>());
    // the first input's last row (6) is in out[0]; the second's (31) is still pending
    assert_eq!(out[0].acks.messages(), 7);
    assert_eq!(out[1].acks.messages() + out[2].acks.messages(), 0);
    assert_eq!(c.pending_rows(), 2);
    let rest = c.flush().expect("flush").expect("pending");
    assert_eq!(values(&rest), vec![30, 31]);
    assert_eq!(rest.acks.messages(), 25);
    assert!(c.flush().expect("flush").is_none());
}

#[test]
fn deadline_is_counted_from_the_oldest_pending_input() {
    let mut c = Coalescer::new(schema(), 100, Duration::from_millis(50));
    assert!(c.deadline().is_none());
    let t0 = Instant::now();
    c.push(input(0, 1), t0).expect("push");
    c.push(input(1, 1), t0 + Duration::from_millis(30))
        .expect("push");
    assert_eq!(c.deadline(), Some(t0 + Duration::from_millis(50)));
}

#[test]
fn dead_letter_only_inputs_still_flush() {
    let mut c = Coalescer::new(schema(), 100, Duration::from_millis(50));
    c.push(input(0, 0), Instant::now()).expect("push");
    assert!(c.deadline().is_some());
    let e = c.flush().expect("flush").expect("acks pending");
    assert!(e.batch.is_none());
    assert_eq!(e.acks.messages(), 1);
}

#[tokio::test(start_paused = true)]
async fn task_flushes_a_partial_batch_at_max_wait_and_the_rest_on_close() {
    let (in_tx, in_rx) = channel::<Envelope>(1000);
    let (out_tx, mut out_rx) = channel::<Envelope>(1000);
    let c = Coalescer::new(schema(), 100, Duration::from_millis(200));
    let task = tokio::spawn(run_batcher(c, in_rx, out_tx));
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
    drop(in_tx);
    let last = out_rx.recv().await.expect("drain on close");
    assert_eq!(values(&last), (130..180).collect::<Vec<_>>());
    assert_eq!(last.acks.messages(), 150);
    assert!(out_rx.recv().await.is_none());
    task.await.expect("join").expect("batcher");
}

proptest! {
    /// Whatever the input sizes: rows come out in order and complete, no
    /// batch exceeds max_rows, and every offset is acknowledged exactly once and
    /// never before its last row is out.
    #[test]
    fn coalescing_preserves_rows_and_acks(max_rows in 1usize..50, sizes in proptest::collection::vec(0usize..120, 0..30)) {
        let mut c = Coalescer::new(schema(), max_rows, Duration::from_secs(1));
        let now = Instant::now();
        let mut next = 0i64;
        let mut emitted: Vec<i64> = Vec::new();
        let mut acked = 0u64;
        let mut expected_acks = 0u64;
        let mut ends = Vec::new();
        for s in sizes {
            let e = input(next, s);
            expected_acks += e.acks.messages();
            next += s as i64;
            ends.push((next, e.acks.messages()));
            for out in c.push(e, now).expect("push") {
                prop_assert_eq!(out.rows(), max_rows);
                emitted.extend(values(&out));
                acked += out.acks.messages();
                // acks released so far never exceed those of inputs fully emitted
                let allowed: u64 = ends.iter().filter(|(end, _)| *end <= emitted.len() as i64).map(|(_, a)| a).sum();
                prop_assert!(acked <= allowed);
            }
        }
        if let Some(out) = c.flush().expect("flush") {
            prop_assert!(out.rows() <= max_rows.max(out.rows()));
            emitted.extend(values(&out));
            acked += out.acks.messages();
        }
        prop_assert_eq!(emitted, (0..next).collect::<Vec<_>>());
        prop_assert_eq!(acked, expected_acks);
        prop_assert_eq!(c.pending_rows(), 0);
    }
}
