//! seckill patch: what a connection's thread, its socket's reading half and
//! its requests share, and the count of open connections, which may displace
//! one for a newcomer. tiny_http 0.12.0 had no timeouts, no limit on
//! connections, and no way for an answer to close its connection; see
//! PATCHES.md.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::{Error as IoError, ErrorKind, Result as IoResult};
use std::net::{IpAddr, Ipv6Addr, Shutdown};
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
        // seckill patch: an IPv6 client has a /64 to itself, and as many
        // addresses in it as it likes: the /64 is one client.
        let client = client.map(client_of);
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

    /// seckill patch: a full server makes room for a newcomer. A client
    /// holding no connection may take the place of any connection still
    /// waiting for a whole head; one holding some, of those of clients over
    /// their fair share (`max_connections` over the number of clients
    /// holding connections, its own included). The client holding the most
    /// gives first, its oldest connection waiting for a head: it is shut
    /// down and no longer counted. Without it, two addresses holding
    /// half-sent heads locked every other buyer out, and so did one
    /// half-sent head from each of as many addresses as the server takes.
    /// A connection whose request has come whole is never displaced.
    fn displace_for(&mut self, client: IpAddr, limits: &Limits) -> bool {
        let held = self.held_by(client);
        let clients = self.per_client.len() + usize::from(held == 0);
        let share = limits.max_connections / clients;
        if held > 0 && held >= share {
            return false;
        }
        // A heap made in one pass, not a sort: under a churn of a thousand
        // newcomers a second, sorting every client for each cost the
        // accepting thread more than the connections it made room for.
        // The most first; of those holding as many, the oldest connection first.
        let mut givers: BinaryHeap<(usize, Reverse<u64>, IpAddr)> = self
            .per_client
            .iter()
            .filter(|(_, seats)| held == 0 || seats.len() > share)
            .filter_map(|(ip, seats)| Some((seats.len(), Reverse(*seats.keys().next()?), *ip)))
            .collect();
        while let Some((_, _, giver)) = givers.pop() {
            let Some(seats) = self.per_client.get_mut(&giver) else {
                continue;
            };
            let displaced = seats.iter().find(|(_, seat)| seat.displace());
            if let Some(id) = displaced.map(|(id, _)| *id) {
                seats.remove(&id);
                if seats.is_empty() {
                    self.per_client.remove(&giver);
                }
                self.total -= 1;
                return true;
            }
            // Each of its connections has a request in: it gives nothing.
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

/// The client a connection from `ip` counts for: the address itself, or
/// for IPv6 its /64 (an IPv4 address mapped into IPv6 is that address).
fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_of(a), client_of(b));
        assert_ne!(client_of(a), client_of(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_of(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client_of(v4), v4);
    }
}
