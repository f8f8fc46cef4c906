//! Redis: where it is, and the pool of connections the requests share.
//! Python: `pyredis = redis.Redis(host='', port=6379, db=0)` and
//! `pool = redis.ConnectionPool(host='', port=6379, db=0)`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::io::tcp::TcpSettings;
use redis::{Client, Connection, ConnectionAddr, ConnectionLike, IntoConnectionInfo, RedisError};

use crate::http::Cause;
use crate::permits::Permits;
use crate::sale::keys;
use crate::sentinel::{self, Sentinels};

/// Connections kept open: more than `ab -c 100` holds at once.
pub const POOL_SIZE: u32 = 256;

/// How long a request waits for its turn at a connection before answering
/// 503 busy. The Python waits forever; a flash-sale buyer should hear back.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long one reply may take. The redis crate waits this long for each
/// reply of a pipeline, even after one timed out: four replies, 1.6 s.
pub const IO_TIMEOUT: Duration = Duration::from_millis(400);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection unused this long says PONG before it is used again: Redis
/// may have restarted meanwhile. Under load none waits this long.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The Redis of the sale, and how to name it in messages.
pub struct Redis {
    source: Arc<Source>,
    /// Where it is, without any password.
    pub at: String,
}

/// Where connections go: the one Redis of `--redis`, or the master that
/// the sentinels of `--sentinel` name now: each new connection asks them.
enum Source {
    Url(Client),
    Sentinel(Sentinels),
}

impl Source {
    fn connect(&self) -> Result<Connection, RedisError> {
        match self {
            Source::Url(client) => client.get_connection_with_timeout(CONNECT_TIMEOUT),
            Source::Sentinel(sentinels) => sentinels.connect_to_master(),
        }
    }

    /// Whether a connection still works, and with sentinels still leads to
    /// the master: a demoted master refuses the sale's writes.
    fn check(&self, con: &mut Connection) -> Result<(), RedisError> {
        match self {
            Source::Url(_) => redis::cmd("PING").exec(con),
            Source::Sentinel(_) => sentinel::is_master(con),
        }
    }
}

/// A Redis that could not be reached or failed, and what to do about it.
#[derive(Debug)]
pub struct Failed {
    at: String,
    err: RedisError,
    sentinels: bool,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.err.code().is_some() {
            // Reached, and it answered with an error of its own.
            return write!(f, "Redis at {} refused: {}", self.at, self.err);
        }
        write!(f, "cannot reach Redis at {}: {}", self.at, self.err)?;
        if self.sentinels {
            let hint = "are the sentinels running, and do they name that master? \
                        (scripts/sentinel-dev.sh starts a set)";
            write!(f, "; {hint}")?;
        } else if self.err.is_connection_refusal() || self.err.is_timeout() {
            write!(
                f,
                "; start it with `redis-server` (or scripts/redis-dev.sh)"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Failed {}

impl Redis {
    /// The Redis at `url`; or, with `sentinels`, the master they know as
    /// `master`, with the database and password of `url`.
    pub fn open(url: &str, sentinels: &[String], master: &str) -> Result<Redis, String> {
        let bad_url = |err: RedisError| {
            format!(
                "--redis {url}: {err}; give it as redis://HOST:PORT/DB, such as redis://127.0.0.1:6379/0"
            )
        };
        // Nagle's algorithm would hold a small write back: a buyer gains nothing.
        let nodelay = TcpSettings::default().set_nodelay(true);
        let info = url.into_connection_info().map_err(bad_url)?;
        let db = info.redis_settings().db();
        let info = info.set_tcp_settings(nodelay);
        if !sentinels.is_empty() {
            let list = sentinels.join(",");
            let sentinels = Sentinels::new(sentinels, master, info, IO_TIMEOUT)
                .map_err(|err| format!("--sentinel {list}: {err}"))?;
            let at = format!("the master `{master}` (db {db}) of the sentinels at {list}");
            let source = Arc::new(Source::Sentinel(sentinels));
            return Ok(Redis { source, at });
        }
        let client = Client::open(info).map_err(bad_url)?;
        let at = match client.get_connection_info().addr() {
            ConnectionAddr::Unix(path) => format!("redis+unix://{}?db={db}", path.display()),
            addr => format!("redis://{addr}/{db}"),
        };
        let source = Arc::new(Source::Url(client));
        Ok(Redis { source, at })
    }

    pub fn connect(&self) -> Result<Connection, Failed> {
        self.source.connect().map_err(|err| self.failed(err))
    }

    pub fn failed(&self, err: RedisError) -> Failed {
        let at = self.at.clone();
        let sentinels = matches!(*self.source, Source::Sentinel(_));
        Failed { at, err, sentinels }
    }
}

/// Why Redis gave no answer about the sale.
#[derive(Debug)]
pub enum Trouble {
    /// No turn at a connection came in time: a crowd, not a fault.
    Busy,
    /// Redis could not be reached or failed; the words say how.
    Redis(String),
    /// `commodity:num` is missing: no sale was started, or Redis lost it.
    NoSale,
    /// The step that sells was sent, but its reply timed out or the
    /// connection dropped: Redis may have sold the item or not.
    MaybeSold(String),
    /// Sold on the master, but fewer replicas than `--replicas` confirmed it
    /// in time: a failover now could lose it. `wait_failed`: WAIT itself got
    /// no reply, so the connection is in doubt.
    Unreplicated { what: String, wait_failed: bool },
}

impl From<RedisError> for Trouble {
    fn from(err: RedisError) -> Trouble {
        Trouble::Redis(match err.code() {
            _ if err.is_timeout() => {
                format!("Redis did not answer in time; is it stalled or overloaded? ({err})")
            }
            // A master's min-replicas-to-write, with too few replicas in touch.
            Some("NOREPLICAS") => format!(
                "Redis refuses the sale: too few replicas are in touch with the master \
                 (its min-replicas-to-write); start or reconnect a replica ({err})"
            ),
            // A master demoted by a failover; the pool drops this connection.
            Some("READONLY") => format!(
                "Redis refuses the sale: the server is a replica now, after a failover; \
                 try again in a few seconds ({err})"
            ),
            _ => format!("Redis failed: {err}"),
        })
    }
}

/// The words of its 503: what happened, and what to do.
impl fmt::Display for Trouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trouble::Busy => {
                f.write_str("busy: a crowd is ahead and no turn came within a second; try again")
            }
            Trouble::Redis(what) | Trouble::Unreplicated { what, .. } => f.write_str(what),
            Trouble::NoSale => write!(
                f,
                "no sale is set up in Redis ({} is missing); restart seckill to start one",
                keys::STOCK
            ),
            Trouble::MaybeSold(err) => write!(
                f,
                "Redis did not confirm the purchase in time ({err}): it may have gone through; \
                 the winners printed when the sale ends will tell"
            ),
        }
    }
}

impl Trouble {
    /// The `cause` of its 503, for programs.
    pub fn cause(&self) -> Cause {
        match self {
            Trouble::Busy => Cause::Busy,
            Trouble::Redis(_) => Cause::Redis,
            Trouble::NoSale => Cause::NoSale,
            Trouble::MaybeSold(_) => Cause::MaybeSold,
            Trouble::Unreplicated { .. } => Cause::Unreplicated,
        }
    }

    /// The error of the step that changes the sale: lost on the way back, it
    /// may have been done. Telling the buyer "failed" would be a lie half the time.
    pub fn after_sending(err: RedisError) -> Trouble {
        if err.is_timeout() || err.is_connection_dropped() {
            Trouble::MaybeSold(err.to_string())
        } else {
            Trouble::from(err)
        }
    }
}

/// The pool, and a queue in front of it. r2d2 hands a freed connection to
/// any waiting thread: under `ab -c 1000` on a busy machine some requests
/// waited the whole second while later ones went first. A turn taken first
/// (`Permits`, first come first served) keeps the order, and tells a crowd
/// (no turn in time) from Redis failing (a turn, but no connection).
pub struct Pool {
    connections: r2d2::Pool<Manager>,
    turns: Arc<Permits>,
    /// With sentinels, no connection may mean a failover is on.
    sentinels: bool,
}

impl Pool {
    pub fn open(redis: &Redis) -> Result<Pool, String> {
        let manager = Manager {
            source: Arc::clone(&redis.source),
            failures: Arc::new(AtomicU64::new(0)),
            ping_failed: AtomicU64::new(u64::MAX),
        };
        let connections = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .connection_timeout(CHECKOUT_TIMEOUT)
            .test_on_check_out(true)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(manager)
            .map_err(|err| format!("cannot open a pool of connections to {}: {err}", redis.at))?;
        let turns = Permits::new(POOL_SIZE as usize);
        let sentinels = matches!(*redis.source, Source::Sentinel(_));
        Ok(Pool {
            connections,
            turns,
            sentinels,
        })
    }

    /// Runs `work` on a connection, taken in turn.
    /// Python: pyredis = redis.Redis(connection_pool=pool)
    pub fn run<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, Trouble>,
    ) -> Result<T, Trouble> {
        let _turn = self.turns.acquire(CHECKOUT_TIMEOUT).ok_or(Trouble::Busy)?;
        let mut pooled = self.connections.get().map_err(|err| {
            Trouble::Redis(if self.sentinels {
                format!("Redis is failing over, or down: no master within a second ({err}); try again in a few seconds")
            } else {
                format!("no connection to Redis within a second: {err}")
            })
        })?;
        let result = work(&mut pooled.con);
        pooled.last_used = Instant::now();
        // After an error, whether the connection still WATCHes or owes a
        // reply is unknown: it is closed, and the others say PONG first.
        // A WAIT that answered "too few replicas" leaves it clean.
        let in_doubt = |trouble: &Trouble| match trouble {
            Trouble::Redis(_) | Trouble::MaybeSold(_) => true,
            Trouble::Unreplicated { wait_failed, .. } => *wait_failed,
            Trouble::Busy | Trouble::NoSale => false,
        };
        if result.as_ref().is_err_and(in_doubt) {
            pooled.failed = true;
            pooled.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

/// A pooled connection, and what the pool knows of it.
pub struct Pooled {
    con: Connection,
    failed: bool,
    /// `Manager::failures` when this connection last worked.
    checked: u64,
    last_used: Instant,
    failures: Arc<AtomicU64>,
}

/// Opens connections with timeouts, and checks them only when in doubt.
pub struct Manager {
    source: Arc<Source>,
    /// How many requests failed on a connection: when it moves, Redis may
    /// have restarted, and every older connection may be dead.
    failures: Arc<AtomicU64>,
    /// `failures` when a PING last failed: until the next failure, older
    /// connections are closed unasked, as a stalled Redis would make each
    /// PING wait for its timeout.
    ping_failed: AtomicU64,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = RedisError;

    fn connect(&self) -> Result<Pooled, RedisError> {
        let con = self.source.connect()?;
        con.set_read_timeout(Some(IO_TIMEOUT))?;
        con.set_write_timeout(Some(IO_TIMEOUT))?;
        let checked = self.failures.load(Ordering::Relaxed);
        let (failed, last_used, failures) = (false, Instant::now(), Arc::clone(&self.failures));
        Ok(Pooled {
            con,
            failed,
            checked,
            last_used,
            failures,
        })
    }

    /// Free while Redis is busy and healthy; after a failure, or a second of
    /// rest, one PING (ROLE, with sentinels), so that a restart of Redis or
    /// a failover costs no buyer an answer.
    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), RedisError> {
        let failures = self.failures.load(Ordering::Relaxed);
        if pooled.checked == failures && pooled.last_used.elapsed() < IDLE_CHECK {
            return Ok(());
        }
        if self.ping_failed.load(Ordering::Relaxed) == failures {
            let why = "an older connection did not answer PING either".to_string();
            return Err((redis::ErrorKind::Io, "connection closed unasked", why).into());
        }
        self.source
            .check(&mut pooled.con)
            .inspect_err(|_| self.ping_failed.store(failures, Ordering::Relaxed))?;
        (pooled.checked, pooled.last_used) = (failures, Instant::now());
        Ok(())
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        pooled.failed || !pooled.con.is_open()
    }
}
