//! Job configs: TOML mapped to typed structs, every problem reported at once.

mod confine;
mod job;
mod load;
mod redact;
#[cfg(test)]
mod tests;

pub use confine::{Confinement, Roots};
pub use job::{JobConfig, JobName, JobSection, QueueConfig, SchemaSection};
pub use load::{load_file, load_str, load_str_as};
pub use redact::{REDACTED, Redactor, redacted_toml};
