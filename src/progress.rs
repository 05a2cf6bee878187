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
    let batch_ms = |d: std::time::Duration| d.as_millis() as u64;
    format!(
        "  events in:      {}\n  rows scored:    {}\n  dead letters:   {}\n  files written:  {} ({:.1} MiB)\n  \
         batches scored: {}\n  throughput:     {} events/s ({:.1}s from first event to last commit, {:.1}s in all)\n  \
         event age at commit (Kafka timestamp to committed file): p50 {}, p99 {}, max {}\n  \
         processing latency (batch fetched to written): p50 {}, p99 {}",
        thousands(s.events_in),
        thousands(s.rows_scored),
        thousands(s.dead_letters),
        thousands(s.files_written),
        s.bytes_written as f64 / (1024.0 * 1024.0),
        thousands(s.batches_scored),
        thousands(s.throughput() as u64),
        s.active.as_secs_f64(),
        s.elapsed.as_secs_f64(),
        age(s.latency_p50_ms),
        age(s.latency_p99_ms),
        age(s.latency_max_ms),
        age(batch_ms(s.batch_latency_p50)),
        age(batch_ms(s.batch_latency_p99)),
    )
}

/// Milliseconds in the unit a person reads them in: an event replayed from
/// last week is `6.9 d` old, not `595,000,000 ms`. At the histogram's
/// ceiling the value is a lower bound, and says so.
pub(crate) fn age(ms: u64) -> String {
    const MIN: u64 = 60_000;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;
    let ceiling = StatsSnapshot::EVENT_AGE_CEILING_MS;
    let f = ms as f64;
    match ms {
        _ if ms >= ceiling => format!(">= {} d", thousands(ceiling / DAY)),
        0..1_000 => format!("{ms} ms"),
        1_000..MIN => format!("{:.1} s", f / 1e3),
        MIN..HOUR => format!("{:.1} min", f / MIN as f64),
        HOUR..DAY => format!("{:.1} h", f / HOUR as f64),
        _ => format!("{:.1} d", f / DAY as f64),
    }
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
    fn ages_are_in_readable_units_and_the_ceiling_is_a_lower_bound() {
        use super::age;
        assert_eq!(age(0), "0 ms");
        assert_eq!(age(999), "999 ms");
        assert_eq!(age(2_500), "2.5 s");
        assert_eq!(age(90 * 60_000), "1.5 h");
        assert_eq!(age(3 * 86_400_000 + 43_200_000), "3.5 d");
        let ceiling = scorestream_pipeline::runtime::StatsSnapshot::EVENT_AGE_CEILING_MS;
        assert_eq!(age(ceiling), ">= 3,650 d");
    }

    /// Events three days old: the summary says so, where it used to
    /// print the one-hour bound of its histogram as their latency.
    #[test]
    fn the_summary_shows_the_real_age_of_old_events() {
        use scorestream_pipeline::runtime::JobStats;
        let stats = JobStats::default();
        stats.record_latencies(&[(3 * 86_400_000, 10)]);
        stats.record_batch_latency(std::time::Duration::from_millis(40));
        let text = super::summary(&stats.snapshot());
        assert!(
            text.contains("event age at commit (Kafka timestamp to committed file): p50 3.0 d, p99 3.0 d, max 3.0 d"),
            "{text}"
        );
        assert!(
            text.contains("processing latency (batch fetched to written): p50 40 ms, p99 40 ms"),
            "{text}"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }
}
