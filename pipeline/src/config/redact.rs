//! Job configs as they may be shown: a service returns and logs submitted
//! configs, and those may hold SASL passwords, tokens or a Redis URL with
//! its password. Secrets are found by key and by URL userinfo, wherever
//! they sit in the file: in an `options` table (librdkafka settings) by the
//! Kafka client's rule, which also takes any `sasl.*` or `*key*` setting
//! it does not know to be public; elsewhere by any name that suggests a
//! credential.

use scorestream_operators::kafka::is_secret;
use toml::{Table, Value};

pub use scorestream_schemas::REDACTED;

/// The secret values of one job config, to take out of anything shown.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Collects the secrets of `text` (a job config); text that is not
    /// TOML holds no value we could recognise, so nothing is collected.
    pub fn from_toml(text: &str) -> Self {
        let mut secrets = Vec::new();
        if let Ok(table) = toml::from_str::<Table>(text) {
            collect(&table, false, &mut secrets);
        }
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s: &String| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` with every secret value replaced.
    pub fn redact(&self, text: &str) -> String {
        scorestream_schemas::redact(text, self.secrets.iter().map(String::as_str))
    }
}

/// The config re-written with secret values replaced; comments and layout
/// are not kept (they could quote secrets too).
pub fn redacted_toml(text: &str) -> Result<String, String> {
    let mut table: Table =
        toml::from_str(text).map_err(|e| super::load::syntax_problem(text, &e).message)?;
    scrub(&mut table, false);
    toml::to_string(&table).map_err(|e| e.to_string())
}

/// Whether the value under `key` is a secret; `options` says the key is
/// a librdkafka setting.
fn secret_key(key: &str, options: bool) -> bool {
    if options {
        return is_secret(key);
    }
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "credential", "private"]
        .iter()
        .any(|s| k.contains(s))
}

fn collect(table: &Table, options: bool, out: &mut Vec<String>) {
    for (k, v) in table {
        collect_value(secret_key(k, options), k == "options", v, out);
    }
}

fn collect_value(secret: bool, options: bool, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if secret && !s.is_empty() => out.push(s.clone()),
        Value::String(s) => out.extend(url_password(s)),
        Value::Table(t) => collect(t, options, out),
        Value::Array(items) => items
            .iter()
            .for_each(|i| collect_value(secret, options, i, out)),
        _ => {}
    }
}

fn scrub(table: &mut Table, options: bool) {
    for (k, v) in table.iter_mut() {
        scrub_value(secret_key(k, options), k == "options", v);
    }
}

fn scrub_value(secret: bool, options: bool, v: &mut Value) {
    match v {
        Value::String(s) if secret => *s = REDACTED.to_owned(),
        Value::String(s) => {
            if let Some(p) = url_password(s) {
                *s = s.replace(&p, REDACTED);
            }
        }
        Value::Table(t) => scrub(t, options),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| scrub_value(secret, options, i)),
        _ => {}
    }
}

/// The password of a URL such as `redis://:pw@host:6379/0`, as written.
fn url_password(s: &str) -> Option<String> {
    let u = url::Url::parse(s).ok()?;
    let p = u.password()?;
    // The URL crate percent-encodes; the text holds it as the user wrote it.
    let rest = s.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    let written = userinfo.split_once(':').map_or(p, |(_, pw)| pw);
    (!written.is_empty()).then(|| written.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = r#"
[job]
name = "j"
[source]
brokers = "b:9092"
[source.options]
"sasl.username" = "alice"
"sasl.password" = "hunter2"
"ssl.key.password" = "keypw"
[features]
store = { kind = "redis", url = "redis://:s3cr3t@redis:6379/0" }
"#;

    #[test]
    fn secrets_by_key_and_url_password_are_replaced() {
        let shown = redacted_toml(JOB).expect("toml");
        for secret in ["hunter2", "keypw", "s3cr3t"] {
            assert!(!shown.contains(secret), "{secret} shown in:\n{shown}");
        }
        assert!(shown.contains("alice"), "{shown}");
        assert!(
            shown.contains("redis://:<redacted>@redis:6379/0"),
            "{shown}"
        );
        let r = Redactor::from_toml(JOB);
        assert_eq!(
            r.redact("auth failed for hunter2 at redis://:s3cr3t@redis"),
            "auth failed for <redacted> at redis://:<redacted>@redis"
        );
    }

    #[test]
    fn configs_without_secrets_are_unchanged_in_content() {
        let shown = redacted_toml("[job]\nname = \"j\"\n").expect("toml");
        assert_eq!(shown.trim(), "[job]\nname = \"j\"");
        assert_eq!(Redactor::from_toml("not toml [").redact("x"), "x");
    }
}
