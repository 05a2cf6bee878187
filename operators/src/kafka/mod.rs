//! How scorestream talks to Kafka, whatever the client is for: the job's
//! librdkafka options ([`KafkaOptions`], whose secrets never show), which
//! of them a hosted job may set ([`OptionPolicy`]), and the one builder of
//! client configs ([`client_config`]).

pub(crate) mod client;
mod options;
mod secrets;

pub use client::{ClientRole, client_config};
pub use options::{OptionPolicy, PATH_OPTIONS};
pub use secrets::{KafkaOptions, is_secret};
