use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::Acks;
use crate::queue::channel;

fn config(brokers: &str, topic: &str) -> KafkaSourceConfig {
    toml::from_str(&format!(
        "brokers = \"{brokers}\"\ntopics = [\"{topic}\"]\ngroup_id = \"g\"\nchunk_rows = 64\nlinger = \"10ms\""
    ))
    .expect("config")
}

/// The source reads every message once, hands them over in chunks, and
/// commits exactly the offsets the (fake) sink acknowledged — no more.
#[tokio::test]
async fn reads_everything_and_commits_only_acknowledged_offsets() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("t", 3, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    for i in 0..500 {
        let payload = format!("{{\"n\":{i}}}");
        let key = format!("k{}", i % 7);
        producer
            .send(
                FutureRecord::to("t").payload(&payload).key(&key),
                Duration::from_secs(5),
            )
            .await
            .expect("produce");
    }

    let assigned = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let source = KafkaSource::build(&config(&brokers, "t"), assigned.clone()).expect("source");
    let (tx, mut rx) = channel::<RawChunk>(256);
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let run = tokio::spawn(source.run(tx, ack_rx, cancel.clone()));

    let mut seen = BTreeSet::new();
    let mut held_back = Acks::default();
    while seen.len() < 500 {
        let chunk = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("timely")
            .expect("open");
        assert!(chunk.len() <= 64);
        let mut acks = Acks::default();
        for i in 0..chunk.len() {
            let p = String::from_utf8(chunk.payload(i).to_vec()).expect("utf8");
            assert!(seen.insert(p), "no message twice");
            // acknowledge everything except partition 2's messages
            if chunk.partition(i) == 2 {
                held_back.record(chunk.topic(i), chunk.partition(i), chunk.offset(i));
            } else {
                acks.record(chunk.topic(i), chunk.partition(i), chunk.offset(i));
            }
        }
        ack_tx.send(acks).expect("ack");
    }
    let owned = || assigned.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        owned(),
        3,
        "all three partitions are assigned while running"
    );
    cancel.cancel();
    drop(ack_tx);
    while rx.recv().await.is_some() {}
    let report = run.await.expect("join").expect("source");
    assert_eq!(report.messages_read, 500);
    assert_eq!(report.messages_committed, 500 - held_back.messages());
    assert_eq!(owned(), 0, "closing the consumer gives its partitions back");

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
