//! Shared bench helper: thread CPU time, so numbers stay meaningful on a loaded machine where
//! wall-clock time includes time spent waiting for a core.

use std::time::{Duration, Instant};

/// CPU time consumed by this thread, in nanoseconds (POSIX `CLOCK_THREAD_CPUTIME_ID`);
/// `None` where unavailable. Used so the numbers stay meaningful on a loaded machine where
/// wall-clock time includes time spent waiting for a core.
#[cfg(unix)]
pub fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant supported on
    // Linux and macOS.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

#[cfg(not(unix))]
pub fn thread_cpu_ns() -> Option<u64> {
    None
}

/// Runs `f` `iters` times and returns the thread CPU time (wall time if unavailable).
pub fn cpu_time<F: FnMut()>(iters: u64, mut f: F) -> Duration {
    let (c0, w0) = (thread_cpu_ns(), Instant::now());
    for _ in 0..iters {
        f();
    }
    match (c0, thread_cpu_ns()) {
        (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
        _ => w0.elapsed(),
    }
}
