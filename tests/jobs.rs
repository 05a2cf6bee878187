//! Every job file under `jobs/` is a test: it validates, or it fails with
//! exactly the problems it declares in `# expect-error: KEY` lines.

use std::path::Path;

use scorestream_pipeline::PipelineError;
use scorestream_pipeline::config::load_file;
use scorestream_pipeline::runtime::Job;

#[path = "common/job_files.rs"]
mod job_files;
use job_files::job_files;

#[test]
fn every_job_file_validates_or_fails_as_declared() {
    let files = job_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs"));
    assert!(files.len() >= 2, "expected job files, found {files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect-error:"))
            .map(str::trim)
            .collect();
        let result = load_file(&f).and_then(Job::build);
        match (result, expected.is_empty()) {
            (Ok(_), true) => {}
            (Ok(_), false) => panic!(
                "{} should fail with {expected:?} but validates",
                f.display()
            ),
            (Err(e), true) => panic!("{} should validate: {e}", f.display()),
            (Err(PipelineError::InvalidConfig { problems, .. }), false) => {
                let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
                assert_eq!(keys.len(), expected.len(), "{}: {problems:#?}", f.display());
                for k in expected {
                    assert!(
                        keys.contains(&k),
                        "{}: no problem for {k} in {keys:?}",
                        f.display()
                    );
                }
            }
            (Err(e), false) => panic!("{} failed for another reason: {e}", f.display()),
        }
    }
}
