//! The pool of Redis connections.
//! Python: pool = redis.ConnectionPool(host='', port=6379, db=0)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use r2d2::PooledConnection;
use redis::{Client, Connection, RedisError};

use crate::permits::Permits;
use crate::purchase::SaleError;

/// Connections kept open: more than `ab -c 100` holds at once, so the
/// tutorial's load never waits for one.
pub const POOL_SIZE: u32 = 256;

/// How long a request waits for its turn at a connection before answering
/// 503 "busy". The Python waits forever; a flash-sale buyer should hear back.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long one Redis reply may take before the request gives up on it.
/// The redis crate waits this long for each reply of a pipeline, even after
/// one timed out, so the longest here (four replies) gives up within 1.6 s.
pub const IO_TIMEOUT: Duration = Duration::from_millis(400);

/// A connection unused for this long is PINGed before it is used again:
/// Redis may have restarted meanwhile. Under load none waits this long.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// How long opening a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The pool, and a queue in front of it. r2d2 hands a freed connection to
/// any waiting thread, not the longest waiting: under `ab -c 1000` on a busy
/// machine a few requests waited the whole second while later ones went
/// first. Waiting for a turn first (`Permits`, first come first served)
/// keeps the order, and tells a crowd (no turn in time) from Redis failing
/// (a turn, but no connection).
pub struct Pool {
    connections: r2d2::Pool<Manager>,
    turns: Arc<Permits>,
}

/// Why no connection came.
pub enum CheckoutError {
    /// Every connection was in use for the whole wait: a crowd, not a fault.
    Busy,
    /// A connection was free to take but Redis could not give one.
    Redis(r2d2::Error),
}

impl Pool {
    /// A connection, in turn. Python: pyredis = redis.Redis(connection_pool=pool)
    pub fn get(&self) -> Result<Checkout, CheckoutError> {
        let turn = self
            .turns
            .acquire(CHECKOUT_TIMEOUT)
            .ok_or(CheckoutError::Busy)?;
        let connection = self.connections.get().map_err(CheckoutError::Redis)?;
        Ok(Checkout {
            connection,
            _turn: turn,
        })
    }
}

/// A connection taken from the pool, and the turn that let it be taken;
/// both go back when it is dropped.
pub struct Checkout {
    connection: PooledConnection<Manager>,
    _turn: crate::permits::Permit,
}

impl std::ops::Deref for Checkout {
    type Target = RedisConn;
    fn deref(&self) -> &RedisConn {
        &self.connection
    }
}

impl std::ops::DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut RedisConn {
        &mut self.connection
    }
}

/// A pooled connection. One that saw an error is closed rather than reused:
/// after an error, whether it still WATCHes or owes a reply is unknown.
pub struct RedisConn {
    con: Connection,
    failed: bool,
    /// The value of `Manager::failures` when this connection last worked.
    checked: u64,
    last_used: Instant,
    failures: Arc<AtomicU64>,
}

impl RedisConn {
    /// Runs `work` on the connection. A Redis error retires the connection
    /// and makes every other one prove itself with a PING before its next use.
    pub fn run<T>(
        &mut self,
        work: impl FnOnce(&mut Connection) -> Result<T, SaleError>,
    ) -> Result<T, SaleError> {
        let result = work(&mut self.con);
        self.last_used = Instant::now();
        if let Err(SaleError::Redis(_) | SaleError::MaybeSold(_)) = result {
            self.failed = true;
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

/// Opens connections for the pool through the redis crate's r2d2 support,
/// adding timeouts and retiring failed connections.
pub struct Manager {
    client: Client,
    /// How many requests have failed on a connection: when it moves, Redis
    /// may have restarted, and every older connection may be dead.
    failures: Arc<AtomicU64>,
    /// The value of `failures` when a PING last failed: until the next
    /// failure, older connections are closed without waiting on a PING each.
    ping_failed: AtomicU64,
}

impl r2d2::ManageConnection for Manager {
    type Connection = RedisConn;
    type Error = RedisError;

    fn connect(&self) -> Result<RedisConn, RedisError> {
        let con = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        con.set_read_timeout(Some(IO_TIMEOUT))?;
        con.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(RedisConn {
            con,
            failed: false,
            checked: self.failures.load(Ordering::Relaxed),
            last_used: Instant::now(),
            failures: Arc::clone(&self.failures),
        })
    }

    /// Free while Redis is busy and healthy; after a failure, or a second
    /// of rest, one PING, so a restart of Redis costs no buyer an answer.
    /// Once a PING fails, the other old connections are closed unasked: a
    /// stalled Redis would make each PING wait for its timeout.
    fn is_valid(&self, conn: &mut RedisConn) -> Result<(), RedisError> {
        let failures = self.failures.load(Ordering::Relaxed);
        if conn.checked == failures && conn.last_used.elapsed() < IDLE_CHECK {
            return Ok(());
        }
        if self.ping_failed.load(Ordering::Relaxed) == failures {
            let why = "an older connection did not answer PING either";
            return Err((
                redis::ErrorKind::Io,
                "connection closed unasked",
                why.to_string(),
            )
                .into());
        }
        r2d2::ManageConnection::is_valid(&self.client, &mut conn.con)
            .inspect_err(|_| self.ping_failed.store(failures, Ordering::Relaxed))?;
        conn.checked = failures;
        conn.last_used = Instant::now();
        Ok(())
    }

    fn has_broken(&self, conn: &mut RedisConn) -> bool {
        conn.failed || r2d2::ManageConnection::has_broken(&self.client, &mut conn.con)
    }
}

/// Opens the pool. A checkout costs no round trip while Redis is healthy;
/// see `Manager::is_valid`.
pub fn build(client: Client) -> Result<Pool, r2d2::Error> {
    let connections = r2d2::Pool::builder()
        .max_size(POOL_SIZE)
        .connection_timeout(CHECKOUT_TIMEOUT)
        .test_on_check_out(true)
        .error_handler(Box::new(r2d2::NopErrorHandler))
        .build(Manager {
            client,
            failures: Arc::new(AtomicU64::new(0)),
            ping_failed: AtomicU64::new(u64::MAX),
        })?;
    Ok(Pool {
        connections,
        turns: Permits::new(POOL_SIZE as usize),
    })
}
