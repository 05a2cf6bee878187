use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use super::{EventGen, EventKind};
use crate::ToolError;
use scorestream_operators::kafka::{ClientRole, KafkaOptions, client_config};

/// Counts what the broker confirmed, so the generator knows how many events
/// really exist in the topic.
#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
}

struct Ctx(Arc<Deliveries>);
impl ClientContext for Ctx {}
impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let c = if result.is_ok() {
            &self.0.ok
        } else {
            &self.0.failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// How fast [`produce`] may go, and how it is told to stop.
#[derive(Clone, Copy)]
pub struct Pace<'a> {
    /// At most this many events per second; unlimited when `None`.
    pub rate: Option<u64>,
    /// Bumped as events are handed to the client.
    pub progress: &'a AtomicU64,
    /// Set to stop early.
    pub stop: &'a AtomicBool,
    /// `(consumed, window)`: never get more than `window` events ahead of
    /// `consumed`. The in-process mock broker keeps only a few MiB per
    /// partition and drops older messages, so the demo must not outrun its consumer.
    pub ahead_of: Option<(&'a AtomicU64, u64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceReport {
    pub delivered: u64,
    pub failed: u64,
    pub good: u64,
    pub unknown_account: u64,
    pub malformed: u64,
}

/// Produces `n` generated events to `topic`, keyed by account, paced by
/// `pace`. Blocking: run it on its own thread.
pub fn produce(
    brokers: &str,
    topic: &str,
    generator: &mut EventGen<'_>,
    n: u64,
    pace: &Pace<'_>,
) -> Result<ProduceReport, ToolError> {
    let Pace {
        rate,
        progress,
        stop,
        ahead_of,
    } = *pace;
    let deliveries = Arc::new(Deliveries::default());
    let producer: BaseProducer<Ctx> =
        client_config(brokers, &KafkaOptions::default(), ClientRole::BulkProducer)
            .create_with_context(Ctx(deliveries.clone()))?;
    let mut report = ProduceReport::default();
    let (mut buf, mut key) = (String::new(), String::new());
    let started = Instant::now();
    for i in 0..n {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match generator.next_into(&mut buf, &mut key) {
            EventKind::Good { .. } => report.good += 1,
            EventKind::UnknownAccount => report.unknown_account += 1,
            EventKind::Malformed => report.malformed += 1,
        }
        let mut record = BaseRecord::to(topic)
            .payload(buf.as_bytes())
            .key(key.as_bytes());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(20));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        progress.fetch_add(1, Ordering::Relaxed);
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
            if let Some((consumed, window)) = ahead_of {
                while i.saturating_sub(consumed.load(Ordering::Relaxed)) > window
                    && !stop.load(Ordering::Relaxed)
                {
                    producer.poll(Duration::from_millis(5));
                }
            }
            if let Some(rate) = rate.filter(|r| *r > 0) {
                let due = Duration::from_secs_f64(i as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    report.delivered = deliveries.ok.load(Ordering::Relaxed);
    report.failed = deliveries.failed.load(Ordering::Relaxed);
    Ok(report)
}
