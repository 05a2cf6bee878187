//! Every metric scorestream records: its name, kind, unit and HELP text,
//! and the buckets of its histograms. Kept as one list so the scrape's
//! HELP lines and the docs are checked against it, not against each other.

use metrics::Unit;

/// Buckets of every `*_seconds` histogram: one batch through one stage, or
/// one feature-store round trip, from half a millisecond to a minute.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Buckets of the Kafka-to-readable latency, which spans a file roll
/// interval (minutes) rather than one batch.
pub const FRESHNESS_BUCKETS: &[f64] = &[
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Buckets of every `*_rows` histogram (rows per batch): powers of two up to
/// well past any sensible `batch.max_rows`.
pub const ROW_BUCKETS: &[f64] = &[
    1.0, 16.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0,
];

/// What kind of metric a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric scorestream records, as `/metrics` describes it.
#[derive(Debug, Clone, Copy)]
pub struct MetricDoc {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    /// Labels besides `job`; each has a small, fixed (or config-bounded) set
    /// of values.
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const fn doc(
    name: &'static str,
    kind: Kind,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDoc {
    MetricDoc {
        name,
        kind,
        unit,
        labels,
        help,
    }
}

use Kind::{Counter, Gauge, Histogram};

/// Every metric the workspace records. A unit test checks the source for
/// metric names missing here, since Prometheus tooling flags a family
/// without HELP.
pub const METRICS: &[MetricDoc] = &[
    // Throughput.
    doc(
        "scorestream_events_total",
        Counter,
        Unit::Count,
        &[],
        "Kafka messages read and handed to decoding.",
    ),
    doc(
        "scorestream_rows_scored_total",
        Counter,
        Unit::Count,
        &[],
        "Scored rows committed to the output.",
    ),
    doc(
        "scorestream_files_written_total",
        Counter,
        Unit::Count,
        &[],
        "Output files committed (scores and dead letters).",
    ),
    doc(
        "scorestream_batch_rows",
        Histogram,
        Unit::Count,
        &[],
        "Rows per batch handed to the model.",
    ),
    // Latency.
    doc(
        "scorestream_stage_duration_seconds",
        Histogram,
        Unit::Seconds,
        &["stage"],
        "Time one batch spends in a stage (decode, feature_join, score, sink_write).",
    ),
    doc(
        "scorestream_batch_target_rows",
        Gauge,
        Unit::Count,
        &[],
        "The batch size `batch.target_latency` currently steers toward (jobs with a latency target).",
    ),
    doc(
        "scorestream_batch_latency_seconds",
        Histogram,
        Unit::Seconds,
        &[],
        "Time from fetching a batch's oldest message until the batch is written into its output files (what the pipeline adds; `batch.target_latency` steers it).",
    ),
    doc(
        "scorestream_output_freshness_seconds",
        Histogram,
        Unit::Seconds,
        &[],
        "Time from a row's Kafka timestamp until the file holding it is committed and readable.",
    ),
    // Queues and source.
    doc(
        "scorestream_queue_rows",
        Gauge,
        Unit::Count,
        &["queue"],
        "Rows waiting in the queue between two operators (raw, decoded, joined, batched, scored).",
    ),
    doc(
        "scorestream_consumer_lag_messages",
        Gauge,
        Unit::Count,
        &[],
        "Messages on the broker past what the job has committed to its output, summed over its partitions (from librdkafka's statistics).",
    ),
    doc(
        "scorestream_kafka_auth_failures_total",
        Counter,
        Unit::Count,
        &[],
        "Times the brokers refused the job's SASL login or TLS handshake; the job fails once refusals last source.auth_timeout.",
    ),
    doc(
        "scorestream_source_pauses_total",
        Counter,
        Unit::Count,
        &[],
        "Times the source paused its partitions because the pipeline was full.",
    ),
    doc(
        "scorestream_offsets_skipped_total",
        Counter,
        Unit::Count,
        &[],
        "Offsets a resumed partition skipped because the broker no longer had them (retention).",
    ),
    // Dead letters.
    doc(
        "scorestream_dead_letters_total",
        Counter,
        Unit::Count,
        &["stage", "reason"],
        "Events committed as dead letters, by the stage that rejected them (parse, schema, oversized, features) and reason code (invalid_json, not_an_object, missing_field, wrong_type, oversized, feature_missing, feature_stale, schema_unavailable).",
    ),
    doc(
        "scorestream_dead_letter_rate_breaches_total",
        Counter,
        Unit::Count,
        &[],
        "Windows in which the share of dead letters went above [dead_letters] max_rate.",
    ),
    doc(
        "scorestream_reading_paused",
        Gauge,
        Unit::Count,
        &[],
        "1 while reading is paused because of the dead-letter rate (on_max_rate = \"pause\"), else 0.",
    ),
    doc(
        "scorestream_dead_letters_produced_total",
        Counter,
        Unit::Count,
        &[],
        "Dead letters delivered to the dead-letter topic.",
    ),
    // Feature store.
    doc(
        "scorestream_feature_cache_hits_total",
        Counter,
        Unit::Count,
        &[],
        "Feature lookups served from the in-process cache.",
    ),
    doc(
        "scorestream_feature_cache_misses_total",
        Counter,
        Unit::Count,
        &[],
        "Feature lookups the cache could not serve (fetched from the store).",
    ),
    doc(
        "scorestream_feature_cache_stale_served_total",
        Counter,
        Unit::Count,
        &[],
        "Expired cache entries served because the store was unavailable.",
    ),
    doc(
        "scorestream_feature_lookup_seconds",
        Histogram,
        Unit::Seconds,
        &[],
        "One round trip to the online feature store.",
    ),
    doc(
        "scorestream_feature_store_errors_total",
        Counter,
        Unit::Count,
        &[],
        "Failed requests to the feature store.",
    ),
    doc(
        "scorestream_feature_store_available",
        Gauge,
        Unit::Count,
        &[],
        "1 while the feature store answers, 0 after a failed request.",
    ),
    doc(
        "scorestream_feature_decode_errors_total",
        Counter,
        Unit::Count,
        &[],
        "Feature values in the store that do not parse as their declared type.",
    ),
    doc(
        "scorestream_feature_rows_unavailable_total",
        Counter,
        Unit::Count,
        &[],
        "Rows whose features could not be fetched while the store was down.",
    ),
    doc(
        "scorestream_feature_missing_total",
        Counter,
        Unit::Count,
        &["view", "feature"],
        "Rows looked up that got no value for a feature (its entity absent, or the feature itself); view is empty outside Feast.",
    ),
    doc(
        "scorestream_feature_missing_ratio",
        Gauge,
        Unit::Count,
        &["view", "feature"],
        "Share of the current missing_check window's rows without a value for a feature.",
    ),
    // Model.
    doc(
        "scorestream_model_reloads_total",
        Counter,
        Unit::Count,
        &["role"],
        "New model versions swapped in while running.",
    ),
    doc(
        "scorestream_model_reload_failures_total",
        Counter,
        Unit::Count,
        &["role"],
        "New model versions rejected (unloadable or not fitting the job).",
    ),
    // Sink.
    doc(
        "scorestream_sink_open_files",
        Gauge,
        Unit::Count,
        &[],
        "Output files open for writing.",
    ),
    doc(
        "scorestream_sink_buffered_bytes",
        Gauge,
        Unit::Bytes,
        &[],
        "Bytes held in memory by open output files.",
    ),
    // Drift.
    doc(
        "scorestream_drift_statistic",
        Gauge,
        Unit::Count,
        &["feature", "statistic"],
        "The latest drift window's value of a statistic (psi, js, ks, ...) for a monitored column.",
    ),
    doc(
        "scorestream_drift_windows_total",
        Counter,
        Unit::Count,
        &[],
        "Drift windows closed.",
    ),
    doc(
        "scorestream_drift_alerts_total",
        Counter,
        Unit::Count,
        &["feature", "statistic"],
        "Drift thresholds breached.",
    ),
    doc(
        "scorestream_drift_rows_skipped_total",
        Counter,
        Unit::Count,
        &[],
        "Scored rows drift detection did not read one by one because its queue was full (a uniform sample stands for them).",
    ),
    doc(
        "scorestream_drift_healthy",
        Gauge,
        Unit::Count,
        &[],
        "1 while drift delivers every window to its table and alerts topic, 0 while it is degraded (scoring goes on).",
    ),
    doc(
        "scorestream_drift_failures_total",
        Counter,
        Unit::Count,
        &["cause"],
        "Failed attempts to deliver a drift window, by cause (table, alerts); the window is retried.",
    ),
    doc(
        "scorestream_drift_windows_dropped_total",
        Counter,
        Unit::Count,
        &[],
        "Drift windows given up on because too many were waiting for a failing table or alerts topic.",
    ),
];
