//! Drift alerts to a Kafka topic, as JSON, on the source's cluster.

use rdkafka::producer::{FutureProducer, FutureRecord};

use super::report::DriftAlert;
use crate::kafka::KafkaOptions;
use crate::sink::dead_letter_topic::{ProducerContext, producer_for};
use crate::source::kafka::KafkaSourceConfig;
use crate::{OperatorError, Result};

pub struct AlertProducer {
    producer: FutureProducer<ProducerContext>,
    topic: String,
    options: KafkaOptions,
}

impl AlertProducer {
    pub fn build(source: &KafkaSourceConfig, topic: &str) -> Result<Self> {
        let producer = producer_for(source)?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
            options: source.options.clone(),
        })
    }

    /// Sends every alert (keyed by feature) and waits for each delivery.
    pub async fn send(&self, alerts: &[DriftAlert<'_>]) -> Result<()> {
        let mut failed = 0;
        let mut first = None;
        for a in alerts {
            let payload = serde_json::to_vec(a).unwrap_or_default();
            let record = FutureRecord::to(&self.topic)
                .key(a.feature)
                .payload(&payload);
            if let Err((e, _)) = self
                .producer
                .send(record, std::time::Duration::from_secs(30))
                .await
            {
                failed += 1;
                first.get_or_insert(e.to_string());
            }
        }
        match first {
            None => Ok(()),
            Some(reason) => Err(OperatorError::Delivery {
                topic: self.topic.clone(),
                failed,
                total: alerts.len(),
                from_topic: "drift alerts".into(),
                from_partition: 0,
                from_offset: 0,
                reason: self.options.redact(&reason),
            }),
        }
    }
}
