//! Producing selected dead letters: in small batches, each awaited before
//! the next (so memory and librdkafka's queue stay bounded), at most
//! `--rate` per second, with a replay log written every
//! [`LOG_EVERY`] delivered letters and when the run ends or fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use scorestream_operators::sink::dead_letter_topic::{Outgoing, RawProducer, original_headers};
use scorestream_operators::source::kafka::KafkaSourceConfig;
use scorestream_schemas::DeadLetter;

use super::log::{self, ReplayLog};
use super::{Provenance, REPLAY_OF_HEADER, REPLAY_REASON_HEADER, ReplayOptions, Resubmission};
use crate::ToolError;

/// How long the brokers get to answer before the replay gives up, so an
/// unreachable cluster is an error in seconds rather than a delivery timeout
/// after minutes.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Letters in flight at once, at most: one round trip per batch.
const SEND_BATCH_ROWS: usize = 500;
/// Raw bytes in flight at once, at most (a single larger letter goes alone).
const SEND_BATCH_BYTES: usize = 4 << 20;
/// Delivered letters per replay log: a run that fails part-way has logged
/// all but at most the batch that failed, and the log files stay few.
const LOG_EVERY: usize = 10_000;

/// Spaces batches so that, from the first send, the n-th message leaves no
/// earlier than n / rate seconds.
struct Pacer {
    rate: f64,
    started: Option<Instant>,
    sent: u64,
}

impl Pacer {
    async fn wait(&mut self) {
        let started = *self.started.get_or_insert_with(Instant::now);
        let due = started + Duration::from_secs_f64(self.sent as f64 / self.rate);
        tokio::time::sleep_until(due.into()).await;
    }

    /// A batch small enough that pacing stays smooth: a tenth of a second's
    /// worth.
    fn batch(&self) -> usize {
        ((self.rate / 10.0) as usize).clamp(1, SEND_BATCH_ROWS)
    }
}

pub(super) struct Sender {
    producer: RawProducer,
    pacer: Option<Pacer>,
    dir: PathBuf,
    template: ReplayLog,
    /// Delivered, not yet in a log.
    unlogged: Vec<Provenance>,
    pub(super) logs: Vec<PathBuf>,
    pub(super) delivered: usize,
}

impl Sender {
    /// Connects (a check of the brokers, so a wrong address fails fast).
    pub(super) async fn connect(
        source: &KafkaSourceConfig,
        replays_dir: &Path,
        options: &ReplayOptions,
    ) -> Result<Self, ToolError> {
        let producer = RawProducer::build(source)?;
        producer.check_brokers(BROKER_TIMEOUT).await?;
        Ok(Self {
            producer,
            pacer: options.rate.map(|rate| Pacer {
                rate,
                started: None,
                sent: 0,
            }),
            dir: replays_dir.to_owned(),
            template: ReplayLog {
                replayed_at_ms: 0,
                to: options.to.clone(),
                stage: options.stage.map(|s| s.as_str().to_owned()),
                reason: options.reason.map(|c| c.as_str().to_owned()),
                predicate: options.predicate.clone(),
                dead_letters: Vec::new(),
            },
            unlogged: Vec::new(),
            logs: Vec::new(),
            delivered: 0,
        })
    }

    /// Produces every letter, batch by batch. On a failed delivery the
    /// letters delivered before it are logged, then the error returned.
    pub(super) async fn send(
        &mut self,
        chosen: &[(DeadLetter, Resubmission)],
    ) -> Result<(), ToolError> {
        let mut rest = chosen;
        while !rest.is_empty() {
            let n = self.batch_len(rest);
            let (batch, after) = rest.split_at(n);
            if let Some(p) = &mut self.pacer {
                p.wait().await;
            }
            let messages = batch
                .iter()
                .map(|(d, r)| Outgoing {
                    topic: &r.to,
                    letter: d,
                    headers: replay_headers(d, &r.of, &d.reason),
                    timestamp_ms: d.source_timestamp_ms,
                })
                .collect();
            if let Err(e) = self.producer.produce(messages).await {
                let pending = self.unlogged.len();
                return Err(match self.write_log() {
                    Ok(()) => e.into(),
                    Err(log_failed) => ToolError::Incomplete(format!(
                        "{e}; and the {pending} dead letters delivered before it could not be logged \
                         ({log_failed}), so a new replay re-sends them"
                    )),
                });
            }
            if let Some(p) = &mut self.pacer {
                p.sent += n as u64;
            }
            self.delivered += n;
            self.unlogged
                .extend(batch.iter().map(|(_, r)| r.of.clone()));
            if self.unlogged.len() >= LOG_EVERY {
                self.write_log()?;
            }
            rest = after;
        }
        Ok(())
    }

    /// Logs what is delivered but not yet logged (at the end of a run).
    pub(super) fn finish(&mut self) -> Result<(), ToolError> {
        self.write_log()
    }

    fn batch_len(&self, rest: &[(DeadLetter, Resubmission)]) -> usize {
        let rows = self.pacer.as_ref().map_or(SEND_BATCH_ROWS, Pacer::batch);
        let mut bytes = 0;
        let n = rest
            .iter()
            .take(rows)
            .take_while(|(d, _)| {
                bytes += d.raw.len();
                bytes <= SEND_BATCH_BYTES
            })
            .count();
        n.max(1)
    }

    fn write_log(&mut self) -> Result<(), ToolError> {
        if self.unlogged.is_empty() {
            return Ok(());
        }
        let entry = ReplayLog {
            replayed_at_ms: scorestream_operators::now_ms(),
            dead_letters: std::mem::take(&mut self.unlogged),
            ..self.template.clone()
        };
        self.logs.push(log::write(&self.dir, &entry)?);
        Ok(())
    }
}

/// The message's own headers, in order, then where it came from and why it
/// was dead-lettered.
fn replay_headers(d: &DeadLetter, of: &Provenance, reason: &str) -> OwnedHeaders {
    let of = of.to_string();
    original_headers(&d.headers, 2)
        .insert(Header {
            key: REPLAY_OF_HEADER,
            value: Some(&of),
        })
        .insert(Header {
            key: REPLAY_REASON_HEADER,
            value: Some(reason),
        })
}
