//! Events spread over several hours of one day, some of them arriving live:
//! what the tests of the partitioned output produce and then count.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::thread::JoinHandle;

use scorestream_tools::ToolError;
use scorestream_tools::demo::generator_options;
use scorestream_tools::synth::{
    EventGen, EventKind, GenOptions, Pace, ProduceReport, World, produce,
};

/// 2026-12-01T00:00:00Z
pub(crate) const DAY: i64 = 1_796_083_200_000;
pub(crate) const HOUR: i64 = 3_600_000;

/// The `i`th block of `per_hour` events, in hour `hour`: they start 5
/// minutes into it and advance ~1 ms per event, so all stay within it.
pub(crate) fn hour_options(hour: i64, i: usize, per_hour: u64, seed: u64) -> GenOptions {
    GenOptions {
        start_ms: DAY + hour * HOUR + 5 * 60_000,
        first_seq: i as u64 * per_hour,
        ..generator_options(seed)
    }
}

/// Produces `n` events at `rate` per second on a thread: the part of a test
/// that arrives while the job runs.
pub(crate) fn produce_live(
    brokers: &str,
    world: &World,
    opts: GenOptions,
    n: u64,
    rate: u64,
) -> JoinHandle<Result<ProduceReport, ToolError>> {
    let (brokers, world) = (brokers.to_owned(), world.clone());
    std::thread::spawn(move || {
        let mut g = EventGen::new(&world, opts);
        let (progress, stop) = (AtomicU64::new(0), AtomicBool::new(false));
        let pace = Pace {
            rate: Some(rate),
            progress: &progress,
            stop: &stop,
            ahead_of: None,
        };
        produce(&brokers, "transactions", &mut g, n, &pace)
    })
}

/// Rows each `2026-12-01/HH` partition must hold: the events produced for
/// `hours`, `per_hour` each and in that order, that are not malformed.
pub(crate) fn scored_by_hour(
    produced: &[(String, EventKind)],
    hours: &[i64],
    per_hour: u64,
) -> BTreeMap<String, u64> {
    hours
        .iter()
        .zip(produced.chunks(per_hour as usize))
        .map(|(h, events)| {
            let scored = events
                .iter()
                .filter(|(_, k)| *k != EventKind::Malformed)
                .count() as u64;
            (format!("2026-12-01/{h:02}"), scored)
        })
        .collect()
}
