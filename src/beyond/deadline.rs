//! Work that may never end (a database frozen whole answers nothing, and
//! its client has no timeout of its own), run on a thread of its own and
//! waited for a while: past it, the caller goes on without the answer.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// What `work` returns, if it returns within `wait`; its thread is left to
/// end in its own time.
pub fn within<T: Send + 'static>(
    wait: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (done, answer) = mpsc::sync_channel(1);
    let spawned = thread::Builder::new()
        .name("deadline".into())
        .spawn(move || {
            let _ = done.send(work());
        });
    spawned.ok()?;
    answer.recv_timeout(wait).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_in_time_is_kept_and_a_late_one_is_not_waited_for() {
        assert_eq!(within(Duration::from_secs(10), || 7), Some(7));
        let started = std::time::Instant::now();
        let late = within(Duration::from_millis(50), || {
            thread::sleep(Duration::from_secs(5));
            7
        });
        assert_eq!(late, None);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
