//! seckill patch: how a connection learns that the request it handed on is
//! answered, before it hands on the next. It was a std channel: two
//! allocations a connection (a block of 31 slots among them) for a signal
//! that a client waiting for each answer never waits on. This is a count
//! under a mutex, with a wake-up only when the connection waits.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// Answers told and not yet waited for, and whether the connection waits.
#[derive(Clone, Default)]
pub(crate) struct Answered(Arc<(Mutex<(usize, bool)>, Condvar)>);

impl Answered {
    /// A request is answered, or dropped unanswered.
    pub(crate) fn tell(&self) {
        let mut state = self.lock();
        state.0 += 1;
        if state.1 {
            self.0 .1.notify_one();
        }
    }

    /// Waits until an answer is told that no earlier wait took.
    pub(crate) fn wait(&self) {
        let mut state = self.lock();
        while state.0 == 0 {
            state.1 = true;
            state = self
                .0
                 .1
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.1 = false;
        state.0 -= 1;
    }

    fn lock(&self) -> MutexGuard<'_, (usize, bool)> {
        self.0 .0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod test {
    use super::Answered;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn a_wait_takes_one_answer_told_before_or_after_it() {
        let answered = Answered::default();
        answered.tell();
        answered.wait();
        let teller = answered.clone();
        let told = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            teller.tell();
        });
        answered.wait();
        told.join().unwrap();
        assert_eq!(answered.lock().0, 0, "each wait took one answer");
    }
}
