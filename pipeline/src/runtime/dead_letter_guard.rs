//! Acts on `[dead_letters] max_rate` after each commit: fails the job, or
//! holds the source for `pause_for` and then lets it read again. The
//! dead letters that tripped it are committed first either way, so none is
//! lost and a restart resumes after them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use metrics::{counter, gauge};
use scorestream_operators::OperatorError;
use scorestream_operators::sink::Committed;
use scorestream_operators::sink::dead_letter_topic::{
    DeadLetterRate, DeadLettersConfig, OnMaxRate,
};
use tracing::{error, info};

use super::JobStats;

pub(super) struct RateGuard {
    rate: DeadLetterRate,
    on: OnMaxRate,
    pause_for: Duration,
    /// The source's hold switch (`SourceGauges::hold`).
    hold: Arc<AtomicBool>,
    paused_until: Option<Instant>,
}

impl RateGuard {
    /// `None` when the job sets no `max_rate`.
    pub(super) fn new(config: &DeadLettersConfig, hold: Arc<AtomicBool>) -> Option<Self> {
        Some(Self {
            rate: DeadLetterRate::new(config, Instant::now())?,
            on: config.on_max_rate,
            pause_for: config.pause_for.0,
            hold,
            paused_until: None,
        })
    }

    /// When a pause ends, for the sink stage to wake up at.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.paused_until
    }

    /// Judges one commit (or, with an empty one, only whether a pause is
    /// over).
    pub(super) fn check(&mut self, c: &Committed, stats: &JobStats) -> Result<(), OperatorError> {
        let now = Instant::now();
        if let Some(until) = self.paused_until {
            if now < until {
                return Ok(());
            }
            self.paused_until = None;
            self.rate.restart(now);
            self.hold.store(false, Ordering::Relaxed);
            gauge!("scorestream_reading_paused").set(0.0);
            stats.set_paused(None);
            info!("dead-letter pause over; reading again");
        }
        let Some(breach) = self.rate.record(now, c.messages(), &c.dead_letter_stages) else {
            return Ok(());
        };
        counter!("scorestream_dead_letter_rate_breaches_total").increment(1);
        match self.on {
            OnMaxRate::Fail => Err(OperatorError::DeadLetterRate(breach.to_string())),
            OnMaxRate::Pause => {
                let why = format!(
                    "{breach}; reading paused for {} (on_max_rate = \"pause\")",
                    humantime::format_duration(self.pause_for)
                );
                error!("dead letters: {why}");
                self.hold.store(true, Ordering::Relaxed);
                gauge!("scorestream_reading_paused").set(1.0);
                stats.set_paused(Some(why));
                self.paused_until = Some(now + self.pause_for);
                Ok(())
            }
        }
    }
}
