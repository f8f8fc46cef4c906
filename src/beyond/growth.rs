//! How a pool grows: one new connection asked for at a time, and a signal
//! when a connection comes back, for the requests waiting for one. r2d2's
//! own wait asks for a new connection each time it wakes without one, so
//! a crowd waiting in it opened connections the load never needed (over a
//! hundred for `ab -k -c 50`, where 50 serve).

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// After this long, an ask whose connection never came (Redis refused it,
/// or it opens slowly) no longer keeps others from asking.
const ASK_AGAIN: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct Growth {
    /// Connections given back so far.
    returned: Mutex<u64>,
    back: Condvar,
    /// The open connections when the latest ask was made, and when.
    asked: Mutex<Option<(u32, Instant)>>,
}

impl Growth {
    /// Whether a waiter may ask for one more connection, the pool holding
    /// `open`: yes unless another ask is under way, one not yet answered
    /// by a new connection nor too old.
    pub fn may_ask(&self, open: u32) -> bool {
        let mut asked = self.asked.lock().unwrap_or_else(PoisonError::into_inner);
        let under_way = asked.is_some_and(|(then, at)| open <= then && at.elapsed() < ASK_AGAIN);
        if !under_way {
            *asked = Some((open, Instant::now()));
        }
        !under_way
    }

    /// How many came back so far: pass it to `wait_after`.
    pub fn seen(&self) -> u64 {
        *self.returned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One came back: wakes a waiter.
    pub fn one_back(&self) {
        *self.returned.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.back.notify_one();
    }

    /// Waits until one more than `seen` came back, or `limit` passed.
    pub fn wait_after(&self, seen: u64, limit: Duration) {
        let returned = self.returned.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .back
            .wait_timeout_while(returned, limit, |returned| *returned == seen)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn one_ask_at_a_time_until_its_connection_opens_or_it_is_old() {
        let growth = Growth::default();
        assert!(growth.may_ask(32));
        assert!(!growth.may_ask(32), "the first ask is under way");
        assert!(growth.may_ask(33), "its connection opened");
        thread::sleep(ASK_AGAIN);
        assert!(growth.may_ask(33), "an ask never answered expires");
    }

    #[test]
    fn a_waiter_wakes_when_one_comes_back_and_not_before() {
        let growth = Arc::new(Growth::default());
        let seen = growth.seen();
        let started = Instant::now();
        growth.wait_after(seen, Duration::from_millis(50));
        assert!(started.elapsed() >= Duration::from_millis(50));
        let giver = Arc::clone(&growth);
        let back = thread::spawn(move || giver.one_back());
        growth.wait_after(seen, Duration::from_secs(30));
        back.join().unwrap();
        assert_eq!(growth.seen(), seen + 1);
    }
}
