//! A counting semaphore that serves its waiters in turn: at most N holders
//! at once, and a freed permit goes to whoever has waited longest. The
//! standard library has none.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// N permits to share among threads.
#[derive(Debug)]
pub struct Permits {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    free: usize,
    waiting: VecDeque<Arc<Waiter>>,
}

#[derive(Debug)]
struct Waiter {
    thread: Thread,
    granted: AtomicBool,
}

/// One permit, handed on when dropped (also when its thread panics).
#[derive(Debug)]
pub struct Permit(Arc<Permits>);

impl Permits {
    pub fn new(count: usize) -> Arc<Permits> {
        Arc::new(Permits {
            state: Mutex::new(State {
                free: count,
                waiting: VecDeque::new(),
            }),
        })
    }

    /// Takes a permit, after everyone who asked earlier, or gives up after
    /// `wait` and answers None.
    pub fn acquire(self: &Arc<Self>, wait: Duration) -> Option<Permit> {
        let deadline = Instant::now() + wait;
        let mut state = self.lock();
        if state.free > 0 && state.waiting.is_empty() {
            state.free -= 1;
            return Some(Permit(Arc::clone(self)));
        }
        let waiter = Arc::new(Waiter {
            thread: thread::current(),
            granted: AtomicBool::new(false),
        });
        state.waiting.push_back(Arc::clone(&waiter));
        drop(state);
        // A park may end early; only the grant counts.
        while !waiter.granted.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= deadline {
                // Grants are made under the lock: once it is held, none can
                // arrive, and a grant that came meanwhile is kept.
                let mut state = self.lock();
                if waiter.granted.load(Ordering::Acquire) {
                    break;
                }
                state.waiting.retain(|queued| !Arc::ptr_eq(queued, &waiter));
                return None;
            }
            thread::park_timeout(deadline - now);
        }
        Some(Permit(Arc::clone(self)))
    }

    // The state stays consistent even if a holder panicked under the lock.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Permit {
    /// Hands the permit straight to the first waiter, so a newcomer cannot
    /// take it first.
    fn drop(&mut self) {
        let mut state = self.0.lock();
        match state.waiting.pop_front() {
            Some(next) => {
                next.granted.store(true, Ordering::Release);
                next.thread.unpark();
            }
            None => state.free += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;

    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn no_more_than_n_hold_a_permit_at_once() {
        let permits = Permits::new(3);
        let holding = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        // Holders meet in threes: a fourth holder would be counted with them.
        let meet = Arc::new(Barrier::new(3));
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let permit = permits.acquire(LONG).unwrap();
                let (holding, most, meet) =
                    (Arc::clone(&holding), Arc::clone(&most), Arc::clone(&meet));
                thread::spawn(move || {
                    let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    meet.wait();
                    holding.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert_eq!(permits.lock().free, 3);
    }

    #[test]
    fn a_freed_permit_goes_to_the_longest_waiter() {
        let permits = Permits::new(1);
        let held = permits.acquire(LONG).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let waiters: Vec<_> = (0..3)
            .map(|n| {
                let (shared, order) = (Arc::clone(&permits), Arc::clone(&order));
                let waiter = thread::spawn(move || {
                    let _permit = shared.acquire(LONG).unwrap();
                    order.lock().unwrap().push(n);
                });
                // The next waiter starts only once this one is queued.
                while permits.lock().waiting.len() <= n {
                    thread::yield_now();
                }
                waiter
            })
            .collect();
        drop(held);
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    }

    #[test]
    fn a_waiter_gives_up_in_time_and_leaves_the_queue() {
        let permits = Permits::new(1);
        let held = permits.acquire(LONG).unwrap();
        let started = Instant::now();
        assert!(permits.acquire(Duration::from_millis(50)).is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(permits.lock().waiting.is_empty());
        drop(held);
        assert!(
            permits.acquire(Duration::ZERO).is_some(),
            "the permit is free again"
        );
    }

    #[test]
    fn a_panicking_holder_gives_its_permit_back() {
        let permits = Permits::new(1);
        let permit = permits.acquire(LONG).unwrap();
        let _ = thread::spawn(move || {
            let _permit = permit;
            panic!("a request failed");
        })
        .join();
        drop(permits.acquire(LONG).unwrap());
    }
}
