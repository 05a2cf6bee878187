use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{KafkaSourceConfig, RawChunk, StartFrom, redact_text};
use crate::queue::RowSender;
use crate::{Acks, OperatorError, Result};

/// Tracks and logs group membership changes.
pub struct SourceContext {
    assigned: Arc<AtomicI64>,
}

impl ClientContext for SourceContext {}

impl ConsumerContext for SourceContext {
    fn post_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.assigned
                    .fetch_add(tpl.count() as i64, Ordering::Relaxed);
                info!(partitions = tpl.count(), "partitions assigned");
            }
            Rebalance::Revoke(tpl) => {
                self.assigned
                    .fetch_sub(tpl.count() as i64, Ordering::Relaxed);
                info!(partitions = tpl.count(), "partitions revoked");
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }
}

/// What the source did over its life.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SourceReport {
    pub messages_read: u64,
    pub messages_committed: u64,
    pub consume_errors: u64,
}

pub struct KafkaSource {
    consumer: StreamConsumer<SourceContext>,
    config: KafkaSourceConfig,
}

impl KafkaSource {
    /// Creates the consumer and joins the group. Fails on settings librdkafka
    /// refuses, naming them. `assigned` follows how many partitions this
    /// member currently owns.
    pub fn build(config: &KafkaSourceConfig, assigned: Arc<AtomicI64>) -> Result<Self> {
        let mut cc = ClientConfig::new();
        for (k, v) in &config.options {
            cc.set(k, v);
        }
        cc.set("bootstrap.servers", &config.brokers)
            .set("group.id", &config.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.offset.reset",
                match config.start_from {
                    StartFrom::Earliest => "earliest",
                    StartFrom::Latest => "latest",
                },
            );
        let consumer: StreamConsumer<SourceContext> = cc
            .create_with_context(SourceContext { assigned })
            .map_err(|e| OperatorError::KafkaSetup(redact_text(&e.to_string(), &config.options)))?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(Self {
            consumer,
            config: config.clone(),
        })
    }

    /// Reads until `cancel` fires, then hands over what it holds, waits for the
    /// sink to acknowledge everything in flight and commits those offsets.
    ///
    /// Offsets are committed only from `acks`, which the sink sends after it
    /// has durably written the rows and dead letters that came from them.
    pub async fn run(
        self,
        out: RowSender<RawChunk>,
        mut acks: mpsc::UnboundedReceiver<Acks>,
        cancel: CancellationToken,
    ) -> Result<SourceReport> {
        let mut report = SourceReport::default();
        let mut positions: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let chunk_rows = self.config.chunk_rows.max(1);
        let linger = self.config.linger.0;
        let mut chunk = RawChunk::with_capacity(chunk_rows);
        let mut deadline: Option<Instant> = None;
        let mut acks_open = true;

        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                ack = acks.recv(), if acks_open => match ack {
                    Some(a) => self.commit(&a, &mut positions, &mut report, CommitMode::Async)?,
                    None => acks_open = false,
                },
                _ = crate::sleep_until(deadline) => {
                    self.hand_over(&out, &mut chunk, chunk_rows).await?;
                    deadline = None;
                }
                msg = self.consumer.recv() => match msg {
                    Ok(m) => {
                        let ts = m.timestamp().to_millis().unwrap_or_else(crate::now_ms);
                        chunk.push(m.topic(), m.partition(), m.offset(), ts, m.key(), m.payload().unwrap_or_default());
                        report.messages_read += 1;
                        if chunk.len() >= chunk_rows {
                            self.hand_over(&out, &mut chunk, chunk_rows).await?;
                            deadline = None;
                        } else if deadline.is_none() {
                            deadline = Some(Instant::now() + linger);
                        }
                    }
                    Err(e) => {
                        report.consume_errors += 1;
                        warn!(error = %e, "kafka consume error; the consumer keeps retrying");
                    }
                },
            }
        }

        // Drain: hand over the partial chunk, close our output so downstream
        // operators flush, then commit every acknowledgement until the sink
        // drops its side.
        self.hand_over(&out, &mut chunk, 0).await?;
        drop(out);
        while let Some(a) = acks.recv().await {
            self.commit(&a, &mut positions, &mut report, CommitMode::Async)?;
        }
        if !positions.is_empty() {
            let tpl = to_tpl(&positions)?;
            self.consumer.commit(&tpl, CommitMode::Sync)?;
        }
        info!(
            read = report.messages_read,
            committed = report.messages_committed,
            "kafka source stopped"
        );
        Ok(report)
    }

    async fn hand_over(
        &self,
        out: &RowSender<RawChunk>,
        chunk: &mut RawChunk,
        next_capacity: usize,
    ) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(chunk, RawChunk::with_capacity(next_capacity));
        debug!(messages = full.len(), "chunk handed to decoder");
        out.send(full)
            .await
            .map_err(|_| OperatorError::Disconnected("kafka source"))
    }

    fn commit(
        &self,
        acks: &Acks,
        positions: &mut BTreeMap<(String, i32), i64>,
        report: &mut SourceReport,
        mode: CommitMode,
    ) -> Result<()> {
        report.messages_committed += acks.messages();
        let mut changed = BTreeMap::new();
        for (topic, partition, next) in acks.commit_positions() {
            let e = positions
                .entry((topic.to_owned(), partition))
                .or_insert(next);
            *e = (*e).max(next);
            changed.insert((topic.to_owned(), partition), *e);
        }
        if changed.is_empty() {
            return Ok(());
        }
        let tpl = to_tpl(&changed)?;
        if let Err(e) = self.consumer.commit(&tpl, mode) {
            // The data is durable; a failed offset commit only means some
            // messages may be read again after a restart.
            warn!(error = %e, "offset commit failed; will retry with the next acknowledgement");
        }
        Ok(())
    }
}

fn to_tpl(positions: &BTreeMap<(String, i32), i64>) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for ((t, p), o) in positions {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o))?;
    }
    Ok(tpl)
}
