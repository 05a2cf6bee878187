//! Human-readable progress lines and the closing summary.

use scorestream_pipeline::runtime::StatsSnapshot;

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn line(s: &StatsSnapshot, produced: Option<u64>) -> String {
    let produced = produced
        .map(|p| format!("produced {} | ", thousands(p)))
        .unwrap_or_default();
    format!(
        "[{:>6.1}s] {produced}events in {} | scored {} | dead letters {} | files {} | {} ev/s",
        s.elapsed.as_secs_f64(),
        thousands(s.events_in),
        thousands(s.rows_scored),
        thousands(s.dead_letters),
        thousands(s.files_written),
        thousands(s.throughput() as u64),
    )
}

pub(crate) fn summary(s: &StatsSnapshot) -> String {
    format!(
        "  events in:      {}\n  rows scored:    {}\n  dead letters:   {}\n  files written:  {} ({:.1} MiB)\n  \
         batches scored: {}\n  throughput:     {} events/s ({:.1}s from first event to last commit, {:.1}s in all)\n  latency (Kafka timestamp to committed file): \
         p50 {} ms, p99 {} ms, max {} ms",
        thousands(s.events_in),
        thousands(s.rows_scored),
        thousands(s.dead_letters),
        thousands(s.files_written),
        s.bytes_written as f64 / (1024.0 * 1024.0),
        thousands(s.batches_scored),
        thousands(s.throughput() as u64),
        s.active.as_secs_f64(),
        s.elapsed.as_secs_f64(),
        s.latency_p50_ms,
        s.latency_p99_ms,
        s.latency_max_ms,
    )
}

/// What the Kafka source saw: the line that explains a slow or lossy run.
pub(crate) fn source_summary(r: &scorestream_operators::source::kafka::SourceReport) -> String {
    format!(
        "  source:         {} messages read, {} pause(s) while the pipeline was full, {} rebalance(s), \
         {} offset(s) skipped by retention, {} consume error(s)",
        thousands(r.messages_read),
        thousands(r.pauses),
        thousands(r.rebalances),
        thousands(r.offsets_skipped),
        thousands(r.consume_errors),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_separators() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }
}
