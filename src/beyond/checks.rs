//! The pool's connections, checked only when in doubt (r2d2's
//! `ManageConnection`). The Python's pool hands out whatever it holds, and a
//! connection that died with a Redis restart fails its next buyer. Here a
//! connection that failed is closed, and after any failure (Redis may have
//! restarted) or a rest of `IDLE_CHECK`, the next one used says PONG first;
//! while Redis is busy and healthy, a checkout costs no round trip.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::{Connection, ConnectionLike, RedisError, RedisResult};

/// A connection unused this long says PONG before it is used again: Redis
/// may have restarted meanwhile. Under load none waits this long.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Where connections come from, and how one proves it still works.
pub trait Connector: Send + Sync + 'static {
    fn connect(&self) -> RedisResult<Connection>;
    fn check(&self, con: &mut Connection) -> RedisResult<()>;
}

/// Opens connections with `Connector`, and checks them only when in doubt.
pub struct Checked<C> {
    connector: Arc<C>,
    /// How many requests failed on a connection: when it moves, Redis may
    /// have restarted, and every older connection may be dead.
    failures: Arc<AtomicU64>,
    /// `failures` when a check last failed: until the next failure, older
    /// connections are closed unasked, as a stalled Redis would make each
    /// check wait for its timeout.
    check_failed: AtomicU64,
    /// Counts the connections that could not be opened.
    refused: Arc<AtomicU64>,
}

impl<C> Checked<C> {
    /// Connections from `connector`; `refused` counts those it could not open.
    pub fn new(connector: Arc<C>, refused: Arc<AtomicU64>) -> Checked<C> {
        Checked {
            connector,
            failures: Arc::new(AtomicU64::new(0)),
            check_failed: AtomicU64::new(u64::MAX),
            refused,
        }
    }
}

/// A pooled connection, and what the pool knows of it.
pub struct Pooled {
    pub con: Connection,
    failed: bool,
    /// `Checked::failures` when this connection last worked.
    checked: u64,
    last_used: Instant,
    failures: Arc<AtomicU64>,
}

impl Pooled {
    /// Marks the connection used just now.
    pub fn used(&mut self) {
        self.last_used = Instant::now();
    }

    /// Whether it still WATCHes or owes a reply is unknown: it is closed,
    /// and the others say PONG before their next use.
    pub fn in_doubt(&mut self) {
        self.failed = true;
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

impl<C: Connector> r2d2::ManageConnection for Checked<C> {
    type Connection = Pooled;
    type Error = RedisError;

    fn connect(&self) -> Result<Pooled, RedisError> {
        let con = self.connector.connect().inspect_err(|_| {
            self.refused.fetch_add(1, Ordering::Relaxed);
        })?;
        Ok(Pooled {
            con,
            failed: false,
            checked: self.failures.load(Ordering::Relaxed),
            last_used: Instant::now(),
            failures: Arc::clone(&self.failures),
        })
    }

    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), RedisError> {
        let failures = self.failures.load(Ordering::Relaxed);
        if pooled.checked == failures && pooled.last_used.elapsed() < IDLE_CHECK {
            return Ok(());
        }
        if self.check_failed.load(Ordering::Relaxed) == failures {
            let why = "an older connection did not answer PING either".to_string();
            return Err((redis::ErrorKind::Io, "connection closed unasked", why).into());
        }
        self.connector
            .check(&mut pooled.con)
            .inspect_err(|_| self.check_failed.store(failures, Ordering::Relaxed))?;
        (pooled.checked, pooled.last_used) = (failures, Instant::now());
        Ok(())
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        pooled.failed || !pooled.con.is_open()
    }
}
