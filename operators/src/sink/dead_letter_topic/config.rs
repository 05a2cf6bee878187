use serde::Deserialize;

use super::OnMaxRate;
use super::rate;
use crate::config::{ConfigError, HumanDuration, Validate, found};

/// Where a job's dead letters go: the job section `[dead_letters]`.
///
/// Parquet keeps them next to the scores for `scorestream query` and
/// `scorestream replay`; a topic hands them to whatever already watches Kafka
/// (alerting, a repair service). Both may be on; at least one must be.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLettersConfig {
    /// Write dead letters to `<sink.path>/dead_letters/*.parquet`.
    #[serde(default = "default_parquet")]
    pub parquet: bool,
    /// Also produce each dead letter to this Kafka topic, on the source's
    /// brokers with the source's client settings.
    #[serde(default)]
    pub topic: Option<String>,
    /// Share of messages (above 0, at most 1) that may become dead letters
    /// (see `rate.rs`); no limit when absent.
    #[serde(default)]
    pub max_rate: Option<f64>,
    /// Counts restart after this long.
    #[serde(default = "rate::default_window")]
    pub rate_window: HumanDuration,
    /// Messages a window needs before it is judged: a handful of bad
    /// messages at start is no evidence of a broken producer.
    #[serde(default = "rate::default_min_messages")]
    pub rate_min_messages: u64,
    #[serde(default)]
    pub on_max_rate: OnMaxRate,
    /// How long `on_max_rate = "pause"` stops reading.
    #[serde(default = "rate::default_pause_for")]
    pub pause_for: HumanDuration,
}

fn default_parquet() -> bool {
    true
}

impl Default for DeadLettersConfig {
    fn default() -> Self {
        Self {
            parquet: default_parquet(),
            topic: None,
            max_rate: None,
            rate_window: rate::default_window(),
            rate_min_messages: rate::default_min_messages(),
            on_max_rate: OnMaxRate::default(),
            pause_for: rate::default_pause_for(),
        }
    }
}

impl Validate for DeadLettersConfig {
    fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut p = Vec::new();
        if !self.parquet && self.topic.is_none() {
            p.push(ConfigError::new(
                "parquet",
                "is false and no `dead_letters.topic` is set, so dead letters would be dropped; \
                 keep `dead_letters.parquet = true` or name a topic in `dead_letters.topic`",
            ));
        }
        if let Some(Err(why)) = self.topic.as_deref().map(check_topic_name) {
            p.push(ConfigError::new("topic", why));
        }
        p.extend(rate::problems(self));
        found(p)
    }
}

impl DeadLettersConfig {
    /// A dead-letter topic among the topics the job consumes would feed
    /// every dead letter back in, forever.
    pub fn loops_back(&self, source_topics: &[String]) -> Option<ConfigError> {
        let topic = self.topic.as_ref()?;
        source_topics.iter().any(|t| t == topic).then(|| {
            ConfigError::new(
                "topic",
                format!(
                    "\"{topic}\" is also a source topic: every dead letter would be read again \
                     and dead-lettered again, forever; use a separate topic"
                ),
            )
        })
    }
}

/// Kafka's own rule for topic names, checked here so a typo is reported by
/// `validate` rather than as a delivery failure at the first dead letter.
pub fn check_topic_name(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > 249 {
        return Err(format!(
            "invalid topic name \"{topic}\": use 1 to 249 characters"
        ));
    }
    if topic == "." || topic == ".." {
        return Err(format!("invalid topic name \"{topic}\""));
    }
    if !topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "invalid topic name \"{topic}\": use letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}
