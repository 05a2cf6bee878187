//! The local spool where files bound for an object store are encoded
//! before their upload.

use std::path::Path as FsPath;

/// Spool files of writers that are no longer running (they crashed) are
/// never needed again: their rows are read from Kafka again. Removed when an
/// output opens, where `/proc` tells which processes live.
pub(super) fn clear_stale_spool(spool: &FsPath) {
    if !FsPath::new("/proc/self").exists() {
        return;
    }
    let Ok(dirs) = std::fs::read_dir(spool) else {
        return;
    };
    for dir in dirs.flatten() {
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            let Some(pid) = writer_pid(&name) else {
                continue;
            };
            if pid != std::process::id() && !FsPath::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_file(f.path());
            }
        }
    }
}

/// The process id in a temporary name `.<name>.w<ms>-<pid>.tmp`.
fn writer_pid(name: &str) -> Option<u32> {
    let writer = name.strip_suffix(".tmp")?.rsplit_once('.')?.1;
    writer.strip_prefix('w')?.split_once('-')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_writer_pid_is_read_off_a_temporary_name() {
        assert_eq!(
            super::writer_pid(".t+0+00000000000000000000.parquet.w1796115600000-4242.tmp"),
            Some(4242)
        );
        assert_eq!(super::writer_pid("t+0+0.parquet"), None);
        assert_eq!(super::writer_pid(".x.parquet.wabc.tmp"), None);
    }
}
