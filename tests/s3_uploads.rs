//! Multipart uploads a crash abandoned, against a real S3-compatible server
//! (moto, on loopback): opening the sink aborts its own uploads under its
//! prefix that can never be committed, keeps ones a live writer may still
//! be sending, and never touches anything outside its prefix or not its own.
//! What remains is listed with boto3, a client independent of the sink's.

mod common;

use std::process::Command;
use std::sync::Arc;

use arrow::datatypes::Schema;
use common::s3_server::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::MultipartStore;
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutPayload};
use scorestream_operators::sink::parquet::{
    ObjectUrl, ParquetSink, ParquetSinkConfig, PartitionSpec, Store,
};

const BUCKET: &str = "analytics";
const PREFIX: &str = "jobs/fraud";
const HOUR: &str = "scores/event_date=2026-12-01/event_hour=9";

fn client(s3: &S3Server) -> AmazonS3Builder {
    AmazonS3Builder::new()
        .with_endpoint(&s3.endpoint)
        .with_allow_http(true)
        .with_bucket_name(BUCKET)
        .with_region(REGION)
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
}

/// Keys of the uploads in progress in the bucket, as boto3 lists them.
fn uploads(s3: &S3Server) -> Vec<String> {
    let script = "import boto3, json, sys\n\
        s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1')\n\
        r = s3.list_multipart_uploads(Bucket=sys.argv[2])\n\
        print(json.dumps(sorted(u['Key'] for u in r.get('Uploads', []))))";
    let o = Command::new("python3")
        .args(["-c", script, &s3.endpoint, BUCKET])
        .envs(s3.env())
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "boto3 (installed with moto) failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("json")
}

/// Starts an upload of `key` with one part, and leaves it, as a writer
/// killed mid-upload does.
async fn abandon(s3: &AmazonS3, key: &str) {
    let path = Key::parse(key).expect("key");
    let id = s3.create_multipart(&path).await.expect("create upload");
    s3.put_part(&path, &id, 0, PutPayload::from(vec![7u8; 5 << 20]))
        .await
        .expect("part");
}

fn open_sink(s3: &S3Server, spool: &std::path::Path, older_than: &str) {
    let url = format!("s3://{BUCKET}/{PREFIX}");
    let config: ParquetSinkConfig = toml::from_str(&format!(
        "path = \"{url}\"\ns3 = {{ abort_uploads_older_than = \"{older_than}\" }}"
    ))
    .expect("config");
    let store = Store::s3(client(s3), &ObjectUrl::parse(&url).expect("url"), spool).expect("store");
    let spec = PartitionSpec::new(&[], "ingest_time", &Arc::new(Schema::empty())).expect("spec");
    let sink = ParquetSink::open_in(store, &config, spec).expect("open");
    sink.close().expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_the_sink_aborts_its_abandoned_uploads_and_nothing_else() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let store = client(&s3).build().expect("client");
    // Offsets 0..100 of t/0 are committed.
    let entry = serde_json::json!({
        "topic": "t", "partition": 0, "start": 0, "end": 100, "writer": "w1-1",
        "committed_at_ms": 0, "files": []
    });
    store
        .put(
            &Key::parse(format!(
                "{PREFIX}/_scorestream/commits/t+0+00000000000000000000.json"
            ))
            .expect("key"),
            PutPayload::from(serde_json::to_vec(&entry).expect("json")),
        )
        .await
        .expect("entry");
    let dead = format!("{PREFIX}/{HOUR}/.t+0+00000000000000000050.parquet.w1-1.tmp");
    let live = format!("{PREFIX}/{HOUR}/.t+0+00000000000000000100.parquet.w2-2.tmp");
    let beside = format!("{PREFIX}dulent/{HOUR}/.t+0+00000000000000000000.parquet.w1-1.tmp");
    let foreign = format!("{PREFIX}/exports/big.csv");
    for key in [&dead, &live, &beside, &foreign] {
        abandon(&store, key).await;
    }
    let mut all = vec![dead.clone(), live.clone(), beside.clone(), foreign.clone()];
    all.sort();
    assert_eq!(uploads(&s3), all, "four uploads in progress");

    let spool = tempfile::tempdir().expect("spool");
    // moto reports every upload as initiated on 2010-11-10 (a constant in
    // its ListMultipartUploads response), so "young" needs a limit longer
    // than that; S3 reports the real time.
    open_sink(&s3, spool.path(), "36500d");
    let mut left = vec![live.clone(), beside.clone(), foreign.clone()];
    left.sort();
    assert_eq!(
        uploads(&s3),
        left,
        "the upload for committed offsets is aborted; one past the chain's end may be live"
    );

    open_sink(&s3, spool.path(), "0s");
    let mut left = vec![beside, foreign];
    left.sort();
    assert_eq!(
        uploads(&s3),
        left,
        "past the age limit the sink's own upload goes too, never one outside its prefix or not its own"
    );
}
