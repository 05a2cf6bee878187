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

#[test]
fn a_toml_syntax_error_names_its_place_but_never_quotes_the_line() {
    let broken = DEMO.replace(
        "[schema]",
        "[source.options]\n\"sasl.password\" = \"hunter2\n\n[schema]",
    );
    let p = problems(&broken);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("not valid TOML at line"), "{p:?}");
    assert!(!p[0].contains("hunter2"), "{p:?}");
    let shown = super::redacted_toml(&broken).expect_err("not TOML");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn option_names_and_values_librdkafka_refuses_are_named_for_shell_users_too() {
    let typo = DEMO.replace(
        "[schema]",
        "[source.options]\n\"sesion.timeout.ms\" = \"3000\"\n\"fetch.wait.max.ms\" = \"soon\"\n\n[schema]",
    );
    let p = problems(&typo);
    assert!(
        p.iter()
            .any(|m| m.starts_with("source.options.\"sesion.timeout.ms\"")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.starts_with("source.options.\"fetch.wait.max.ms\"")),
        "{p:?}"
    );
    // What only a hosted job is refused, a shell user may set.
    let own_machine = DEMO.replace(
        "[schema]",
        "[source.options]\n\"sasl.kerberos.service.name\" = \"kafka\"\n\n[schema]",
    );
    load_str(&own_machine).expect("a shell user's own job");
}

#[test]
fn secrets_are_redacted_by_pattern_under_names_nobody_listed() {
    let job = DEMO.replace(
        "[schema]",
        "[source.options]\n\"sasl.oauthbearer.extensions\" = \"pool=ext-s3cr3t\"\n\
         \"sasl.username\" = \"alice\"\n\"ssl.keystore.password\" = \"ks-pw\"\n\
         \"ssl.key.location\" = \"/etc/kafka/client.key\"\n\n[schema]",
    ) + "\n[extra_creds]\napi_token = \"tok-9\"\nmy_credential = \"cred-7\"\n";
    let shown = super::redacted_toml(&job).expect("toml");
    for secret in ["ext-s3cr3t", "ks-pw", "tok-9", "cred-7"] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
    for public in ["alice", "/etc/kafka/client.key", "account_id"] {
        assert!(shown.contains(public), "{public} hidden:\n{shown}");
    }
    let r = super::Redactor::from_toml(&job);
    assert_eq!(
        r.redact("x pool=ext-s3cr3t tok-9"),
        "x <redacted> <redacted>"
    );
}

#[test]
fn a_service_resolves_every_relative_path_against_its_base() {
    let text = DEMO.replace(
        "[schema]",
        "[source.options]\n\"ssl.ca.location\" = \"certs/ca.pem\"\n\n[schema]",
    );
    let mut job = load_str(&text).expect("valid");
    job.resolve_every_path(std::path::Path::new("/srv/base"));
    assert_eq!(
        job.sink.path.to_string(),
        "/srv/base/out/fraud-demo",
        "sink.path"
    );
    assert_eq!(job.model.path, std::path::Path::new("/srv/base/model"));
    assert_eq!(
        job.source.options["ssl.ca.location"],
        "/srv/base/certs/ca.pem"
    );
    let mut run = load_str(&text).expect("valid");
    run.resolve_paths(std::path::Path::new("/srv/base"));
    assert_eq!(run.sink.path.to_string(), "out/fraud-demo", "run keeps cwd");
}

#[test]
fn each_column_type_is_refused_where_it_cannot_be_read() {
    // int32 is a feature type: a JSON number carries no width.
    let p = problems(&DEMO.replace(
        "{ name = \"amount\", type = \"float64\"",
        "{ name = \"amount\", type = \"int32\"",
    ));
    assert_eq!(
        p,
        [
            "schema.fields: field `amount` has type int32; event fields take string, int64, float64, bool, timestamp"
        ]
    );
}

#[test]
fn a_feature_cannot_be_a_timestamp() {
    const COMPOSE: &str = include_str!("../../../jobs/compose/job.toml");
    load_str(COMPOSE).expect("the compose job is valid");
    let p = problems(&COMPOSE.replace(
        "name = \"txn_count_1d\"\ntype = \"int64\"",
        "name = \"txn_count_1d\"\ntype = \"timestamp\"",
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("features.columns[4].type: feature `txn_count_1d` has type timestamp; features take string, int32"),
        "{p:?}"
    );
}
