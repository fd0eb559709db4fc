//! Waiting for an event instead of sleeping a fixed time: poll a condition
//! until it holds, with a deadline generous enough for a loaded 2-core
//! machine. A fixed sleep before an assertion is either too short under load
//! (a flaky test) or too long everywhere else (a slow one).

use std::thread;
use std::time::{Duration, Instant};

/// The deadline for an event that normally takes milliseconds: long enough
/// for a debug build on a machine shared with compilers, short enough that a
/// real hang fails the test in reasonable time.
pub const EVENTUALLY: Duration = Duration::from_secs(20);

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// Polls `cond` until it returns `Some(value)` and returns it; panics with
/// `what` and the time waited after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {:?} waiting for {what}",
            started.elapsed()
        );
        thread::sleep(POLL);
    }
}

/// Polls `cond` until it is true; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(timeout, what, || cond().then_some(()))
}
