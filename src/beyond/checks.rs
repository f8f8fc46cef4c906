//! The pool's connections, checked only when in doubt (r2d2's
//! `ManageConnection`). The Python's pool hands out whatever it holds, and a
//! connection that died with a Redis restart fails its next buyer. Here a
//! connection that failed is closed, and after any failure (Redis may have
//! restarted) or a rest of `IDLE_CHECK`, the next one used says PONG first;
//! while Redis is busy and healthy, a checkout costs no round trip.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::{Connection, ConnectionLike, RedisError, RedisResult};

use super::clients::MAXCLIENTS_REACHED;

/// A connection unused this long says PONG before it is used again: Redis
/// may have restarted meanwhile. Under load none waits this long.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Where connections come from, and how one proves it still works.
pub trait Connector: Send + Sync + 'static {
    fn connect(&self) -> RedisResult<Connection>;
    fn check(&self, con: &mut Connection) -> RedisResult<()>;
}

/// Whether Redis can be reached, as the latest attempt found: failing from
/// a connection or check that failed until a connection opens or a request
/// works, with the error of the last failure kept for its words. Every
/// request tells it, so a success costs one atomic read.
#[derive(Debug, Default)]
pub struct Reach {
    failing: AtomicBool,
    failure: Mutex<Option<RedisError>>,
    /// Connections opened or not, and checks failed: a waiter can tell a
    /// fresh attempt from the one that failed before it came.
    attempts: AtomicU64,
}

impl Reach {
    /// A connection or its check failed.
    pub fn failed(&self, err: RedisError) {
        let mut failure = self.lock();
        *failure = Some(err);
        self.failing.store(true, Ordering::Release);
        self.attempts.fetch_add(1, Ordering::Release);
    }

    /// A connection opened.
    pub fn connected(&self) {
        self.worked();
        self.attempts.fetch_add(1, Ordering::Release);
    }

    /// A request on a connection worked.
    pub fn worked(&self) {
        if self.failing.load(Ordering::Acquire) {
            let _failure = self.lock();
            self.failing.store(false, Ordering::Release);
        }
    }

    /// Whether the latest attempt failed: Redis cannot be reached now.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// The error of the latest attempt that failed, even if one has worked
    /// since: what a request that gave up on Redis is told.
    pub fn last_failure(&self) -> Option<RedisError> {
        self.lock().clone()
    }

    /// How many connections were opened or not, and checks failed, so far.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, Option<RedisError>> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner)
    }
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
    /// Told of each connection opened or not, and each check.
    reach: Arc<Reach>,
}

impl<C> Checked<C> {
    /// Connections from `connector`; `refused` counts those it could not
    /// open, and `reach` hears whether each opened and each check passed.
    pub fn new(connector: Arc<C>, refused: Arc<AtomicU64>, reach: Arc<Reach>) -> Checked<C> {
        Checked {
            connector,
            failures: Arc::new(AtomicU64::new(0)),
            check_failed: AtomicU64::new(u64::MAX),
            refused,
            reach,
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
        let con = self.connector.connect().inspect_err(|err| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            // A Redis at its maxclients works on the connections it has:
            // the crowd shares them, and the refusals are told apart.
            if !err.to_string().contains(MAXCLIENTS_REACHED) {
                self.reach.failed(err.clone());
            }
        })?;

        self.reach.connected();
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
        self.connector.check(&mut pooled.con).inspect_err(|err| {
            self.check_failed.store(failures, Ordering::Relaxed);
            self.reach.failed(err.clone());
        })?;
        (pooled.checked, pooled.last_used) = (failures, Instant::now());
        Ok(())
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        pooled.failed || !pooled.con.is_open()
    }
}
