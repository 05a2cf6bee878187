//! Job configs: TOML mapped to typed structs, every problem reported at once.

mod job;
mod load;
mod redact;
#[cfg(test)]
mod tests;

pub use job::{JobConfig, JobName, JobSection, QueueConfig, SchemaSection};
pub use load::{load_file, load_str};
pub use redact::{REDACTED, Redactor, redacted_toml};
