//! Replay logs: one JSON file per replay that sent something, listing the
//! dead letters it re-submitted. Their union is what later replays skip.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Provenance;
use crate::ToolError;

/// Where replay logs live, relative to the job's `sink.path`. Outside
/// `scores/` and `dead_letters/`, so queries over those never see them.
pub const REPLAYS_DIR: &str = "_scorestream/replays";

/// One replay: what it re-submitted and how it was asked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayLog {
    pub replayed_at_ms: i64,
    /// `--to`, when given.
    pub to: Option<String>,
    pub stage: Option<String>,
    /// `--reason`, when given (logs from before it existed have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub predicate: Option<String>,
    pub dead_letters: Vec<Provenance>,
}

/// Kafka messages by topic, partition and offset, in about 24 bytes each
/// (topic names are stored once): what a replay keeps per dead letter.
#[derive(Debug, Default)]
pub(super) struct ProvenanceSet {
    topics: Vec<Arc<str>>,
    set: HashSet<(u32, i32, i64)>,
}

impl ProvenanceSet {
    /// Adds a message; false if it was there already.
    pub(super) fn insert(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        let t = match self.topics.iter().position(|t| t.as_ref() == topic) {
            Some(t) => t,
            None => {
                self.topics.push(topic.into());
                self.topics.len() - 1
            }
        };
        self.set.insert((t as u32, partition, offset))
    }

    pub(super) fn contains(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.topics
            .iter()
            .position(|t| t.as_ref() == topic)
            .is_some_and(|t| self.set.contains(&(t as u32, partition, offset)))
    }
}

/// Every dead letter any replay log in `dir` lists. Files being written are
/// hidden (`.name.tmp`) and skipped; a log that does not parse is an error,
/// since ignoring it would re-send everything it lists.
pub(super) fn replayed(dir: &Path) -> Result<ProvenanceSet, ToolError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ProvenanceSet::default()),
        Err(e) => return Err(ToolError::io(format!("listing {}", dir.display()), e)),
    };
    let mut done = ProvenanceSet::default();
    for entry in entries {
        let entry = entry.map_err(|e| ToolError::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let path = entry.path();
        let text =
            fs::read(&path).map_err(|e| ToolError::io(format!("reading {}", path.display()), e))?;
        let log: ReplayLog = serde_json::from_slice(&text).map_err(|e| ToolError::ReplayLog {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        for p in &log.dead_letters {
            done.insert(&p.topic, p.partition, p.offset);
        }
    }
    Ok(done)
}

/// Writes `log` as `<dir>/<replayed_at_ms>.json` so that it either does not
/// exist or is complete: a hidden temporary file, synced, renamed, and the
/// directory synced so the rename survives a power cut. A name already taken
/// (two replays in one millisecond) moves to the next free millisecond.
pub(super) fn write(dir: &Path, log: &ReplayLog) -> Result<PathBuf, ToolError> {
    let io = |what: &str, p: &Path, e| ToolError::io(format!("{what} {}", p.display()), e);
    fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    let mut ms = log.replayed_at_ms;
    let (name, fin) = loop {
        let name = format!("{ms}.json");
        let fin = dir.join(&name);
        if !fin.exists() {
            break (name, fin);
        }
        ms += 1;
    };
    let tmp = dir.join(format!(".{name}.tmp"));
    let json = serde_json::to_vec_pretty(log)
        .map_err(|e| io("encoding", &fin, std::io::Error::other(e)))?;
    let mut file = File::create(&tmp).map_err(|e| io("creating", &tmp, e))?;
    file.write_all(&json).map_err(|e| io("writing", &tmp, e))?;
    file.sync_all().map_err(|e| io("syncing", &tmp, e))?;
    drop(file);
    fs::rename(&tmp, &fin).map_err(|e| io("committing", &fin, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing directory", dir, e))?;
    Ok(fin)
}
