//! `sink.path`: a local directory or `s3://bucket/prefix`, parsed once when
//! the job loads so a typo is named before anything runs.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The output root named by `sink.path`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum OutputPath {
    Local(PathBuf),
    Object(ObjectUrl),
}

impl TryFrom<String> for OutputPath {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        OutputPath::parse(&s)
    }
}

impl From<PathBuf> for OutputPath {
    fn from(p: PathBuf) -> Self {
        OutputPath::Local(p)
    }
}

impl From<&Path> for OutputPath {
    fn from(p: &Path) -> Self {
        OutputPath::Local(p.to_owned())
    }
}

impl OutputPath {
    /// A path, `file:///path`, or `s3://bucket[/prefix]` (`s3a://` too).
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some((scheme, _)) = s.split_once("://") else {
            if s.is_empty() {
                return Err("the output path is empty".into());
            }
            return Ok(OutputPath::Local(PathBuf::from(s)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let url =
                    url::Url::parse(s).map_err(|e| format!("`{s}` is not a valid URL: {e}"))?;
                url.to_file_path()
                    .map(OutputPath::Local)
                    .map_err(|()| format!("`{s}` is not a local file URL"))
            }
            "s3" | "s3a" => ObjectUrl::parse(s).map(OutputPath::Object),
            other => Err(format!(
                "unsupported storage scheme `{other}://` in `{s}`: use a local directory or s3://bucket/prefix (S3 and S3-compatible stores)"
            )),
        }
    }

    pub fn local(&self) -> Option<&Path> {
        match self {
            OutputPath::Local(p) => Some(p),
            OutputPath::Object(_) => None,
        }
    }

    pub(crate) fn is_object_store(&self) -> bool {
        matches!(self, OutputPath::Object(_))
    }
}

impl fmt::Display for OutputPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputPath::Local(p) => write!(f, "{}", p.display()),
            OutputPath::Object(u) => write!(f, "{u}"),
        }
    }
}

/// `s3://bucket/prefix`, with the prefix checked to be a valid object key
/// (no empty, `.` or `..` segments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    scheme: String,
    bucket: String,
    prefix: String,
}

impl ObjectUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        // URL parsing would quietly resolve `a/../b` to `b`: refuse it instead.
        let raw_path = s.split_once("://").map_or("", |(_, r)| r);
        if raw_path
            .split(['/', '?', '#'])
            .skip(1)
            .any(|seg| seg == "." || seg == "..")
        {
            return Err(format!(
                "`{s}`: the prefix is not a valid object key: `.` and `..` segments are not allowed"
            ));
        }
        let url = url::Url::parse(s).map_err(|e| format!("`{s}` is not a valid URL: {e}"))?;
        let bucket = url.host_str().unwrap_or_default().to_owned();
        if bucket.is_empty() {
            return Err(format!("`{s}` names no bucket: use s3://bucket/prefix"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "`{s}`: an output URL takes no query or fragment; S3 settings go in [sink.s3]"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "an output URL must not carry credentials: use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                    .into(),
            );
        }
        let prefix = url.path().trim_matches('/').to_owned();
        if !prefix.is_empty() {
            object_store::path::Path::parse(&prefix)
                .map_err(|e| format!("`{s}`: the prefix is not a valid object key: {e}"))?;
        }
        Ok(Self {
            scheme: url.scheme().to_owned(),
            bucket,
            prefix,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, without leading or trailing `/` (empty at the bucket root).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `s3://bucket`: what DataFusion registers a store under.
    pub fn bucket_url(&self) -> String {
        format!("{}://{}", self.scheme, self.bucket)
    }

    pub fn child(&self, rel: &str) -> ObjectUrl {
        let mut c = self.clone();
        c.prefix = super::join(&self.prefix, rel.trim_matches('/'));
        c
    }
}

impl fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// `[sink.s3]`: how to reach the bucket, over what the `AWS_*` environment
/// variables say. Credentials come only from the environment (or the
/// instance's role), so a job file never holds a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Options {
    /// An S3-compatible endpoint (MinIO, Ceph, R2, moto), e.g.
    /// `http://127.0.0.1:9000`. AWS itself needs none.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Permit `http://` endpoints (off by default: credentials would travel
    /// in clear).
    pub allow_http: Option<bool>,
    /// `https://bucket.endpoint` rather than `https://endpoint/bucket`.
    pub virtual_hosted_style: Option<bool>,
    /// Multipart uploads of the sink's files under the prefix that are
    /// older than this are aborted at start and after each commit-log
    /// checkpoint (default one day). Younger ones may belong to a running
    /// writer; ones for offsets already committed are aborted at any age.
    pub abort_uploads_older_than: Option<crate::config::HumanDuration>,
}

impl S3Options {
    pub fn is_empty(&self) -> bool {
        *self == S3Options::default()
    }
}
