use super::load_str;

const DEMO: &str = include_str!("../../../jobs/demo/job.toml");

#[test]
fn the_demo_job_parses_with_its_declared_values() {
    let job = load_str(DEMO).expect("demo job is valid");
    assert_eq!(job.job.name.as_str(), "fraud-demo");
    assert_eq!(job.batch.max_rows, 65_536);
    assert_eq!(job.batch.max_wait.0, std::time::Duration::from_millis(250));
    assert_eq!(job.schema.fields.len(), 7);
    assert_eq!(job.source.max_message_bytes.0, 64 * 1024);
}

fn problems(text: &str) -> Vec<String> {
    load_str(text)
        .expect_err("invalid")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn every_problem_is_reported_at_once_each_with_its_key() {
    let bad = DEMO
        .replace("max_wait = \"250ms\"", "max_wait = \"soon\"\nmax_rowz = 5")
        .replace("device = \"auto\"", "device = \"gpu\"")
        .replace("on_missing = \"null\"", "on_missing = \"skip\"")
        .replace(
            "{ name = \"amount\", type = \"float64\"",
            "{ name = \"amount\", type = \"float\"",
        )
        .replace(
            "{ name = \"country\", type = \"string\", required = true }",
            "{ name = \"country\", type = \"string\", required = \"yes\" }",
        )
        .replace("group_id = \"scorestream-fraud-demo\"", "group_id = \"\"")
        + "\n[extras]\nx = 1\n";
    // Without its [sink] section (up to the next one).
    let (head, rest) = bad.split_once("[sink]").expect("sink section");
    let bad = format!("{head}{}", &rest[rest.find("\n[").expect("next section")..]);
    let p = problems(&bad);
    let expect_keys = [
        "extras:",
        "sink: missing section",
        "batch.max_wait:",
        "batch.max_rowz:",
        "model.device:",
        "features.on_missing:",
        "schema.fields[2].type:",
        "schema.fields[4].required:",
        "source.group_id:",
    ];
    for k in expect_keys {
        assert!(
            p.iter().any(|m| m.starts_with(k)),
            "no problem for `{k}` in {p:#?}"
        );
    }
    assert_eq!(p.len(), expect_keys.len(), "{p:#?}");
    let wait = p
        .iter()
        .find(|m| m.starts_with("batch.max_wait"))
        .expect("wait");
    assert!(wait.contains("\"soon\"") && wait.contains("50ms"), "{wait}");
    let device = p
        .iter()
        .find(|m| m.starts_with("model.device"))
        .expect("device");
    assert!(device.contains("auto, cpu, cuda:N"), "{device}");
    let on_missing = p
        .iter()
        .find(|m| m.starts_with("features.on_missing"))
        .expect("on_missing");
    assert!(
        on_missing.contains("null")
            && on_missing.contains("dead_letter")
            && on_missing.contains("fail"),
        "{on_missing}"
    );
    let t = p
        .iter()
        .find(|m| m.starts_with("schema.fields[2].type"))
        .expect("type");
    assert!(t.contains("float64") && t.contains("timestamp"), "{t}");
}

#[test]
fn unknown_keys_inside_nested_tables_are_named() {
    let bad = DEMO.replace(
        "key_column = \"account_id\"",
        "key_column = \"account_id\", colour = \"red\"",
    );
    let p = problems(&bad);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("features.store.colour:"), "{p:?}");
}

#[test]
fn duplicate_schema_fields_and_syntax_errors_are_reported() {
    let dup = DEMO.replace("{ name = \"channel\"", "{ name = \"country\"");
    let p = problems(&dup);
    assert!(
        p.iter()
            .any(|m| m.starts_with("schema.fields:") && m.contains("`country`")),
        "{p:?}"
    );

    let p = problems("[job\nname = 1");
    assert_eq!(p.len(), 1);
    assert!(
        p[0].contains("not valid TOML") && p[0].contains("line 1"),
        "{p:?}"
    );
}

#[test]
fn secrets_in_kafka_options_do_not_leak_into_errors_or_debug_output() {
    let with_secret = DEMO
        .replace(
            "[schema]",
            "[source.options]\n\"sasl.password\" = \"hunter2\"\n\n[schema]",
        )
        .replace("max_rows = 65536", "max_rows = 0");
    let p = problems(&with_secret);
    assert!(p.iter().all(|m| !m.contains("hunter2")), "{p:?}");
    let ok = load_str(&DEMO.replace(
        "[schema]",
        "[source.options]\n\"sasl.password\" = \"hunter2\"\n\n[schema]",
    ))
    .expect("valid");
    assert!(!format!("{ok:?}").contains("hunter2"));
}

#[test]
fn dead_letters_default_to_parquet_only() {
    let job = load_str(DEMO).expect("valid");
    assert!(job.dead_letters.parquet);
    assert_eq!(job.dead_letters.topic, None);

    let job = load_str(&format!(
        "{DEMO}\n[dead_letters]\ntopic = \"transactions.dead-letters\"\n"
    ))
    .expect("valid");
    assert!(job.dead_letters.parquet, "parquet stays on by default");
    assert_eq!(
        job.dead_letters.topic.as_deref(),
        Some("transactions.dead-letters")
    );

    let job = load_str(&format!(
        "{DEMO}\n[dead_letters]\nparquet = false\ntopic = \"dlq\"\n"
    ))
    .expect("valid");
    assert!(!job.dead_letters.parquet);
}

#[test]
fn dead_letter_problems_are_named_under_their_section() {
    let p = problems(&format!("{DEMO}\n[dead_letters]\nparquet = false\n"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("dead_letters.parquet:") && p[0].contains("dead_letters.topic"),
        "{p:?}"
    );

    let p = problems(&format!(
        "{DEMO}\n[dead_letters]\nparquet = \"yes\"\ncolour = 1\n"
    ));
    for k in ["dead_letters.parquet:", "dead_letters.colour:"] {
        assert!(p.iter().any(|m| m.starts_with(k)), "no `{k}` in {p:#?}");
    }
    assert_eq!(p.len(), 2, "{p:#?}");

    let p = problems(&format!("{DEMO}\n[dead_letters]\ntopic = \"bad topic\"\n"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("dead_letters.topic:"), "{p:?}");

    // the demo consumes `transactions`: dead letters there would loop forever
    let p = problems(&format!(
        "{DEMO}\n[dead_letters]\ntopic = \"transactions\"\n"
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("dead_letters.topic:") && p[0].contains("source topic"),
        "{p:?}"
    );
}

#[test]
fn a_latency_target_is_checked_and_caps_the_wait() {
    let p = problems(&DEMO.replace(
        "max_wait = \"250ms\"",
        "max_wait = \"250ms\"\ntarget_latency = \"0ms\"\nmin_rows = 100000",
    ));
    assert!(
        p.iter()
            .any(|m| m.starts_with("batch.target_latency:") && m.contains("longer than 0ms")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|m| m.starts_with("batch.min_rows:") && m.contains("65536")),
        "{p:#?}"
    );
    let job = load_str(&DEMO.replace(
        "max_wait = \"250ms\"",
        "max_wait = \"250ms\"\ntarget_latency = \"200ms\"",
    ))
    .expect("valid");
    assert_eq!(
        job.batch.effective_max_wait(),
        std::time::Duration::from_millis(100)
    );
    let size = job
        .batch
        .adaptive()
        .expect("a latency target steers the size");
    assert_eq!(size.rows(), 65_536, "it starts at max_rows");
}
