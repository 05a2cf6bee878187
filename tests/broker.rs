//! The job against a real Kafka-protocol broker (tansu), not the mock.

mod common;

use common::process::*;
use common::tansu::{Tansu, produce_events};
use common::*;
use scorestream_tools::demo::generator_options;

/// Events produced to a real broker are all scored or dead-lettered exactly
/// once by `scorestream run`, and the group's committed offsets cover them
/// all (tansu's high watermark is unreliable, so offsets and counts are checked).
#[test]
fn run_against_a_real_broker_scores_every_event_exactly_once() {
    let broker = Tansu::start();
    broker.create_topic("transactions", 3);
    let n = 20_000;
    let produced = produce_events(&broker.brokers, "transactions", generator_options(31), n);

    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let job = job_file(
        dir.path(),
        &broker.brokers,
        &out,
        "tansu-run",
        TANSU_SESSION,
    );
    let o = run(bin().arg("run").arg(&job).args(["--exit-on-idle", "3s"]));
    assert!(o.status.success(), "{}", text(&o.stderr));

    assert_exactly_once(&out, &produced);
    assert_eq!(
        committed_total(&broker.brokers, "tansu-run", "transactions", 3),
        n as i64
    );
}
