//! seckill patch: what a connection's thread, its socket's reading half and
//! its requests share, and the count of open connections. tiny_http 0.12.0
//! had no timeouts, no limit on connections, and no way for an answer to
//! close its connection; see PATCHES.md.

use std::collections::HashMap;
use std::io::{Error as IoError, ErrorKind, Result as IoResult};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::Limits;

/// `body_left` of a chunked body not yet read to its last chunk.
pub(crate) const UNKNOWN_LENGTH: usize = usize::MAX;

pub(crate) struct ConnectionState {
    /// When the read under way must be done: the head's, the body's or the
    /// wait for the next request's, whichever the connection is at.
    deadline: Mutex<Option<Instant>>,
    /// Waiting for a request's first byte: an answer written meanwhile
    /// starts the idle wait again, so a slow answer does not shorten it.
    idle: AtomicBool,
    /// Set by an answer that closes the connection: no request is read after it.
    closing: AtomicBool,
    /// Bytes of the current request's body still unread on the socket.
    body_left: AtomicUsize,
    /// Counts the connection as open for as long as any part of it lives.
    _open: Option<Opened>,
}

impl ConnectionState {
    pub(crate) fn new(deadline: Option<Instant>, open: Option<Opened>) -> Arc<ConnectionState> {
        Arc::new(ConnectionState {
            deadline: Mutex::new(deadline),
            idle: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            body_left: AtomicUsize::new(0),
            _open: open,
        })
    }

    /// Reads from now on must end within `limit`.
    pub(crate) fn read_within(&self, limit: Duration) {
        *lock(&self.deadline) = Instant::now().checked_add(limit);
    }

    /// Waits at most `limit` for the next request's first byte.
    pub(crate) fn await_request(&self, limit: Duration) {
        self.idle.store(true, Ordering::SeqCst);
        self.read_within(limit);
    }

    /// The next request's first byte came; its head must come within `limit`.
    pub(crate) fn head_began(&self, limit: Duration) {
        self.idle.store(false, Ordering::SeqCst);
        self.read_within(limit);
    }

    /// An answer was written: an idle wait starts again from now.
    pub(crate) fn answered(&self, idle_timeout: Duration) {
        let mut deadline = lock(&self.deadline);
        if self.idle.load(Ordering::SeqCst) {
            *deadline = Instant::now().checked_add(idle_timeout);
        }
    }

    /// The time left for the read under way (None: no limit), or a TimedOut
    /// error once it is up.
    pub(crate) fn time_left(&self) -> IoResult<Option<Duration>> {
        let deadline = *lock(&self.deadline);
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

/// The connections open now, in all and from each client address.
#[derive(Default)]
pub(crate) struct OpenConnections {
    total: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted as open, until dropped.
pub(crate) struct Opened {
    open: Arc<OpenConnections>,
    client: Option<IpAddr>,
}

impl OpenConnections {
    pub(crate) fn count(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// Counts a new connection from `client`; or, when it would be one too
    /// many in all or from that client, says which.
    pub(crate) fn open(
        self: &Arc<Self>,
        client: Option<IpAddr>,
        limits: &Limits,
    ) -> Result<Opened, String> {
        if self.count() >= limits.max_connections {
            let max = limits.max_connections;
            return Err(format!("the server has {max} connections open, its most"));
        }
        if let Some(client) = client {
            let mut per_client = lock(&self.per_client);
            let from_client = per_client.entry(client).or_insert(0);
            if *from_client >= limits.max_connections_per_client {
                let max = limits.max_connections_per_client;
                return Err(format!(
                    "{client} has {max} connections open, the most one client may"
                ));
            }
            *from_client += 1;
        }
        self.total.fetch_add(1, Ordering::SeqCst);
        let open = Arc::clone(self);
        Ok(Opened { open, client })
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        self.open.total.fetch_sub(1, Ordering::SeqCst);
        if let Some(client) = self.client {
            let mut per_client = lock(&self.open.per_client);
            if let Some(count) = per_client.get_mut(&client) {
                *count -= 1;
                if *count == 0 {
                    per_client.remove(&client);
                }
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
