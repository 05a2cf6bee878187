//! Authentication failures. librdkafka treats a refused SASL login or TLS
//! handshake as transient and retries forever, so a job with a wrong
//! password would sit `running` with no progress and no reason shown. The
//! source fails instead once such errors have lasted `source.auth_timeout`
//! with nothing fetched or assigned in between, naming the cause.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use metrics::counter;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::OperatorError;

/// Since when authentication has been failing, and the latest reason.
#[derive(Default)]
pub(super) struct AuthWatch {
    failing: Mutex<Option<(Instant, String)>>,
}

/// Whether an error librdkafka reports means the cluster refused who we are.
fn is_auth_error(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::UnsupportedSASLMechanism
                | RDKafkaErrorCode::IllegalSASLState
                | RDKafkaErrorCode::SSL
        )
    )
}

impl AuthWatch {
    /// Notes an error from librdkafka's error callback (`reason` already
    /// redacted); other errors are not this watch's business.
    pub(super) fn record(&self, error: &KafkaError, reason: &str) {
        if !is_auth_error(error) {
            return;
        }
        counter!("scorestream_kafka_auth_failures_total").increment(1);
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        let since = failing.as_ref().map_or_else(Instant::now, |(t, _)| *t);
        *failing = Some((since, format!("{error}: {reason}")));
    }

    /// The cluster let us in (partitions assigned, messages fetched).
    pub(super) fn clear(&self) {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        *failing = None;
    }

    /// The error to stop with once failures have lasted `limit`.
    pub(super) fn expired(&self, limit: Duration) -> Option<OperatorError> {
        let failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        let (since, reason) = failing.as_ref()?;
        (since.elapsed() >= limit).then(|| OperatorError::KafkaAuth {
            after: limit,
            reason: reason.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lasting_authentication_failures_stop_the_source() {
        let w = AuthWatch::default();
        w.record(
            &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "down",
        );
        assert!(w.expired(Duration::ZERO).is_none(), "not an auth error");
        w.record(
            &KafkaError::Global(RDKafkaErrorCode::Authentication),
            "SASL authentication error: Authentication failed",
        );
        assert!(w.expired(Duration::from_secs(3600)).is_none());
        let e = w.expired(Duration::ZERO).expect("expired");
        assert!(e.to_string().contains("Authentication failed"), "{e}");
        w.clear();
        assert!(w.expired(Duration::ZERO).is_none());
    }
}
