//! A counting semaphore that serves its waiters in turn: at most N holders
//! at once, and a freed permit goes to whoever has waited longest. The
//! standard library has none. Waiters can be woken to give up together
//! (the thing they wait for has failed), and the queue tells how many wait
//! and the longest anyone waited.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// N permits to share among threads.
#[derive(Debug)]
pub struct Permits {
    state: Mutex<State>,
    /// The longest wait for a permit so far, granted or not, in µs.
    longest_wait_us: AtomicU64,
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

/// Where a newcomer joins the queue.
enum Place {
    First,
    Last,
}

/// Why no permit came.
#[derive(Debug, PartialEq, Eq)]
pub enum NoPermit {
    /// The deadline passed first.
    TimedOut,
    /// `give_up` said so: what the permit was for cannot be had now.
    GaveUp,
}

impl Permits {
    pub fn new(count: usize) -> Arc<Permits> {
        Arc::new(Permits {
            state: Mutex::new(State {
                free: count,
                waiting: VecDeque::new(),
            }),
            longest_wait_us: AtomicU64::new(0),
        })
    }

    /// Takes a permit, after everyone who asked earlier, or gives up at
    /// `deadline`. `give_up` is asked on arrival and each time `wake_all`
    /// wakes the queue: true leaves the queue at once.
    pub fn acquire(
        self: &Arc<Self>,
        deadline: Instant,
        give_up: impl Fn() -> bool,
    ) -> Result<Permit, NoPermit> {
        self.take(deadline, give_up, Place::Last)
    }

    /// As `acquire`, ahead of everyone waiting: for a task that must not
    /// wait behind a crowd, and is rare enough to cost the crowd nothing.
    pub fn acquire_first(
        self: &Arc<Self>,
        deadline: Instant,
        give_up: impl Fn() -> bool,
    ) -> Result<Permit, NoPermit> {
        self.take(deadline, give_up, Place::First)
    }

    fn take(
        self: &Arc<Self>,
        deadline: Instant,
        give_up: impl Fn() -> bool,
        place: Place,
    ) -> Result<Permit, NoPermit> {
        let mut state = self.lock();
        if state.free > 0 && state.waiting.is_empty() {
            state.free -= 1;
            return Ok(Permit(Arc::clone(self)));
        }
        if give_up() {
            return Err(NoPermit::GaveUp);
        }
        let started = Instant::now();
        let waiter = Arc::new(Waiter {
            thread: thread::current(),
            granted: AtomicBool::new(false),
        });
        match place {
            Place::Last => state.waiting.push_back(Arc::clone(&waiter)),
            Place::First => state.waiting.push_front(Arc::clone(&waiter)),
        }
        drop(state);
        let outcome = self.wait(&waiter, deadline, give_up);
        let waited = started.elapsed().as_micros() as u64;
        self.longest_wait_us.fetch_max(waited, Ordering::Relaxed);
        outcome
    }

    fn wait(
        self: &Arc<Self>,
        waiter: &Arc<Waiter>,
        deadline: Instant,
        give_up: impl Fn() -> bool,
    ) -> Result<Permit, NoPermit> {
        // A park may end early; only the grant counts.
        while !waiter.granted.load(Ordering::Acquire) {
            let now = Instant::now();
            let why = if now >= deadline {
                NoPermit::TimedOut
            } else if give_up() {
                NoPermit::GaveUp
            } else {
                thread::park_timeout(deadline - now);
                continue;
            };
            // Grants are made under the lock: once it is held, none can
            // arrive, and a grant that came meanwhile is kept.
            let mut state = self.lock();
            if waiter.granted.load(Ordering::Acquire) {
                break;
            }
            state.waiting.retain(|queued| !Arc::ptr_eq(queued, waiter));
            return Err(why);
        }
        Ok(Permit(Arc::clone(self)))
    }

    /// Wakes every waiter to ask its `give_up` again.
    pub fn wake_all(&self) {
        for waiter in &self.lock().waiting {
            waiter.thread.unpark();
        }
    }

    /// How many wait for a permit now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// The longest anyone has waited for a permit so far, granted or not.
    pub fn longest_wait(&self) -> Duration {
        Duration::from_micros(self.longest_wait_us.load(Ordering::Relaxed))
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

    fn within(wait: Duration) -> Instant {
        Instant::now() + wait
    }

    fn never() -> bool {
        false
    }

    #[test]
    fn no_more_than_n_hold_a_permit_at_once() {
        let permits = Permits::new(3);
        let holding = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        // Holders meet in threes: a fourth holder would be counted with them.
        let meet = Arc::new(Barrier::new(3));
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let permit = permits.acquire(within(LONG), never).unwrap();
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
        let held = permits.acquire(within(LONG), never).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let waiters: Vec<_> = (0..3)
            .map(|n| {
                let (shared, order) = (Arc::clone(&permits), Arc::clone(&order));
                let waiter = thread::spawn(move || {
                    let _permit = shared.acquire(within(LONG), never).unwrap();
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
        let held = permits.acquire(within(LONG), never).unwrap();
        let started = Instant::now();
        assert_eq!(
            permits
                .acquire(within(Duration::from_millis(50)), never)
                .unwrap_err(),
            NoPermit::TimedOut
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(permits.lock().waiting.is_empty());
        drop(held);
        assert!(
            permits.acquire(Instant::now(), never).is_ok(),
            "the permit is free again"
        );
    }

    #[test]
    fn a_panicking_holder_gives_its_permit_back() {
        let permits = Permits::new(1);
        let permit = permits.acquire(within(LONG), never).unwrap();
        let _ = thread::spawn(move || {
            let _permit = permit;
            panic!("a request failed");
        })
        .join();
        drop(permits.acquire(within(LONG), never).unwrap());
    }

    #[test]
    fn waiters_woken_give_up_together_and_the_queue_tells_its_figures() {
        let permits = Permits::new(1);
        let held = permits.acquire(within(LONG), never).unwrap();
        let failed = Arc::new(AtomicBool::new(false));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (permits, failed) = (Arc::clone(&permits), Arc::clone(&failed));
                thread::spawn(move || {
                    let give_up = || failed.load(Ordering::SeqCst);
                    permits.acquire(within(LONG), give_up).unwrap_err()
                })
            })
            .collect();
        while permits.waiting() < 3 {
            thread::yield_now();
        }
        // Woken without cause, they wait on.
        permits.wake_all();
        thread::sleep(Duration::from_millis(20));
        assert_eq!(permits.waiting(), 3);
        failed.store(true, Ordering::SeqCst);
        permits.wake_all();
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), NoPermit::GaveUp);
        }
        assert_eq!(permits.waiting(), 0);
        assert!(permits.longest_wait() >= Duration::from_millis(20));
        // A newcomer that would give up does so without queueing.
        let give_up = || failed.load(Ordering::SeqCst);
        assert_eq!(
            permits.acquire(within(LONG), give_up).unwrap_err(),
            NoPermit::GaveUp
        );
        drop(held);
        assert!(
            permits.acquire(within(LONG), give_up).is_ok(),
            "a free permit is taken"
        );
    }

    #[test]
    fn a_task_asking_first_goes_ahead_of_the_queue() {
        let permits = Permits::new(1);
        let held = permits.acquire(within(LONG), never).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for (n, first) in [(0, false), (1, false), (2, true)] {
            let (shared, order) = (Arc::clone(&permits), Arc::clone(&order));
            threads.push(thread::spawn(move || {
                let _permit = if first {
                    shared.acquire_first(within(LONG), never)
                } else {
                    shared.acquire(within(LONG), never)
                }
                .unwrap();
                order.lock().unwrap().push(n);
            }));
            while permits.waiting() <= n {
                thread::yield_now();
            }
        }
        drop(held);
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [2, 0, 1]);
    }
}
