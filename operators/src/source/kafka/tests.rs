use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::Coverage;
use crate::queue::{RowReceiver, channel};

fn config(brokers: &str, topic: &str) -> KafkaSourceConfig {
    toml::from_str(&format!(
        "brokers = \"{brokers}\"\ntopics = [\"{topic}\"]\ngroup_id = \"g\"\nchunk_rows = 64\nlinger = \"10ms\"\n\
         [options]\n\"session.timeout.ms\" = \"3000\"\n\"heartbeat.interval.ms\" = \"500\""
    ))
    .expect("config")
}

/// A stand-in for the sink's commit log: where each partition's committed
/// output ends.
#[derive(Default)]
struct FakeLog(Mutex<HashMap<(String, i32), i64>>);

impl ResumePositions for FakeLog {
    fn resume_positions(&self, partitions: &[(String, i32)]) -> crate::Result<Vec<Option<i64>>> {
        let map = self.0.lock().expect("lock");
        Ok(partitions.iter().map(|k| map.get(k).copied()).collect())
    }
}

impl FakeLog {
    fn commit(&self, cov: &Coverage) {
        let mut map = self.0.lock().expect("lock");
        for (t, p, r) in cov.iter() {
            let end = map.entry((t.to_string(), p)).or_insert(r.start);
            assert_eq!(*end, r.start, "{t}/{p}: committed ranges must chain");
            *end = r.end;
        }
    }
}

async fn produce(brokers: &str, topic: &str, from: usize, n: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for i in from..from + n {
        let payload = format!("{{\"n\":{i}}}");
        let key = format!("k{}", i % 7);
        producer
            .send(
                FutureRecord::to(topic).payload(&payload).key(&key),
                Duration::from_secs(5),
            )
            .await
            .expect("produce");
    }
}

/// A running source: its output, its ack channel, its stop token, its
/// assignment count and its task.
type Started = (
    RowReceiver<RawChunk>,
    mpsc::UnboundedSender<Coverage>,
    CancellationToken,
    Arc<AtomicI64>,
    tokio::task::JoinHandle<crate::Result<SourceReport>>,
);

fn start(brokers: &str, log: Arc<FakeLog>, capacity: usize) -> Started {
    let gauges = SourceGauges::default();
    let assigned = gauges.assigned.clone();
    let source = KafkaSource::build(&config(brokers, "t"), gauges, log).expect("source");
    let (tx, rx) = channel::<RawChunk>(capacity);
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let run = tokio::spawn(source.run(tx, ack_rx, cancel.clone()));
    (rx, ack_tx, cancel, assigned, run)
}

/// Payloads of a chunk, checking that its coverage accounts for exactly its
/// messages.
fn payloads(chunk: &RawChunk) -> Vec<String> {
    for i in 0..chunk.len() {
        let r = chunk
            .coverage
            .get(chunk.topic(i), chunk.partition(i))
            .expect("partition covered");
        assert!(r.contains(&chunk.offset(i)));
    }
    (0..chunk.len())
        .map(|i| String::from_utf8(chunk.payload(i).to_vec()).expect("utf8"))
        .collect()
}

/// The source reads every message once, hands them over with their
/// coverage, and commits exactly the offsets the (fake) sink acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_everything_and_commits_only_acknowledged_offsets() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("t", 3, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, "t", 0, 500).await;

    let (mut rx, ack_tx, cancel, assigned, run) = start(&brokers, Arc::default(), 256);
    let mut seen = BTreeSet::new();
    while seen.len() < 500 {
        let chunk = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("timely")
            .expect("open");
        assert!(chunk.len() <= 64);
        for p in payloads(&chunk) {
            assert!(seen.insert(p), "no message twice");
        }
        // acknowledge everything except partition 2
        let mut acks = Coverage::default();
        for (t, p, r) in chunk.coverage.iter().filter(|(_, p, _)| *p != 2) {
            acks.extend(t, p, r.clone()).expect("ack");
        }
        ack_tx.send(acks).expect("ack");
    }
    assert_eq!(
        assigned.load(Ordering::Relaxed),
        3,
        "all partitions assigned while running"
    );
    cancel.cancel();
    drop(ack_tx);
    while rx.recv().await.is_some() {}
    let report = run.await.expect("join").expect("source");
    assert_eq!(report.messages_read, 500);
    assert_eq!(
        assigned.load(Ordering::Relaxed),
        0,
        "closing gives the partitions back"
    );

    let check: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "g")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition("t", p);
    }
    let committed = check
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed");
    for e in committed.elements() {
        if e.partition() == 2 {
            assert_eq!(
                e.offset(),
                Offset::Invalid,
                "unacknowledged partition must not be committed"
            );
        } else {
            assert!(
                matches!(e.offset(), Offset::Offset(n) if n > 0),
                "partition {} committed",
                e.partition()
            );
        }
    }
}

/// Assigned partitions resume where the commit log ends, not where the
/// group's offsets are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_from_the_commit_log() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("t", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, "t", 0, 200).await;
    let log = Arc::new(FakeLog::default());
    log.0.lock().expect("lock").insert(("t".into(), 0), 150);

    let (mut rx, ack_tx, cancel, _, run) = start(&brokers, log.clone(), 256);
    let mut got = Vec::new();
    while got.len() < 50 {
        let chunk = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("timely")
            .expect("open");
        if got.is_empty() && !chunk.is_empty() {
            assert_eq!(chunk.coverage.get("t", 0).map(|r| r.start), Some(150));
        }
        got.extend(payloads(&chunk));
        log.commit(&chunk.coverage);
        ack_tx.send(chunk.coverage.clone()).expect("ack");
    }
    assert_eq!(got.first().map(String::as_str), Some("{\"n\":150}"));
    assert_eq!(got.last().map(String::as_str), Some("{\"n\":199}"));
    cancel.cancel();
    drop(ack_tx);
    while rx.recv().await.is_some() {}
    run.await.expect("join").expect("source");
}

/// With a pipeline that does not take data, the source pauses its
/// partitions: the queue stays within its bound, and once the pipeline
/// catches up every message arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pauses_partitions_while_the_pipeline_is_full() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("t", 2, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, "t", 0, 3000).await;

    let (mut rx, ack_tx, cancel, _, run) = start(&brokers, Arc::default(), 100);
    // let the source fill the queue and hit the bound
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        rx.queued_rows() <= 100,
        "queue holds {} rows",
        rx.queued_rows()
    );
    let mut seen = BTreeSet::new();
    while seen.len() < 3000 {
        let chunk = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("timely")
            .expect("open");
        for p in payloads(&chunk) {
            assert!(seen.insert(p), "no message twice");
        }
        ack_tx.send(chunk.coverage.clone()).expect("ack");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    cancel.cancel();
    drop(ack_tx);
    while rx.recv().await.is_some() {}
    let report = run.await.expect("join").expect("source");
    assert!(report.pauses > 0, "the source must have paused: {report:?}");
    assert_eq!(report.messages_read, 3000);
}

/// A second member joins: the first flushes and commits what it read from
/// the partitions it gives up, the second resumes them from the commit log,
/// and together they see every message exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_hands_partitions_over_without_loss_or_duplicates() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("t", 4, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let log = Arc::new(FakeLog::default());
    let seen: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();

    // each member's "sink": commits to the shared log, then acknowledges
    let member = |log: Arc<FakeLog>, seen: Arc<Mutex<BTreeMap<String, usize>>>| {
        let (mut rx, ack_tx, cancel, assigned, run) = start(&brokers, log.clone(), 256);
        let sink = tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                // a slow sink, so revocation finds data in flight
                tokio::time::sleep(Duration::from_millis(400)).await;
                let mut s = seen.lock().expect("lock");
                for p in payloads(&chunk) {
                    *s.entry(p).or_default() += 1;
                }
                drop(s);
                log.commit(&chunk.coverage);
                let _ = ack_tx.send(chunk.coverage.clone());
            }
        });
        (cancel, assigned, run, sink)
    };
    produce(&brokers, "t", 0, 1000).await;
    let a = member(log.clone(), seen.clone());
    while seen.lock().expect("lock").is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // the second member joins while the first has data in flight
    let b = member(log.clone(), seen.clone());
    produce(&brokers, "t", 1000, 1000).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while seen.lock().expect("lock").len() < 2000 || b.1.load(Ordering::Relaxed) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out: {} seen",
            seen.lock().expect("lock").len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        a.1.load(Ordering::Relaxed) > 0 && b.1.load(Ordering::Relaxed) > 0,
        "both members own partitions"
    );
    for (cancel, _, run, sink) in [a, b] {
        cancel.cancel();
        let report = run.await.expect("join").expect("source");
        assert!(report.rebalances > 0);
        sink.await.expect("sink");
    }
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 2000);
    assert!(
        seen.values().all(|&n| n == 1),
        "a message was handed over twice"
    );
}

/// What a message carries besides its payload reaches the chunk with it:
/// its key (or none), the broker's timestamp, and the producer's W3C trace
/// id from a `traceparent` header among others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_timestamps_and_trace_headers_arrive_with_their_messages() {
    use rdkafka::message::{Header, OwnedHeaders};
    const T0: i64 = 1_700_000_000_000;
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("t", 2, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    for i in 0..200i64 {
        let payload = i.to_string();
        let key = format!("k{i}");
        let trace = format!("00-{:032x}-00f067aa0ba902b7-01", 0xabc000 + i);
        let mut record = FutureRecord::to("t").payload(&payload).timestamp(T0 + i);
        if i % 5 != 0 {
            record = record.key(&key);
        }
        if i % 2 == 0 {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "other",
                    value: Some("x"),
                })
                .insert(Header {
                    key: "traceparent",
                    value: Some(&trace),
                });
            record = record.headers(headers);
        }
        producer
            .send(record, Duration::from_secs(5))
            .await
            .expect("produce");
    }

    let (mut rx, ack_tx, cancel, _, run) = start(&brokers, Arc::default(), 256);
    let mut seen = BTreeSet::new();
    while seen.len() < 200 {
        let chunk = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("timely")
            .expect("open");
        for (j, payload) in payloads(&chunk).iter().enumerate() {
            let i: i64 = payload.parse().expect("number");
            let key = format!("k{i}");
            let want_key = (i % 5 != 0).then_some(key.as_bytes());
            assert_eq!(chunk.key(j), want_key, "key of {i}");
            assert_eq!(chunk.timestamp_ms(j), T0 + i, "timestamp of {i}");
            let trace = chunk.trace_id(j);
            if i % 2 == 0 {
                assert_eq!(trace, 0xabc000 + i as u128, "trace id of {i}");
            } else {
                assert!(trace != 0 && !(0xabc000..0xabc000 + 200).contains(&trace));
            }
            assert!(seen.insert(i), "{i} twice");
        }
    }
    cancel.cancel();
    drop((rx, ack_tx));
    let report = run.await.expect("join").expect("source");
    assert_eq!(report.messages_read, 200);
}

/// The fetch back-off default is what lets the source keep up with a fast
/// pipeline (see `FETCH_QUEUE_BACKOFF_MS`); a job's own value wins.
#[test]
fn fetch_back_off_defaults_short_unless_the_job_sets_it() {
    let mut c = config("127.0.0.1:9", "t");
    assert_eq!(
        c.consumer_config().get("fetch.queue.backoff.ms"),
        Some("10")
    );
    c.options
        .insert("fetch.queue.backoff.ms".into(), "250".into());
    let cc = c.consumer_config();
    assert_eq!(cc.get("fetch.queue.backoff.ms"), Some("250"));
    assert_eq!(cc.get("enable.auto.commit"), Some("false"));
}

/// Drives a built (not running) source by hand until its chunk holds
/// `want` messages, as `read_until` does without handing chunks on.
fn read_by_hand(source: &KafkaSource, want: usize) {
    let mut batch = super::fetch_queue::Batch::default();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while source.shared.lock().chunk.len() < want {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {want} messages",
            source.shared.lock().chunk.len()
        );
        source.shared.reattach_owned();
        let linger = Duration::from_secs(60);
        source.read_once(&mut batch, Duration::from_millis(50), 64, linger);
    }
}

/// Waits (serving the consumer's events) until the source owns a partition.
fn wait_assigned(source: &KafkaSource) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while source.shared.lock().parts.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no assignment");
        if let Some(m) = source.consumer.poll(Duration::from_millis(50)) {
            panic!(
                "a message before the assignment: {:?}",
                m.map(|m| m.offset())
            );
        }
    }
}

/// A message fetched for a partition before it was revoked can still be
/// queued when the partition is assigned again, ahead of what the new fetch
/// delivers (librdkafka applies an assignment on its own thread, after the
/// source has moved on). Taken for a gap after the resume point, it made
/// the source skip the messages from the resume point to it: lost output.
/// It must be dropped, and the partition read from the resume point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_message_after_resuming_is_not_taken_for_a_gap() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("t", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, "t", 0, 100).await;
    let log = Arc::new(FakeLog::default());
    log.0.lock().expect("lock").insert(("t".into(), 0), 50);
    let source =
        KafkaSource::build(&config(&brokers, "t"), SourceGauges::default(), log).expect("source");
    wait_assigned(&source);

    // what a fetch from before the revocation left queued
    let mut st = source.shared.lock();
    let stale = super::incoming::Incoming::made_up("t", 0, 60, b"{\"n\":60}");
    source.accept(&mut st, &stale, Duration::from_secs(60));
    st.refetches_started();
    assert!(st.chunk.is_empty(), "the stale message is not taken");
    drop(st);

    read_by_hand(&source, 50);
    let st = source.shared.lock();
    let offsets: Vec<i64> = (0..st.chunk.len()).map(|i| st.chunk.offset(i)).collect();
    assert_eq!(offsets, (50..100).collect::<Vec<_>>());
    assert_eq!(st.chunk.coverage.get("t", 0), Some(&(50..100)));
    assert_eq!(st.report.offsets_skipped, 0);
}

/// A real gap after the resume point (here what the broker's retention
/// deleted) is still covered: the source fetches again once, meets the same
/// gap, counts the offsets as skipped and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_gap_after_resuming_is_covered_after_one_refetch() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("t", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    // the mock broker keeps 5 MiB a partition: 8 MiB pushes the first
    // messages out
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let payload = vec![b'x'; 100 * 1024];
    for _ in 0..80 {
        producer
            .send(
                BaseRecord::<str, [u8]>::to("t")
                    .payload(&payload)
                    .partition(0),
            )
            .map_err(|(e, _)| e)
            .expect("send");
        producer.flush(Duration::from_secs(10)).expect("flush");
    }
    let (low, high) = producer
        .client()
        .fetch_watermarks("t", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert!(low > 0 && high == 80, "retention left {low}..{high}");

    let log = Arc::new(FakeLog::default());
    log.0.lock().expect("lock").insert(("t".into(), 0), 0);
    let source =
        KafkaSource::build(&config(&brokers, "t"), SourceGauges::default(), log).expect("source");
    wait_assigned(&source);
    read_by_hand(&source, (high - low) as usize);
    let st = source.shared.lock();
    let offsets: Vec<i64> = (0..st.chunk.len()).map(|i| st.chunk.offset(i)).collect();
    assert_eq!(offsets, (low..high).collect::<Vec<_>>());
    assert_eq!(st.chunk.coverage.get("t", 0), Some(&(0..high)));
    assert_eq!(st.report.offsets_skipped, low as u64);
}
