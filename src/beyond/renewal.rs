//! A task run again and again on a thread of its own, such as the renewal
//! of this server's mark on its sale, until it says it is done or is
//! stopped.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Runs a task every period, until it answers false or `stop` is called.
pub struct Renewal {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Renewal {
    /// Runs `renew` every `period` on a thread named `name`.
    pub fn start(
        name: &str,
        period: Duration,
        mut renew: impl FnMut() -> bool + Send + 'static,
    ) -> std::io::Result<Renewal> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new().name(name.into()).spawn(move || {
            while stopped.recv_timeout(period) == Err(RecvTimeoutError::Timeout) {
                if !renew() {
                    return;
                }
            }
        })?;
        Ok(Renewal { stop, thread })
    }

    /// Stops, once the run under way is done: what it renews can then be
    /// taken off for good.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}
