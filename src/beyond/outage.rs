//! An outage as the log tells it: a line when it begins and one when it
//! ends, not one for each of the thousand requests in between.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A state that lasts from a failure to a success `QUIET_TO_END` after the
/// last failure: logged when it begins and ends, not on each of the
/// thousand requests in between, nor each time failures and successes mix.
#[derive(Default)]
pub struct Condition {
    on: AtomicBool,
    /// When the last failure was, in ms since `EPOCH`.
    last_failure: AtomicU64,
}

/// What `Condition` counts its time from.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// How long without a failure ends an outage.
const QUIET_TO_END: Duration = Duration::from_secs(1);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

impl Condition {
    /// True for the failure that begins it.
    pub fn begins(&self) -> bool {
        self.last_failure.store(now_ms(), Ordering::Relaxed);
        !self.on.swap(true, Ordering::Relaxed)
    }

    /// True for the success that ends it.
    pub fn ends(&self) -> bool {
        let quiet = now_ms().saturating_sub(self.last_failure.load(Ordering::Relaxed));
        self.on.load(Ordering::Relaxed)
            && quiet >= QUIET_TO_END.as_millis() as u64
            && self.on.swap(false, Ordering::Relaxed)
    }
}
