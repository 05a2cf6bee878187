//! Multipart uploads in progress under the output's prefix, so that ones a
//! crash abandoned can be aborted: S3 keeps (and bills) their parts until
//! then, and they never show up in a listing of objects.
//!
//! `object_store` 0.13 can abort an upload (`MultipartStore::abort_multipart`)
//! but has no call that lists them, so the listing is a raw
//! `ListMultipartUploads` request, signed with `object_store`'s own SigV4
//! signer (`AwsAuthorizer`) and credentials and sent with its HTTP client.

use std::sync::Arc;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer};
use object_store::client::{
    ClientConfigKey, ClientOptions, HttpClient, HttpConnector, HttpRequest, HttpRequestBody,
    ReqwestConnector,
};
use object_store::multipart::MultipartStore;
use object_store::path::Path;

use crate::{OperatorError, Result};

/// One upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upload {
    /// The object key, bucket-relative.
    pub key: String,
    pub id: String,
    /// When it was initiated, in ms since the epoch, if the store said.
    pub initiated_ms: Option<i64>,
}

pub(super) struct Uploads {
    s3: Arc<AmazonS3>,
    bucket_endpoint: String,
    region: String,
    client: HttpClient,
}

fn failed(what: &str, reason: impl std::fmt::Display) -> OperatorError {
    OperatorError::OutputConfig(format!("{what}: {reason}"))
}

impl Uploads {
    /// The bucket's URL is worked out as `object_store` does for a path
    /// style or virtual-hosted request.
    pub(super) fn new(b: &AmazonS3Builder, s3: Arc<AmazonS3>) -> Result<Self> {
        let get = |k: AmazonS3ConfigKey| b.get_config_value(&k);
        let region = get(AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
        let bucket = get(AmazonS3ConfigKey::Bucket).unwrap_or_default();
        let virtual_hosted = get(AmazonS3ConfigKey::VirtualHostedStyleRequest)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let bucket_endpoint = match (get(AmazonS3ConfigKey::Endpoint), virtual_hosted) {
            (Some(e), true) => e,
            (Some(e), false) => format!("{}/{bucket}", e.trim_end_matches('/')),
            (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
            (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        };
        let allow_http = get(AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let client = ReqwestConnector::default()
            .connect(&ClientOptions::new().with_allow_http(allow_http))
            .map_err(|e| failed("cannot build an HTTP client for the output", e))?;
        Ok(Self {
            s3,
            bucket_endpoint,
            region,
            client,
        })
    }

    /// Every upload in progress whose key starts with `prefix`.
    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<Upload>> {
        let what = "listing multipart uploads";
        let mut out = Vec::new();
        let mut marker: Option<(String, String)> = None;
        loop {
            let mut url = url::Url::parse(&self.bucket_endpoint).map_err(|e| failed(what, e))?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("uploads", "").append_pair("prefix", prefix);
                if let Some((key, id)) = &marker {
                    q.append_pair("key-marker", key)
                        .append_pair("upload-id-marker", id);
                }
            }
            let body = self.get(url.as_str(), what).await?;
            let page = parse(&body);
            out.extend(
                page.uploads
                    .into_iter()
                    .filter(|u| u.key.starts_with(prefix)),
            );
            match page.next {
                Some(next) if page.truncated && marker.as_ref() != Some(&next) => {
                    marker = Some(next)
                }
                _ => return Ok(out),
            }
        }
    }

    async fn get(&self, url: &str, what: &str) -> Result<String> {
        let credential = self
            .s3
            .credentials()
            .get_credential()
            .await
            .map_err(|source| OperatorError::ObjectStore {
                context: what.into(),
                source,
            })?;
        let mut request = HttpRequest::new(HttpRequestBody::empty());
        *request.uri_mut() = url.parse().map_err(|e| failed(what, e))?;
        AwsAuthorizer::new(&credential, "s3", &self.region).authorize(&mut request, None);
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| failed(what, e))?;
        let status = response.status();
        let body = response
            .into_body()
            .bytes()
            .await
            .map_err(|e| failed(what, e))?;
        let text = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            // The body is S3's error document: a code and a message, no secret.
            return Err(failed(what, format!("HTTP {status}: {}", text.trim())));
        }
        Ok(text)
    }

    pub(super) async fn abort(&self, key: &str, id: &str) -> Result<()> {
        let path = Path::parse(key).map_err(|e| failed("aborting an upload", e))?;
        self.s3
            .abort_multipart(&path, &id.to_owned())
            .await
            .map_err(|source| OperatorError::ObjectStore {
                context: format!("aborting the multipart upload of {key}"),
                source,
            })
    }
}

struct Page {
    uploads: Vec<Upload>,
    truncated: bool,
    next: Option<(String, String)>,
}

/// Reads a `ListMultipartUploadsResult`; elements it does not know are skipped.
fn parse(xml: &str) -> Page {
    let mut uploads = Vec::new();
    let mut rest = xml;
    while let Some(block) = element(rest, "Upload") {
        if let (Some(key), Some(id)) = (element(block, "Key"), element(block, "UploadId")) {
            uploads.push(Upload {
                key: unescape(key),
                id: unescape(id),
                initiated_ms: element(block, "Initiated")
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
                    .map(|t| t.timestamp_millis()),
            });
        }
        let end = rest
            .find("</Upload>")
            .map_or(rest.len(), |i| i + "</Upload>".len());
        rest = &rest[end..];
    }
    let head = xml.split("<Upload>").next().unwrap_or(xml);
    let next = element(head, "NextKeyMarker")
        .zip(element(head, "NextUploadIdMarker"))
        .map(|(k, i)| (unescape(k), unescape(i)));
    Page {
        uploads,
        truncated: element(head, "IsTruncated").is_some_and(|t| t.trim() == "true"),
        next,
    }
}

/// The text of the first `<tag>…</tag>` in `xml`.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + len])
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_listing_page_is_read() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>analytics</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>p/b&amp;c</NextKeyMarker><NextUploadIdMarker>id2</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>p/a.tmp</Key><UploadId>id1</UploadId><Initiated>2026-12-01T09:00:00.000Z</Initiated></Upload>
  <Upload><Key>p/b&amp;c</Key><UploadId>id2</UploadId></Upload>
</ListMultipartUploadsResult>"#;
        let page = super::parse(xml);
        assert!(page.truncated);
        assert_eq!(page.next, Some(("p/b&c".into(), "id2".into())));
        assert_eq!(page.uploads.len(), 2);
        assert_eq!(page.uploads[0].key, "p/a.tmp");
        assert_eq!(page.uploads[0].initiated_ms, Some(1_796_115_600_000));
        assert_eq!(
            (page.uploads[1].key.as_str(), page.uploads[1].initiated_ms),
            ("p/b&c", None)
        );
    }
}
