//! The commit protocol on an object store. The store is object_store's
//! in-memory implementation of the same trait the S3 client implements, so
//! crash states can be laid out object by object; the S3 client itself is
//! exercised against a real S3-compatible server in `tests/object_store.rs`.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::tests::{H09, H10, HOUR, NINE, dead, env, rows, rows_at, schema, values};
use super::*;

const URL: &str = "s3://bucket/jobs/fraud";
const PREFIX: &str = "jobs/fraud";

struct Bucket {
    mem: Arc<InMemory>,
    spool: tempfile::TempDir,
}

impl Bucket {
    fn new() -> Self {
        Self {
            mem: Arc::new(InMemory::new()),
            spool: tempfile::tempdir().expect("spool"),
        }
    }

    fn store(&self) -> Store {
        let url = ObjectUrl::parse(URL).expect("url");
        Store::object(self.mem.clone(), url, self.spool.path()).expect("store")
    }

    fn sink(&self) -> ParquetSink {
        let config = ParquetSinkConfig::at_output(OutputPath::parse(URL).expect("url"));
        let spec = PartitionSpec::new(&config.partition_by, &config.partition_time, &schema())
            .expect("spec");
        ParquetSink::open_in(self.store(), &config, spec).expect("open")
    }

    fn key(rel: &str) -> Key {
        Key::parse(format!("{PREFIX}/{rel}")).expect("key")
    }

    /// Every object under the output, relative to it, sorted.
    async fn keys(&self) -> Vec<String> {
        let all: Vec<_> = self
            .mem
            .list(Some(&Key::from(PREFIX)))
            .try_collect()
            .await
            .expect("list");
        let mut out: Vec<String> = all
            .iter()
            .map(|m| m.location.as_ref()[PREFIX.len() + 1..].to_owned())
            .collect();
        out.sort();
        out
    }

    /// Objects a reader listing `scores/` and `dead_letters/` for `*.parquet` sees.
    async fn visible(&self) -> Vec<String> {
        self.keys()
            .await
            .into_iter()
            .filter(|k| {
                !k.starts_with('_')
                    && k.ends_with(".parquet")
                    && !k.rsplit('/').next().unwrap_or("").starts_with('.')
            })
            .collect()
    }

    async fn read(&self, rel: &str) -> arrow::array::RecordBatch {
        let bytes = self
            .mem
            .get(&Self::key(rel))
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        let batches: Vec<_> = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("parquet")
            .build()
            .expect("reader")
            .collect::<Result<_, _>>()
            .expect("read");
        arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat")
    }

    async fn copy(&self, from: &str, to: &str) {
        self.mem
            .copy(&Self::key(from), &Self::key(to))
            .await
            .expect("copy");
    }

    async fn delete(&self, rel: &str) {
        self.mem.delete(&Self::key(rel)).await.expect("delete");
    }

    async fn put(&self, rel: &str, bytes: &'static [u8]) {
        self.mem
            .put(&Self::key(rel), PutPayload::from_static(bytes))
            .await
            .expect("put");
    }
}

fn tmp(rel: &str, writer: &str) -> String {
    let (dir, name) = rel.rsplit_once('/').expect("dir");
    format!("{dir}/{}", commit_log::tmp_name(name, writer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_files_appear_under_their_final_keys_with_their_entry() {
    let b = Bucket::new();
    let mut sink = b.sink();
    let mut e = env(
        rows_at(&[(0, 0, NINE), (0, 1, NINE + HOUR), (1, 0, NINE)]),
        &[(0, 0..3), (1, 0..1)],
    );
    e.dead_letters.push(dead(0, 2));
    sink.write(e).expect("write");
    assert!(
        b.visible().await.is_empty(),
        "nothing is readable before its commit: {:?}",
        b.keys().await
    );
    let c = sink.flush().expect("commit");
    assert_eq!((c.rows, c.dead_letters, c.files.len()), (3, 1, 4));
    assert!(
        c.files
            .iter()
            .all(|f| f.to_string_lossy().starts_with("s3://bucket/jobs/fraud/")),
        "{:?}",
        c.files
    );
    assert_eq!(
        b.keys().await,
        vec![
            "_scorestream/commits/t+0+00000000000000000000.json".to_owned(),
            "_scorestream/commits/t+1+00000000000000000000.json".into(),
            "dead_letters/t+0+00000000000000000002.parquet".into(),
            format!("scores/{H10}/t+0+00000000000000000001.parquet"),
            format!("scores/{H09}/t+0+00000000000000000000.parquet"),
            format!("scores/{H09}/t+1+00000000000000000000.parquet"),
        ],
        "final keys and entries only: temporaries are deleted after the copy"
    );
    assert_eq!(
        values(
            &b.read(&format!("scores/{H09}/t+0+00000000000000000000.parquet"))
                .await
        ),
        vec![0]
    );
    let entry = sink
        .commit_log()
        .entry("t", 0, 0)
        .expect("read")
        .expect("entry");
    assert_eq!((entry.start, entry.end, entry.files.len()), (0, 3, 3));
    assert_eq!(
        sink.commit_log().chain_ends().expect("ends"),
        [(("t".to_owned(), 0), 3), (("t".to_owned(), 1), 1)].into()
    );
    assert!(
        std::fs::read_dir(b.spool.path())
            .expect("spool")
            .flatten()
            .all(|d| std::fs::read_dir(d.path()).expect("ls").next().is_none()),
        "spool files are removed once uploaded"
    );
}

/// A crash after the entry was created but before the copies: the next
/// open (or a resume) copies the staged objects into place; a loser's
/// staged object for committed offsets is deleted; one past the chain's end
/// may be a live writer's and is kept until the chain passes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_finishes_interrupted_copies_and_clears_dead_temporaries() {
    let b = Bucket::new();
    let mut sink = b.sink();
    sink.write(env(
        rows_at(&[(0, 0, NINE), (0, 1, NINE + HOUR)]),
        &[(0, 0..2)],
    ))
    .expect("write");
    sink.flush().expect("commit");
    let writer = sink
        .commit_log()
        .entry("t", 0, 0)
        .expect("read")
        .expect("entry")
        .writer;
    drop(sink);
    // In key order: hour 10 sorts before hour 9.
    let files = [
        format!("scores/{H10}/t+0+00000000000000000001.parquet"),
        format!("scores/{H09}/t+0+00000000000000000000.parquet"),
    ];
    for f in &files {
        b.copy(f, &tmp(f, &writer)).await;
        b.delete(f).await;
    }
    let loser = tmp(&files[0], "w1-1");
    b.put(&loser, b"never committed").await;
    let ahead = tmp(
        &format!("scores/{H10}/t+0+00000000000000000002.parquet"),
        "w1-1",
    );
    b.put(&ahead, b"maybe in flight").await;
    assert_eq!(b.visible().await, Vec::<String>::new());

    let log = CommitLog::at(b.store()).expect("log");
    use crate::source::kafka::ResumePositions;
    assert_eq!(
        log.resume_positions(&[("t".into(), 0)]).expect("resume"),
        vec![Some(2)]
    );
    assert_eq!(b.visible().await, files.to_vec(), "rolled forward");

    let sink = b.sink();
    let keys = b.keys().await;
    assert!(!keys.contains(&loser), "{keys:?}");
    assert!(keys.contains(&ahead), "{keys:?}");
    assert_eq!(values(&b.read(&files[0]).await), vec![1]);
    drop(sink);

    let mut sink = b.sink();
    sink.write(env(rows(&[(0, 2)]), &[(0, 2..3)]))
        .expect("write");
    sink.close().expect("close");
    let keys = b.keys().await;
    assert!(!keys.contains(&ahead), "{keys:?}");
    assert!(
        keys.iter().all(|k| !k.ends_with(".tmp")),
        "a closed job leaves no temporary: {keys:?}"
    );
}

/// Two writers that both believe they own a partition: the conditional put
/// of the entry lets one win; the other is fenced and its staged objects
/// are deleted, so nothing is written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_of_the_same_offsets_is_fenced_by_the_conditional_put() {
    let b = Bucket::new();
    let mut first = b.sink();
    std::thread::sleep(std::time::Duration::from_millis(2)); // distinct writer ids
    let mut second = b.sink();
    first
        .write(env(rows(&[(0, 0), (0, 1)]), &[(0, 0..2)]))
        .expect("write");
    second
        .write(env(rows(&[(0, 0)]), &[(0, 0..1)]))
        .expect("write");
    first.flush().expect("first commits");
    let e = second.flush().expect_err("second is fenced");
    super::tests::assert_fenced_at_start(&e);
    let want = format!("scores/{H09}/t+0+00000000000000000000.parquet");
    assert_eq!(
        b.keys().await,
        vec![
            "_scorestream/commits/t+0+00000000000000000000.json".to_owned(),
            want.clone()
        ],
        "the loser's staged object is gone"
    );
    assert_eq!(values(&b.read(&want).await), vec![0, 1]);
}

/// Files larger than one multipart part go up in parts and come back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_larger_than_a_part_is_uploaded_in_parts() {
    let b = Bucket::new();
    let store = b.store();
    let local = store
        .writable("scores", ".big.parquet.w1-1.tmp")
        .expect("spool");
    let data: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(&local, &data).expect("write");
    let file = std::fs::File::open(&local).expect("open");
    store
        .stage(file, &local, "scores/.big.parquet.w1-1.tmp")
        .expect("upload");
    assert!(!local.exists(), "the spool file is removed");
    let got = b
        .mem
        .get(&Bucket::key("scores/.big.parquet.w1-1.tmp"))
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(got.len(), data.len());
    assert!(got.as_ref() == data.as_slice(), "the object is the file");
}

#[test]
fn output_paths_name_what_is_wrong() {
    assert_eq!(
        OutputPath::parse("out/demo"),
        Ok(OutputPath::Local("out/demo".into()))
    );
    assert_eq!(
        OutputPath::parse("file:///data/out"),
        Ok(OutputPath::Local("/data/out".into()))
    );
    let s3 = OutputPath::parse("s3://bucket/a/b/").expect("s3");
    let OutputPath::Object(u) = &s3 else {
        panic!("{s3:?}")
    };
    assert_eq!((u.bucket(), u.prefix()), ("bucket", "a/b"));
    assert_eq!(s3.to_string(), "s3://bucket/a/b");
    assert_eq!(
        OutputPath::parse("s3a://bucket").expect("root").to_string(),
        "s3a://bucket"
    );
    for (bad, says) in [
        ("gs://bucket/x", "unsupported storage scheme `gs://`"),
        ("s3:///x", "names no bucket"),
        ("s3://bucket/a//b", "not a valid object key"),
        ("s3://bucket/a/../b", "not a valid object key"),
        ("s3://key:secret@bucket/x", "must not carry credentials"),
        ("s3://bucket/x?region=eu", "no query"),
        ("", "empty"),
    ] {
        let e = OutputPath::parse(bad).expect_err(bad);
        assert!(e.contains(says), "{bad}: {e}");
        assert!(!e.contains("secret"), "{bad}: {e}");
    }
}

#[test]
fn object_store_settings_are_checked_against_the_path() {
    let parse = |toml: &str| -> ParquetSinkConfig { toml::from_str(toml).expect("config") };
    let s3 = parse(
        "path = \"s3://b/p\"\ns3 = { endpoint = \"http://127.0.0.1:9000\", allow_http = true }\nroll = { max_bytes = \"6GiB\" }",
    );
    assert_eq!(
        crate::config::problems_in(&s3, "sink")
            .into_iter()
            .map(|p| p.0)
            .collect::<Vec<_>>(),
        vec!["sink.roll.max_bytes"]
    );
    let local = parse("path = \"out\"\ns3 = { region = \"eu-north-1\" }\nspool_dir = \"/tmp/x\"");
    assert_eq!(
        crate::config::problems_in(&local, "sink")
            .into_iter()
            .map(|p| p.0)
            .collect::<Vec<_>>(),
        vec!["sink.s3", "sink.spool_dir"]
    );
    let e = toml::from_str::<ParquetSinkConfig>("path = \"s3://b/p\"\ns3 = { secret = \"x\" }")
        .expect_err("unknown key");
    assert!(e.to_string().contains("unknown field `secret`"), "{e}");
}
