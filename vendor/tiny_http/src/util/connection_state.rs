//! seckill patch: what a connection's thread, its socket's reading half and
//! its requests share, and the count of open connections, which may displace
//! one for a newcomer. tiny_http 0.12.0 had no timeouts, no limit on
//! connections, and no way for an answer to close its connection; see
//! PATCHES.md.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::io::{Error as IoError, ErrorKind, Result as IoResult};
use std::net::{IpAddr, Shutdown};
use std::sync::atomic::Ordering::{self, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::connection::Connection;
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
    open: Option<Opened>,
}

impl ConnectionState {
    pub(crate) fn new(deadline: Option<Instant>, open: Option<Opened>) -> Arc<ConnectionState> {
        Arc::new(ConnectionState {
            deadline: Mutex::new(deadline),
            idle: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            body_left: AtomicUsize::new(0),
            open,
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

    /// seckill patch: a request's head came whole: the connection can no
    /// longer be displaced until that request is answered. False if it was
    /// displaced already: the request is not read.
    pub(crate) fn head_ended(&self) -> bool {
        self.open.as_ref().is_none_or(|open| open.seat.head_ended())
    }

    /// An answer was written: an idle wait starts again from now.
    pub(crate) fn answered(&self, idle_timeout: Duration) {
        // seckill patch: with every request answered, the connection may be
        // displaced again while it waits for the next head.
        if let Some(open) = &self.open {
            open.seat.answered();
        }
        let mut deadline = lock(&self.deadline);
        if self.idle.load(Ordering::SeqCst) {
            *deadline = Instant::now().checked_add(idle_timeout);
        }
    }

    /// seckill patch: `socket` may be shut down to make room for a newcomer
    /// while the connection waits for a head (see `OpenConnections::open`).
    pub(crate) fn may_displace(&self, socket: Arc<Connection>) {
        if let Some(open) = &self.open {
            let _ = open.seat.socket.set(socket);
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

/// The connections open now: how many, and those of each client address,
/// oldest first.
#[derive(Default)]
pub(crate) struct OpenConnections(Mutex<Open>);

#[derive(Default)]
struct Open {
    total: usize,
    /// By id: the connections opened earlier come first.
    per_client: HashMap<IpAddr, BTreeMap<u64, Arc<Seat>>>,
    /// Connections ever opened: the id of the last.
    opened: u64,
}

/// seckill patch: what the count of open connections knows of one, to
/// displace it for a newcomer.
#[derive(Default)]
struct Seat {
    /// Requests whose head has come and that are not answered yet, or
    /// `DISPLACED`. With none, the connection only waits for a head.
    unanswered: AtomicUsize,
    /// The socket, to shut down; none (TLS) is never displaced.
    socket: OnceLock<Arc<Connection>>,
}

const DISPLACED: usize = usize::MAX;

impl Seat {
    /// A head came whole; false if the connection was displaced before.
    fn head_ended(&self) -> bool {
        let one_more = |n| (n != DISPLACED).then_some(n + 1);
        self.unanswered
            .fetch_update(SeqCst, SeqCst, one_more)
            .is_ok()
    }

    fn answered(&self) {
        let one_less = |n: usize| n.checked_sub(1).filter(|_| n != DISPLACED);
        let _ = self.unanswered.fetch_update(SeqCst, SeqCst, one_less);
    }

    /// Shuts the connection down if no request of it is unanswered (it
    /// waits for a head, or reads one), and says whether it did. Its thread
    /// then ends on its read's error.
    fn displace(&self) -> bool {
        let Some(socket) = self.socket.get() else {
            return false;
        };
        let waiting = self
            .unanswered
            .compare_exchange(0, DISPLACED, SeqCst, SeqCst);
        if waiting.is_ok() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        waiting.is_ok()
    }
}

/// One connection counted as open, until dropped or displaced.
pub(crate) struct Opened {
    open: Arc<OpenConnections>,
    client: Option<IpAddr>,
    id: u64,
    seat: Arc<Seat>,
}

impl OpenConnections {
    pub(crate) fn count(&self) -> usize {
        lock(&self.0).total
    }

    /// Counts a new connection from `client`; or, when it would be one too
    /// many from that client, or in all and no connection can be displaced
    /// for it, says which.
    pub(crate) fn open(
        self: &Arc<Self>,
        client: Option<IpAddr>,
        limits: &Limits,
    ) -> Result<Opened, String> {
        let mut open = lock(&self.0);
        if let Some(client) = client {
            if open.held_by(client) >= limits.max_connections_per_client {
                let max = limits.max_connections_per_client;
                return Err(format!(
                    "{client} has {max} connections open, the most one client may"
                ));
            }
        }
        let full = open.total >= limits.max_connections;
        if full && !client.is_some_and(|client| open.displace_for(client, limits)) {
            let max = limits.max_connections;
            return Err(format!("the server has {max} connections open, its most"));
        }
        open.total += 1;
        open.opened += 1;
        let (id, seat) = (open.opened, Arc::new(Seat::default()));
        if let Some(client) = client {
            let seats = open.per_client.entry(client).or_default();
            seats.insert(id, Arc::clone(&seat));
        }
        let open = Arc::clone(self);
        Ok(Opened {
            open,
            client,
            id,
            seat,
        })
    }
}

impl Open {
    fn held_by(&self, client: IpAddr) -> usize {
        self.per_client.get(&client).map_or(0, BTreeMap::len)
    }

    /// Takes connection `id` of `client` out; false if it was not in.
    fn remove(&mut self, client: IpAddr, id: u64) -> bool {
        let Some(seats) = self.per_client.get_mut(&client) else {
            return false;
        };
        let removed = seats.remove(&id).is_some();
        if seats.is_empty() {
            self.per_client.remove(&client);
        }
        removed
    }

    /// seckill patch: a full server makes room for a client under its fair
    /// share (`max_connections` over the number of client addresses holding
    /// connections, its own included): of the client holding the most, over
    /// its share, that has one, the oldest connection waiting for a head is
    /// shut down and no longer counted. Without it, two addresses holding
    /// half-sent heads locked every other buyer out. A client alone, or
    /// within its share, is never displaced.
    fn displace_for(&mut self, client: IpAddr, limits: &Limits) -> bool {
        let held = self.held_by(client);
        let clients = self.per_client.len() + usize::from(held == 0);
        let share = limits.max_connections / clients;
        if held >= share {
            return false;
        }
        // Those over the share hold two or more (share >= 1 here), so none
        // is left with no connection.
        let mut over_share: Vec<_> = self
            .per_client
            .values_mut()
            .filter(|seats| seats.len() > share)
            .collect();
        over_share.sort_by_key(|seats| Reverse(seats.len()));
        for seats in over_share {
            let displaced = seats.iter().find(|(_, seat)| seat.displace());
            if let Some(id) = displaced.map(|(id, _)| *id) {
                seats.remove(&id);
                self.total -= 1;
                return true;
            }
        }
        false
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        let mut open = lock(&self.open.0);
        // seckill patch: a connection displaced was counted out then.
        let counted = match self.client {
            Some(client) => open.remove(client, self.id),
            None => true,
        };
        if counted {
            open.total -= 1;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
