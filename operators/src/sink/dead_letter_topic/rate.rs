//! `[dead_letters] max_rate`: a producer shipping garbage should page
//! someone, not fill the dead-letter table at full speed. The share of
//! committed messages that became dead letters is judged per window, once
//! the window holds enough messages to be evidence; above the limit the job
//! fails (the default) or stops reading for a while.

use std::time::{Duration, Instant};

use scorestream_schemas::DeadLetterCounts;
use serde::Deserialize;

use super::DeadLettersConfig;
use crate::config::{ConfigError, HumanDuration};

/// What a job does when its dead-letter rate is above `max_rate`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMaxRate {
    /// Stop the job with an error naming the rate and the top reasons.
    #[default]
    Fail,
    /// Stop reading for `pause_for` (what was read is still written and
    /// committed), then read again and judge afresh.
    Pause,
}

pub(super) fn default_window() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

pub(super) fn default_min_messages() -> u64 {
    1000
}

pub(super) fn default_pause_for() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}

/// Problems with the rate keys, each with its key inside `[dead_letters]`.
pub(super) fn problems(c: &DeadLettersConfig) -> Vec<ConfigError> {
    let mut p = Vec::new();
    if let Some(r) = c.max_rate
        && !(r > 0.0 && r <= 1.0)
    {
        p.push(ConfigError::new(
            "max_rate",
            format!(
                "{r} is not a share of messages; write a number above 0 and at most 1, e.g. 0.05"
            ),
        ));
    }
    if c.rate_min_messages == 0 {
        p.push(ConfigError::new("rate_min_messages", "must be at least 1"));
    }
    if c.rate_window.0.is_zero() {
        p.push(ConfigError::new("rate_window", "must be longer than 0s"));
    }
    if c.pause_for.0.is_zero() {
        p.push(ConfigError::new("pause_for", "must be longer than 0s"));
    }
    p
}

/// A window whose dead-letter share went over the limit.
#[derive(Debug, Clone, PartialEq)]
pub struct RateBreach {
    pub rate: f64,
    pub max_rate: f64,
    pub messages: u64,
    pub dead_letters: u64,
    pub window: Duration,
    /// The most frequent `stage/reason` codes, most frequent first.
    pub top_reasons: Vec<(String, u64)>,
}

impl std::fmt::Display for RateBreach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reasons: Vec<String> = self
            .top_reasons
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        write!(
            f,
            "{} of {} messages ({:.1}%) became dead letters within {}, above dead_letters.max_rate = {} ({:.1}%); most frequent: {}",
            self.dead_letters,
            self.messages,
            self.rate * 100.0,
            humantime::format_duration(self.window),
            self.max_rate,
            self.max_rate * 100.0,
            reasons.join(", ")
        )
    }
}

/// Counts committed messages and dead letters per window.
#[derive(Debug)]
pub struct DeadLetterRate {
    max_rate: f64,
    window: Duration,
    min_messages: u64,
    started: Instant,
    messages: u64,
    counts: DeadLetterCounts,
}

impl DeadLetterRate {
    /// `None` when the job sets no `max_rate`.
    pub fn new(config: &DeadLettersConfig, now: Instant) -> Option<Self> {
        Some(Self {
            max_rate: config.max_rate?,
            window: config.rate_window.0,
            min_messages: config.rate_min_messages.max(1),
            started: now,
            messages: 0,
            counts: DeadLetterCounts::default(),
        })
    }

    /// Adds one commit: `messages` rows and dead letters, the dead letters
    /// by stage and reason. Returns the breach when the window holds at
    /// least `rate_min_messages` and its share is above the limit; the
    /// window then starts over, as it does once it is `rate_window` old.
    pub fn record(
        &mut self,
        now: Instant,
        messages: u64,
        dead: &DeadLetterCounts,
    ) -> Option<RateBreach> {
        if now.duration_since(self.started) >= self.window {
            self.restart(now);
        }
        self.messages += messages;
        self.counts.absorb(dead);
        let dead_letters = self.counts.total() as u64;
        if self.messages < self.min_messages {
            return None;
        }
        let rate = dead_letters as f64 / self.messages as f64;
        if rate <= self.max_rate {
            return None;
        }
        let mut top: Vec<(String, u64)> = self
            .counts
            .iter()
            .filter(|(_, _, n)| *n > 0)
            .map(|(s, r, n)| (format!("{}/{}", s.as_str(), r.as_str()), n as u64))
            .collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(3);
        let breach = RateBreach {
            rate,
            max_rate: self.max_rate,
            messages: self.messages,
            dead_letters,
            window: now.duration_since(self.started),
            top_reasons: top,
        };
        self.restart(now);
        Some(breach)
    }

    /// Starts a new window (also after a pause: what was read before it is
    /// no evidence about what comes after).
    pub fn restart(&mut self, now: Instant) {
        self.started = now;
        self.messages = 0;
        self.counts = DeadLetterCounts::default();
    }
}

#[cfg(test)]
mod tests {
    use scorestream_schemas::{DeadLetterStage, ReasonCode};

    use super::*;

    fn config(max_rate: f64) -> DeadLettersConfig {
        DeadLettersConfig {
            max_rate: Some(max_rate),
            rate_min_messages: 100,
            ..DeadLettersConfig::default()
        }
    }

    fn dead(n: usize, code: ReasonCode, stage: DeadLetterStage) -> DeadLetterCounts {
        let mut c = DeadLetterCounts::default();
        for _ in 0..n {
            c.add(stage, code);
        }
        c
    }

    #[test]
    fn trips_only_with_enough_messages_and_a_share_above_the_limit() {
        let t0 = Instant::now();
        let mut r = DeadLetterRate::new(&config(0.1), t0).expect("limited");
        let parse = DeadLetterStage::Parse;
        // 50 of 60 bad, but 60 messages are no evidence yet
        assert_eq!(
            r.record(t0, 60, &dead(50, ReasonCode::InvalidJson, parse)),
            None
        );
        // 10 more of 40 bad: 60 of 100, above 10%
        let b = r
            .record(t0, 40, &dead(10, ReasonCode::NotAnObject, parse))
            .expect("breach");
        assert_eq!((b.messages, b.dead_letters), (100, 60));
        assert_eq!(
            b.top_reasons,
            vec![
                ("parse/invalid_json".into(), 50),
                ("parse/not_an_object".into(), 10)
            ]
        );
        let text = b.to_string();
        assert!(text.contains("60 of 100 messages (60.0%)"), "{text}");
        assert!(text.contains("max_rate = 0.1"), "{text}");
        // the window started over
        assert_eq!(r.record(t0, 99, &DeadLetterCounts::default()), None);
    }

    #[test]
    fn a_share_at_or_under_the_limit_and_old_windows_do_not_trip() {
        let t0 = Instant::now();
        let mut r = DeadLetterRate::new(&config(0.1), t0).expect("limited");
        let c = dead(10, ReasonCode::MissingField, DeadLetterStage::Schema);
        assert_eq!(r.record(t0, 100, &c), None, "10% is not above 10%");
        // a minute later the old window's 10 bad are forgotten
        let later = t0 + Duration::from_secs(61);
        let c = dead(5, ReasonCode::MissingField, DeadLetterStage::Schema);
        assert_eq!(r.record(later, 100, &c), None);
        assert!(DeadLetterRate::new(&DeadLettersConfig::default(), t0).is_none());
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = DeadLettersConfig {
            max_rate: Some(1.5),
            rate_min_messages: 0,
            rate_window: HumanDuration(Duration::ZERO),
            pause_for: HumanDuration(Duration::ZERO),
            ..DeadLettersConfig::default()
        };
        let keys: Vec<String> = problems(&bad).iter().map(|p| p.to_string()).collect();
        for key in ["max_rate", "rate_min_messages", "rate_window", "pause_for"] {
            assert!(keys.iter().any(|k| k.starts_with(key)), "{key}: {keys:?}");
        }
    }
}
