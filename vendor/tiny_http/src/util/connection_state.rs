//! seckill patch: what a connection's thread, its socket's reading half and
//! its requests share. tiny_http 0.12.0 had no timeouts, and no way for an
//! answer to close its connection; see PATCHES.md.

use std::io::{Error as IoError, ErrorKind, Result as IoResult};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// `body_left` of a chunked body not yet read to its last chunk.
pub(crate) const UNKNOWN_LENGTH: usize = usize::MAX;

pub(crate) struct ConnectionState {
    /// When the read under way must be done: the head's, the body's or the
    /// wait for the next request's, whichever the connection is at.
    deadline: Mutex<Option<Instant>>,
    /// Set by an answer that closes the connection: no request is read after it.
    closing: AtomicBool,
    /// Bytes of the current request's body still unread on the socket.
    body_left: AtomicUsize,
}

impl ConnectionState {
    pub(crate) fn new(deadline: Option<Instant>) -> Arc<ConnectionState> {
        Arc::new(ConnectionState {
            deadline: Mutex::new(deadline),
            closing: AtomicBool::new(false),
            body_left: AtomicUsize::new(0),
        })
    }

    /// Reads from now on must end within `limit`.
    pub(crate) fn read_within(&self, limit: Duration) {
        let deadline = Instant::now().checked_add(limit);
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = deadline;
    }

    /// The time left for the read under way (None: no limit), or a TimedOut
    /// error once it is up.
    pub(crate) fn time_left(&self) -> IoResult<Option<Duration>> {
        let deadline = *self.deadline.lock().unwrap_or_else(PoisonError::into_inner);
        match deadline.map(|at| at.saturating_duration_since(Instant::now())) {
            Some(left) if left.is_zero() => Err(timed_out()),
            left => Ok(left),
        }
    }

    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    pub(crate) fn set_body_left(&self, bytes: usize) {
        self.body_left.store(bytes, Ordering::SeqCst);
    }

    pub(crate) fn body_left(&self) -> usize {
        self.body_left.load(Ordering::SeqCst)
    }
}

/// The error of a read or write that ran out of time. A socket timeout
/// shows as WouldBlock on Unix; this names it for what it is.
pub(crate) fn timed_out() -> IoError {
    IoError::new(ErrorKind::TimedOut, "the client took too long")
}
