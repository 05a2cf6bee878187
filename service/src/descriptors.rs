//! File descriptors, which the jobs (Kafka sockets, Parquet files, feature
//! stores) and the API's connections draw from one per-process pool: the
//! service takes all the pool it may, gives the API at most a quarter, and
//! says so plainly when a job fails for want of one.

use std::error::Error;

use rustix::io::Errno;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tracing::warn;

/// The API may hold at most 1/API_SHARE of the descriptor limit.
const API_SHARE: u64 = 4;

/// Raises the soft descriptor limit to the hard one (the soft default, 1024
/// on most Linux systems, is far below what many jobs need) and returns the
/// limit in force, `None` when unlimited.
pub(crate) fn raise_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return limit.current;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(e) => {
            warn!(error = %e, soft = ?limit.current, hard = ?limit.maximum, "could not raise the open-file limit to its hard limit");
            limit.current
        }
    }
}

/// The most connections the API may hold: `asked`, but never more than a
/// share of the descriptor `limit`, so that clients of the API, whoever
/// they are, cannot take the descriptors running jobs need.
pub(crate) fn connection_cap(asked: usize, limit: Option<u64>) -> usize {
    let Some(limit) = limit else {
        return asked.max(1);
    };
    let share = usize::try_from(limit / API_SHARE).unwrap_or(usize::MAX);
    asked.min(share).max(1)
}

/// Why a job failed, with a note when the cause was the process running
/// out of a resource rather than anything in the job: what to do, and
/// that starting it again resumes from its committed offsets.
pub(crate) fn explain_failure(e: &(dyn Error + 'static), job: &str) -> String {
    let text = e.to_string();
    let Some(resource) = exhausted(e, &text) else {
        return text;
    };
    let limit = match getrlimit(Resource::Nofile).current {
        Some(n) => format!("{n}"),
        None => "unlimited".into(),
    };
    format!(
        "{text} [{resource} (open-file limit {limit}); nothing in the job's config is wrong: \
         once the pressure is gone, POST /v1/jobs/{job}/start resumes it from its committed offsets]"
    )
}

/// Which process resource `e` says ran out, looking through its sources and,
/// for errors that kept only the text of theirs, at the message.
fn exhausted(e: &(dyn Error + 'static), text: &str) -> Option<&'static str> {
    let describe = |errno: i32| {
        if errno == Errno::MFILE.raw_os_error() {
            Some("the service ran out of file descriptors")
        } else if errno == Errno::NFILE.raw_os_error() {
            Some("the system ran out of file descriptors")
        } else {
            None
        }
    };
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(found) = s
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            .and_then(describe)
        {
            return Some(found);
        }
        source = s.source();
    }
    [Errno::MFILE, Errno::NFILE].into_iter().find_map(|errno| {
        let code = errno.raw_os_error();
        if text.contains(&format!("(os error {code})")) {
            describe(code)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_gets_at_most_a_quarter_of_the_descriptors() {
        assert_eq!(connection_cap(1024, Some(256)), 64);
        assert_eq!(connection_cap(10, Some(256)), 10);
        assert_eq!(connection_cap(1024, None), 1024);
        assert_eq!(connection_cap(1024, Some(2)), 1);
    }

    #[test]
    fn a_job_out_of_descriptors_is_told_so_and_how_to_resume() {
        let emfile = std::io::Error::from_raw_os_error(Errno::MFILE.raw_os_error());
        let wrapped = crate::ServiceError::io("opening out/part-1.parquet", emfile);
        let shown = explain_failure(&wrapped, "fraud");
        assert!(shown.starts_with("opening out/part-1.parquet: "), "{shown}");
        assert!(shown.contains("ran out of file descriptors"), "{shown}");
        assert!(shown.contains("POST /v1/jobs/fraud/start"), "{shown}");

        // An error that kept only its source's text.
        let flat = crate::ServiceError::Internal(wrapped.to_string());
        assert!(explain_failure(&flat, "fraud").contains("ran out of file descriptors"));

        let other = crate::ServiceError::Conflict("a name taken".into());
        assert_eq!(explain_failure(&other, "fraud"), "a name taken");
    }
}
