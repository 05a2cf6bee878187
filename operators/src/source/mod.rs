//! Sources: where events enter a job.

pub mod kafka;
