use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use tracing::{debug, info, warn};

use rdkafka::producer::FutureProducer;

use crate::kafka::{ClientRole, KafkaOptions};
use crate::source::kafka::KafkaSourceConfig;

/// How long after one warning further ones go to `debug`.
const QUIET_FOR: Duration = Duration::from_secs(10);

/// librdkafka repeats a connection failure every retry (several times a
/// second while a broker is down), and the failing `send` or
/// `check_brokers` call reports the problem anyway. So its warnings and
/// errors are logged at `warn` at most once per [`QUIET_FOR`]; repeats, and
/// everything less severe, at `debug`/`info`. Secret option values are
/// redacted from every line.
pub struct ProducerContext {
    options: KafkaOptions,
    last_warning: Mutex<Option<Instant>>,
}

/// A producer on `source`'s cluster (no connection yet), logging through
/// [`ProducerContext`]. Fails on settings librdkafka refuses, with secret
/// values redacted.
pub(crate) fn producer_for(
    source: &KafkaSourceConfig,
) -> crate::Result<FutureProducer<ProducerContext>> {
    source
        .client_config(ClientRole::Producer)
        .create_with_context(ProducerContext::new(&source.options))
        .map_err(|e| crate::OperatorError::KafkaSetup(source.options.redact(&e.to_string())))
}

impl ProducerContext {
    pub fn new(options: &KafkaOptions) -> Self {
        Self {
            options: options.clone(),
            last_warning: Mutex::new(None),
        }
    }

    fn warn_limited(&self, what: &str) {
        let what = self.options.redact(what);
        let now = Instant::now();
        let loud = match self.last_warning.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|t| now.duration_since(t) >= QUIET_FOR);
                if due {
                    *last = Some(now);
                }
                due
            }
            Err(_) => true,
        };
        if loud {
            warn!(target: "librdkafka", "kafka producer: {what} (repeats for {QUIET_FOR:?} are logged at debug)");
        } else {
            debug!(target: "librdkafka", "kafka producer: {what}");
        }
    }
}

impl ClientContext for ProducerContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => self.warn_limited(&format!("{fac} {message}")),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(target: "librdkafka", "{fac} {}", self.options.redact(message))
            }
            RDKafkaLogLevel::Debug => {
                debug!(target: "librdkafka", "{fac} {}", self.options.redact(message))
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.warn_limited(&format!("{error}: {reason}"));
    }
}
