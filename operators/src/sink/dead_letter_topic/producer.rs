use std::time::Duration;

use metrics::counter;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use scorestream_schemas::{DeadLetter, KafkaHeader};
use tracing::debug;

use super::context::{ProducerContext, producer_for};
use crate::kafka::KafkaOptions;
use crate::source::kafka::KafkaSourceConfig;
use crate::{OperatorError, Result};

/// Header names on dead letters produced to the dead-letter topic. Together
/// the `source.*` headers identify the original event, which is what a
/// consumer deduplicates on.
pub mod headers {
    pub const STAGE: &str = "scorestream.stage";
    pub const REASON: &str = "scorestream.reason";
    /// The reason's code (`invalid_json`, `feature_missing`, ...), for routing.
    pub const REASON_CODE: &str = "scorestream.reason_code";
    pub const SOURCE_TOPIC: &str = "scorestream.source.topic";
    pub const SOURCE_PARTITION: &str = "scorestream.source.partition";
    pub const SOURCE_OFFSET: &str = "scorestream.source.offset";
    /// Milliseconds since the epoch, as decimal text.
    pub const REJECTED_AT: &str = "scorestream.rejected_at";
}

/// One dead letter's raw bytes and key on their way to `topic`.
pub struct Outgoing<'a> {
    pub topic: &'a str,
    /// Its `raw` and `key` are produced; its provenance names it in errors.
    pub letter: &'a DeadLetter,
    pub headers: OwnedHeaders,
    /// The Kafka timestamp; `None` lets the producer stamp the send time.
    pub timestamp_ms: Option<i64>,
}

/// A Kafka producer for dead letters' raw bytes, on the source's cluster with
/// the source's credentials. Shared by the dead-letter topic and
/// `scorestream replay`, which differ only in where they send and which
/// headers they add.
pub struct RawProducer {
    producer: FutureProducer<ProducerContext>,
    brokers: String,
    /// Kept to redact librdkafka's messages, which may quote settings.
    options: KafkaOptions,
}

impl RawProducer {
    /// Creates the producer (no connection yet). Fails on settings librdkafka
    /// refuses, with secret values redacted.
    pub fn build(source: &KafkaSourceConfig) -> Result<Self> {
        let producer = producer_for(source)?;
        Ok(Self {
            producer,
            brokers: source.brokers.clone(),
            options: source.options.clone(),
        })
    }

    /// Asks the cluster for its metadata, so an unreachable broker is reported
    /// in `timeout` instead of as a delivery timeout minutes later.
    pub async fn check_brokers(&self, timeout: Duration) -> Result<()> {
        let producer = self.producer.clone();
        // The metadata call blocks its thread; keep it off the async workers.
        let answer =
            tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout))
                .await
                .map_err(|_| OperatorError::Disconnected("kafka metadata request"))?;
        answer
            .map(|_| ())
            .map_err(|e| OperatorError::BrokersUnreachable {
                brokers: self.brokers.clone(),
                reason: self.options.redact(&e.to_string()),
            })
    }

    /// Produces every message, then waits for every delivery. Returns how many
    /// were delivered; if any was not, the error names the topic, how many
    /// failed and the first failed message's origin. Messages are all in
    /// flight at once, so a batch costs one round trip, not one per message.
    pub async fn produce(&self, messages: Vec<Outgoing<'_>>) -> Result<usize> {
        let total = messages.len();
        let mut in_flight = Vec::with_capacity(total);
        for m in messages {
            let delivery = self
                .enqueue(m.topic, m.letter, m.headers, m.timestamp_ms)
                .await;
            in_flight.push((m.topic, m.letter, delivery));
        }
        let mut failed = 0;
        let mut first: Option<(&str, &DeadLetter, String)> = None;
        for (topic, letter, delivery) in in_flight {
            let outcome = match delivery {
                Ok(future) => match future.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(e.to_string()),
                    Err(_) => Err("the producer closed before the broker answered".to_owned()),
                },
                Err(e) => Err(e.to_string()),
            };
            if let Err(reason) = outcome {
                failed += 1;
                first.get_or_insert((topic, letter, reason));
            }
        }
        match first {
            None => Ok(total),
            Some((topic, letter, reason)) => Err(OperatorError::Delivery {
                topic: topic.to_owned(),
                failed,
                total,
                from_topic: letter.topic.to_string(),
                from_partition: letter.partition,
                from_offset: letter.offset,
                reason: self.options.redact(&reason),
            }),
        }
    }

    /// Hands one message to librdkafka, waiting while its local queue is full
    /// (it empties as deliveries complete or time out, so this is bounded by
    /// `message.timeout.ms`).
    async fn enqueue(
        &self,
        topic: &str,
        letter: &DeadLetter,
        headers: OwnedHeaders,
        timestamp_ms: Option<i64>,
    ) -> std::result::Result<DeliveryFuture, KafkaError> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord {
            topic,
            partition: None,
            payload: Some(letter.raw.as_slice()),
            key: letter.key.as_deref(),
            timestamp: timestamp_ms,
            headers: Some(headers),
        };
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}

/// Produces dead letters to the job's dead-letter topic (`dead_letters.topic`).
///
/// The sink calls [`send`](Self::send) with a batch's dead letters *before*
/// it commits the same batch's Parquet file, and the batch's offsets are
/// committed only after both. A crash between the two re-reads the batch and
/// re-sends its dead letters, so the topic is **at-least-once**: consumers that
/// need each event once deduplicate on the `scorestream.source.topic`,
/// `scorestream.source.partition` and `scorestream.source.offset` headers.
/// The producer itself is idempotent, so broker retries add no duplicates.
pub struct DeadLetterProducer {
    raw: RawProducer,
    topic: String,
}

impl DeadLetterProducer {
    /// A producer for `topic` on the source's brokers, with every source
    /// option that applies to a producer.
    pub fn build(source: &KafkaSourceConfig, topic: &str) -> Result<Self> {
        Ok(Self {
            raw: RawProducer::build(source)?,
            topic: topic.to_owned(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Produces every dead letter (key, value and headers as they arrived,
    /// Kafka timestamp = when it was rejected, provenance in
    /// `scorestream.*` headers after the original ones) and waits
    /// until each is acknowledged by all in-sync replicas. Any failed delivery
    /// fails the whole call, so the sink does not commit the batch's offsets.
    pub async fn send(&self, letters: &[DeadLetter]) -> Result<usize> {
        if letters.is_empty() {
            return Ok(0);
        }
        let messages = letters
            .iter()
            .map(|d| Outgoing {
                topic: &self.topic,
                letter: d,
                headers: provenance_headers(d),
                timestamp_ms: Some(d.rejected_at_ms),
            })
            .collect();
        let sent = self.raw.produce(messages).await?;
        counter!("scorestream_dead_letters_produced_total").increment(sent as u64);
        debug!(topic = %self.topic, dead_letters = sent, "dead letters produced");
        Ok(sent)
    }
}

/// The headers of a dead letter on the dead-letter topic: the message's
/// own, in order, then the `scorestream.*` ones.
fn provenance_headers(d: &DeadLetter) -> OwnedHeaders {
    let partition = d.partition.to_string();
    let offset = d.offset.to_string();
    let rejected_at = d.rejected_at_ms.to_string();
    let original = original_headers(&d.headers, 7);
    [
        (headers::STAGE, d.stage.as_str()),
        (headers::REASON, d.reason.as_str()),
        (headers::REASON_CODE, d.reason_code.as_str()),
        (headers::SOURCE_TOPIC, &*d.topic),
        (headers::SOURCE_PARTITION, &partition),
        (headers::SOURCE_OFFSET, &offset),
        (headers::REJECTED_AT, &rejected_at),
    ]
    .into_iter()
    .fold(original, |h, (key, value)| {
        h.insert(Header {
            key,
            value: Some(value),
        })
    })
}

/// A message's original headers, with room for `more`: what replay and the
/// dead-letter topic both start from.
pub fn original_headers(headers: &[KafkaHeader], more: usize) -> OwnedHeaders {
    headers.iter().fold(
        OwnedHeaders::new_with_capacity(headers.len() + more),
        |h, kh| {
            h.insert(Header {
                key: &kh.key,
                value: kh.value.as_deref(),
            })
        },
    )
}
