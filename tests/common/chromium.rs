//! Headless Chromium (Debian's `chromium` package, what .ci/run installs)
//! for tests that check what a person would see in a page.

use std::path::{Path, PathBuf};
use std::process::Command;

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("CHROMIUM") {
        return PathBuf::from(p);
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "headless Chromium is not installed: `apt-get install chromium` (what .ci/run does) or set CHROMIUM"
    );
}

/// Flags for a closed network: no background fetches, no first-run work.
fn command(profile: &Path) -> Command {
    let mut c = Command::new(binary());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,2000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// Loads `page` and returns the DOM after its scripts ran.
pub(crate) fn dump_dom(page: &Path) -> String {
    let profile = tempfile::tempdir().expect("chromium profile dir");
    let out = command(profile.path())
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Saves a screenshot of `page` to `png` (for a person to look at).
pub(crate) fn screenshot(page: &Path, png: &Path) {
    let profile = tempfile::tempdir().expect("chromium profile dir");
    let out = command(profile.path())
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success() && png.exists(),
        "chromium screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
