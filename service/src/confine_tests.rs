//! Job files as an attacker holding a token would write them: code loaded
//! or run through librdkafka settings, files read or written outside the
//! operator's roots, secrets under names nobody thought of. Each is
//! refused naming the key, and nothing the attack aimed at happens.

use std::path::Path;
use std::process::Command;

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::tests::{Api, SECRET, TOKEN, api, api_in, demo_confinement, repo};

/// Keys of the problems of a 400 or of a dry run's answer.
fn problem_keys(body: &Value) -> Vec<String> {
    body["problems"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Both doors a job file comes in by refuse it, naming `key`.
async fn refused(api: &Api, job: &str, key: &str) -> Value {
    let (status, dry, _) = api
        .call(
            Method::POST,
            "/v1/jobs/dry-run",
            Some(TOKEN),
            job.to_owned(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["valid"], false, "{dry}");
    assert!(
        problem_keys(&dry).iter().any(|k| k == key),
        "{key} not named: {dry}"
    );
    let (status, body, _) = api
        .call(Method::POST, "/v1/jobs", Some(TOKEN), job.to_owned())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        problem_keys(&body).iter().any(|k| k == key),
        "{key} not named: {body}"
    );
    body
}

fn with_option(job: &str, key: &str, value: &str) -> String {
    job.replace(
        "[source.options]\n",
        &format!("[source.options]\n{key:?} = {value:?}\n"),
    )
}

/// A shared library whose constructor leaves `marker` behind: if anything
/// `dlopen`s it, the marker exists.
fn plugin(dir: &Path, marker: &Path) -> Option<std::path::PathBuf> {
    let src = dir.join("evil.c");
    let so = dir.join("evil.so");
    std::fs::write(
        &src,
        format!(
            "#include <stdio.h>\n__attribute__((constructor)) static void pwn(void) {{ FILE *f = fopen({:?}, \"w\"); if (f) fclose(f); }}\n",
            marker.display().to_string()
        ),
    )
    .expect("source");
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&src)
        .status()
        .ok()?;
    built.success().then_some(so)
}

#[tokio::test(flavor = "multi_thread")]
async fn librdkafka_options_that_load_code_or_run_commands_are_refused() {
    let api = api(1 << 20);
    let job = api.demo_job("attack");
    let marker = api.dir.path().join("pwned");
    let so = plugin(api.dir.path(), &marker);
    let so_path = so
        .as_ref()
        .map_or("/tmp/x.so".to_owned(), |p| p.display().to_string());
    let body = refused(
        &api,
        &with_option(&job, "plugin.library.paths", &so_path),
        "source.options.\"plugin.library.paths\"",
    )
    .await;
    assert!(body.to_string().contains("shared library"), "{body}");
    if so.is_some() {
        assert!(!marker.exists(), "the plugin was loaded");
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI needs a C compiler");
    }
    let kinit = format!("touch {}", marker.display());
    let body = refused(
        &api,
        &with_option(&job, "sasl.kerberos.kinit.cmd", &kinit),
        "source.options.\"sasl.kerberos.kinit.cmd\"",
    )
    .await;
    assert!(body.to_string().contains("shell command"), "{body}");
    for key in ["ssl.engine.location", "ssl.providers", "debug"] {
        refused(
            &api,
            &with_option(&job, key, "all"),
            &format!("source.options.\"{key}\""),
        )
        .await;
    }
    assert!(!marker.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_option_values_are_refused_at_submit_not_later() {
    let api = api(1 << 20);
    let job = api.demo_job("typo");
    let body = refused(
        &api,
        &with_option(&job, "session.timeout.ms", "soon"),
        "source.options.\"session.timeout.ms\"",
    )
    .await;
    assert!(body.to_string().contains("librdkafka refuses"), "{body}");
    refused(
        &api,
        &with_option(&job, "enable.auto.commit", "true"),
        "source.options.\"enable.auto.commit\"",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_outside_the_roots_are_refused_without_reading_them() {
    let api = api(1 << 20);
    let job = api.demo_job("paths");
    let out = api.out.join("paths").display().to_string();
    let data = api.dir.path().join("data");
    let cases = [
        (job.replace(&out, "/etc/scorestream"), "sink.path"),
        (job.replace(&out, "/"), "sink.path"),
        (
            job.replace(&out, &format!("{}/../../x", api.out.display())),
            "sink.path",
        ),
        (
            job.replace(&out, &data.join("jobs").display().to_string()),
            "sink.path",
        ),
        (
            job.replace("path = \"features.csv\"", "path = \"/etc/shadow\""),
            "features.store.path",
        ),
        (
            job.replace(
                "path = \"features.csv\"",
                "path = \"../../../../etc/passwd\"",
            ),
            "features.store.path",
        ),
        (
            job.replace("path = \"model\"", "path = \"/etc\""),
            "model.path",
        ),
        (
            with_option(&job, "ssl.ca.location", "/etc/ssl/private/server.key"),
            "source.options.\"ssl.ca.location\"",
        ),
    ];
    for (attack, key) in &cases {
        let body = refused(&api, attack, key).await;
        let text = body.to_string();
        assert!(text.contains("outside the"), "{key}: {text}");
        assert!(!text.contains("root:"), "file contents echoed: {text}");
    }
    // The service's own state is refused even inside an output root.
    let wide = tempfile::tempdir().expect("tmp");
    let confinement = demo_confinement(wide.path(), &wide.path().join("data"));
    let api = api_in(wide, repo().join("jobs/demo"), confinement, 1 << 20);
    let own = api.dir.path().join("data").display().to_string();
    let attack = api
        .demo_job("state")
        .replace(&api.out.join("state").display().to_string(), &own);
    let body = refused(&api, &attack, "sink.path").await;
    assert!(body.to_string().contains("own state"), "{body}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn symbolic_links_out_of_a_root_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let inputs = dir.path().join("in");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&inputs).expect("in");
    std::fs::create_dir_all(&out).expect("out");
    std::os::unix::fs::symlink("/etc/passwd", inputs.join("features.csv")).expect("link");
    std::os::unix::fs::symlink("/tmp", out.join("escape")).expect("link");
    let confinement =
        scorestream_pipeline::config::Confinement::new(scorestream_pipeline::config::Roots {
            models: vec![repo().join("jobs/demo")],
            inputs: vec![inputs.clone()],
            outputs: vec![out.clone().into()],
            private: vec![dir.path().join("data")],
            also_options: Vec::new(),
        })
        .expect("roots");
    let api = api_in(dir, inputs.clone(), confinement, 1 << 20);
    let job = api.demo_job("links").replace(
        "path = \"model\"",
        &format!(
            "path = {:?}",
            repo().join("jobs/demo/model").display().to_string()
        ),
    );
    let body = refused(&api, &job, "features.store.path").await;
    assert!(body.to_string().contains("symbolic link"), "{body}");
    assert!(!body.to_string().contains("root:"), "{body}");
    let escaped = job
        .replace(
            "path = \"features.csv\"",
            &format!(
                "path = {:?}",
                repo().join("jobs/demo/features.csv").display().to_string()
            ),
        )
        .replace(
            &api.out.join("links").display().to_string(),
            &out.join("escape/x").display().to_string(),
        );
    refused(&api, &escaped, "sink.path").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn relative_outputs_resolve_against_the_base_and_one_output_is_one_output() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = dir.path().join("base");
    for f in [
        "features.csv",
        "model/manifest.json",
        "model/model.safetensors",
    ] {
        let to = base.join(f);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("dir");
        std::fs::copy(repo().join("jobs/demo").join(f), &to).expect("copy");
    }
    let confinement =
        scorestream_pipeline::config::Confinement::new(scorestream_pipeline::config::Roots {
            models: vec![base.clone()],
            inputs: vec![base.clone()],
            outputs: vec![base.clone().into()],
            private: vec![dir.path().join("data")],
            also_options: Vec::new(),
        })
        .expect("roots");
    let api = api_in(dir, base.clone(), confinement, 1 << 20);
    let job = |name: &str, out: &str| {
        api.demo_job(name)
            .replace(&api.out.join(name).display().to_string(), out)
    };
    let (status, body, _) = api
        .call(
            Method::POST,
            "/v1/jobs",
            Some(TOKEN),
            job("first", "out/dup"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let real = std::fs::canonicalize(&base).expect("base").join("out/dup");
    assert_eq!(body["output"], real.display().to_string(), "{body}");
    for (name, same) in [
        ("second", "out/./dup"),
        ("third", "out/dup/inner"),
        ("fourth", "out"),
    ] {
        let (status, body, _) = api
            .call(Method::POST, "/v1/jobs", Some(TOKEN), job(name, same))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{same}: {body}");
    }
    let (status, _, _) = api
        .call(Method::POST, "/v1/jobs/first/stop", Some(TOKEN), "")
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_under_unexpected_names_and_in_broken_toml_are_not_shown() {
    let api = api(1 << 20);
    let job = with_option(
        &api.demo_job("hidden"),
        "sasl.oauthbearer.extensions",
        &format!("logicalCluster=lkc-1,identityPoolId={SECRET}"),
    )
    .replace(
        "[source.options]\n",
        "[source.options]\n\"sasl.oauthbearer.method\" = \"oidc\"\n",
    );
    // librdkafka builds without libcurl refuse OAuth/OIDC settings, and
    // their refusal quotes the value; a build with it accepts the job and
    // shows its config. Either way the secret is not in what is shown.
    let (status, body, _) = api.call(Method::POST, "/v1/jobs", Some(TOKEN), job).await;
    assert!(!body.to_string().contains(SECRET), "{body}");
    if status == StatusCode::CREATED {
        let (_, shown, _) = api.call(Method::GET, "/v1/jobs/hidden", None, "").await;
        assert!(!shown.to_string().contains(SECRET), "{shown}");
        assert!(shown.to_string().contains("oidc"), "{shown}");
        api.call(Method::POST, "/v1/jobs/hidden/stop", Some(TOKEN), "")
            .await;
    } else {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body.to_string()
                .contains("sasl.oauthbearer.extensions <redacted>"),
            "{body}"
        );
    }

    let broken = format!("[job]\nname = \"x\"\n[source.options]\n\"sasl.password\" = \"{SECRET}\n");
    for uri in ["/v1/jobs", "/v1/jobs/dry-run"] {
        let (_, body, _) = api
            .call(Method::POST, uri, Some(TOKEN), broken.clone())
            .await;
        let text = body.to_string();
        assert!(text.contains("not valid TOML at line 4"), "{text}");
        assert!(!text.contains(SECRET), "{text}");
    }
}
