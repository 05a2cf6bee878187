//! Kafka client settings pass through from the job config, and secrets in
//! them never reach logs, status output or errors — even with librdkafka's
//! own debug logging switched on.

mod common;

use std::time::Duration;

use common::process::*;
use common::tansu::Tansu;

const SECRET: &str = "hunter2-do-not-print";

/// The job file's text with SASL/PLAIN over plaintext (which tansu does not
/// offer) and `extra` options.
fn with_sasl(job: &std::path::Path, extra: &str) -> String {
    std::fs::read_to_string(job).expect("job").replace(
        "[source.options]",
        &format!(
            "[source.options]\n\"security.protocol\" = \"sasl_plaintext\"\n\"sasl.mechanism\" = \"PLAIN\"\n\
             \"sasl.username\" = \"alice\"\n\"sasl.password\" = \"{SECRET}\"{extra}"
        ),
    )
}

#[test]
fn sasl_settings_reach_librdkafka_and_the_password_is_never_printed() {
    let broker = Tansu::start();
    broker.create_topic("transactions", 1);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let job = job_file(dir.path(), &broker.brokers, &out, "secrets", TANSU_SESSION);
    // SASL/PLAIN over plaintext to a broker that does not offer it: the
    // client authenticates with the password, fails, and logs about it.
    let toml = with_sasl(&job, "\n\"debug\" = \"all\"");
    std::fs::write(&job, toml).expect("job");

    let v = run(bin().arg("validate").arg(&job));
    let shown = format!("{}{}", text(&v.stdout), text(&v.stderr));
    assert!(v.status.success(), "{shown}");
    assert!(
        !shown.contains(SECRET),
        "validate printed the password:\n{shown}"
    );

    let log = dir.path().join("run.log");
    let file = std::fs::File::create(&log).expect("log");
    let mut child = bin()
        .arg("run")
        .arg(&job)
        .env("RUST_LOG", "debug")
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .expect("run");
    std::thread::sleep(Duration::from_secs(4));
    run(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let status = child.wait().expect("exit");
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(
        logged.contains("sasl") || logged.contains("SASL"),
        "the SASL settings reached librdkafka (its debug log mentions SASL):\n{}",
        &logged[..logged.len().min(4000)]
    );
    assert!(logged.len() > 10_000, "debug=all produced a verbose log");
    assert!(
        !logged.contains(SECRET),
        "the password leaked into the log (exit {status})"
    );

    // a setting librdkafka refuses is named in the error, the secret is not
    let bad = std::fs::read_to_string(&job).expect("job").replace(
        "\"sasl.mechanism\" = \"PLAIN\"",
        "\"sasl.mechanism\" = \"NOPE\"",
    );
    std::fs::write(&job, bad).expect("job");
    let o = run(bin().arg("run").arg(&job));
    let shown = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(!o.status.success());
    assert!(shown.contains("SASL mechanism: NOPE"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
}

/// A refused login does not leave the job `running` with no progress:
/// librdkafka retries forever, the job fails within `source.auth_timeout`
/// saying why, and the password is not in what it says.
#[test]
fn a_job_the_cluster_keeps_refusing_fails_within_its_auth_timeout() {
    let broker = Tansu::start();
    broker.create_topic("transactions", 1);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let job = job_file(dir.path(), &broker.brokers, &out, "auth", TANSU_SESSION);
    let toml = with_sasl(&job, "").replace("group_id = ", "auth_timeout = \"3s\"\ngroup_id = ");
    std::fs::write(&job, toml).expect("job");
    let log = dir.path().join("run.log");
    let mut child = spawn_run(&job, &[], &log);
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!(
                "the job kept running although every login was refused:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(!status.success(), "{logged}");
    assert!(
        logged.contains("authentication kept failing") && logged.contains("source.auth_timeout"),
        "{logged}"
    );
    assert!(!logged.contains(SECRET), "{logged}");
}
