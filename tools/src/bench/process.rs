//! The process's own CPU time and memory, from the kernel.

use std::time::Duration;

/// CPU time of every thread of this process so far.
pub fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Resident set size now (0 where /proc is not available).
pub fn rss_bytes() -> u64 {
    status_kib("VmRSS:") * 1024
}

/// The highest resident set size since the process started or since
/// [`reset_peak_rss`].
pub fn peak_rss_bytes() -> u64 {
    status_kib("VmHWM:") * 1024
}

/// Starts peak RSS over from the current RSS (Linux: `clear_refs` 5), so
/// a measurement excludes what came before it, such as producing the events.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", b"5");
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_are_read_from_the_kernel() {
        let before = cpu_time();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time() > before, "spinning used CPU time");
        let rss = rss_bytes();
        assert!(rss > 1 << 20, "a test process holds more than 1 MiB: {rss}");
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        // Other tests run in this process at the same time, so only what
        // 64 MiB must change is asserted.
        let peak = peak_rss_bytes();
        assert!(peak >= rss + (48 << 20), "64 MiB touched shows in the peak");
        drop(big);
        reset_peak_rss();
        assert!(
            peak_rss_bytes() < peak,
            "the peak starts over from the current RSS, without the freed 64 MiB"
        );
    }
}
