//! Redis: where it is, and the pool of connections the requests share.
//! Python: `pyredis = redis.Redis(host='', port=6379, db=0)` and
//! `pool = redis.ConnectionPool(host='', port=6379, db=0)`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::io::tcp::TcpSettings;
use redis::{Client, Connection, ConnectionAddr, ConnectionLike, IntoConnectionInfo, RedisError};

use crate::http::Cause;
use crate::output::warn_timed;
use crate::permits::Permits;
use crate::sale::{BadStock, ReadError, keys};
use crate::sentinel::{self, Sentinels};

/// Connections kept open at most: more than `ab -c 100` holds at once.
pub const POOL_SIZE: u32 = 256;

/// Connections opened at start (and needed to start); more are opened as
/// the load needs them, up to `POOL_SIZE`. On two cores, a crowd's first
/// second goes no faster with more; with 2, the crowd waited for new
/// connections, and on busy cores some buyers for over a second.
pub const POOL_AT_START: u32 = 32;

/// What Redis answers a connection beyond its `maxclients`.
const MAXCLIENTS_REACHED: &str = "max number of clients reached";

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
    /// A connection that answered PING, and whose every reply may take
    /// `IO_TIMEOUT` at most: one without a timeout hung the start for as
    /// long as Redis was silent. (A Redis at its maxclients takes the
    /// connection, then answers its first command with an error.)
    fn connect(&self) -> Result<Connection, RedisError> {
        let mut con = match self {
            Source::Url(client) => client.get_connection_with_timeout(CONNECT_TIMEOUT)?,
            Source::Sentinel(sentinels) => sentinels.connect_to_master()?,
        };
        con.set_read_timeout(Some(IO_TIMEOUT))?;
        con.set_write_timeout(Some(IO_TIMEOUT))?;
        redis::cmd("PING").exec(&mut con)?;
        Ok(con)
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
            write!(f, "Redis at {} refused: {}", self.at, self.err)?;
            if self.err.to_string().contains(MAXCLIENTS_REACHED) {
                write!(f, "; stop some of its clients, or raise its maxclients")?;
            }
            return Ok(());
        }
        if self.err.is_timeout() {
            // A socket's timeout reads "Resource temporarily unavailable".
            let (connect, reply) = (CONNECT_TIMEOUT.as_millis(), IO_TIMEOUT.as_millis());
            return write!(
                f,
                "Redis at {} did not answer in time ({connect} ms to connect, {reply} ms a \
                 reply): is it stalled or paused (CLIENT PAUSE), or is something other than \
                 Redis listening there?",
                self.at
            );
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
        // No CLIENT SETINFO at each connect: two round trips saved, and a
        // silent server fails at its first reply, not after two waits.
        let settings = info.redis_settings().clone().set_skip_set_lib_name();
        let info = info.set_tcp_settings(nodelay).set_redis_settings(settings);
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
    /// The stock is not a whole number: nothing can be sold until it is.
    BadStock(BadStock),
    /// Another seckill started a new sale in place of this server's.
    Replaced,
    /// The step that sells was sent, but its reply timed out or the
    /// connection dropped: Redis may have sold the item or not.
    MaybeSold(String),
    /// Sold on the master, but fewer replicas than `--replicas` confirmed it
    /// in time: a failover now could lose it. `wait_failed`: WAIT itself got
    /// no reply, so the connection is in doubt.
    Unreplicated { what: String, wait_failed: bool },
}

/// The error codes of the Lua scripts (src/purchase.lua, src/mark.lua).
const REPLACED: &str = "REPLACED";
const BAD_STOCK: &str = "BADSTOCK";

impl From<RedisError> for Trouble {
    fn from(err: RedisError) -> Trouble {
        // A transaction Redis refused says why in its commands' errors: a
        // replica's READONLY, say, inside the EXECABORT.
        let inner = err.clone().into_server_errors();
        let first = inner.as_deref().and_then(<[_]>::first);
        let code = first.map_or(err.code(), |(_, inner)| Some(inner.code()));
        Trouble::Redis(match code {
            Some(REPLACED) => return Trouble::Replaced,
            Some(BAD_STOCK) => {
                let value = err.detail().unwrap_or("").to_string();
                return Trouble::BadStock(BadStock {
                    key: keys::STOCK,
                    value,
                });
            }
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
impl From<BadStock> for Trouble {
    fn from(bad: BadStock) -> Trouble {
        Trouble::BadStock(bad)
    }
}

impl From<ReadError> for Trouble {
    fn from(err: ReadError) -> Trouble {
        match err {
            ReadError::Redis(err) => Trouble::from(err),
            ReadError::BadStock(bad) => Trouble::BadStock(bad),
        }
    }
}

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
            Trouble::BadStock(bad) => write!(f, "nothing can be sold: {bad}"),
            Trouble::Replaced => f.write_str(
                "another seckill started a new sale in Redis in place of this server's \
                 (--replace); this server sells no more: restart it with --join to sell the \
                 new sale",
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
            Trouble::BadStock(_) => Cause::BadStock,
            Trouble::Replaced => Cause::Replaced,
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
    /// New connections that failed since `tell_if_refused` last looked.
    refused: Arc<AtomicU64>,
    told_refused: AtomicBool,
}

/// Why Redis refuses new connections, if it is full: every client it
/// allows (`maxclients`) is connected.
fn clients_full(con: &mut Connection) -> Option<String> {
    let connected = clients_field(con, "connected_clients:")?;
    let most = maxclients(con)?;
    // This connection is one of them; a full Redis leaves room for one or two.
    (connected + 2 >= most).then(|| {
        format!(
            "Redis refuses more connections: {connected} clients are connected, and its \
             maxclients is {most}; raise it (redis-cli config set maxclients 10000) or stop \
             other clients"
        )
    })
}

/// The clients Redis allows at once.
fn maxclients(con: &mut Connection) -> Option<u64> {
    clients_field(con, "maxclients:")
}

/// A field of INFO clients (`maxclients` since Redis 7).
fn clients_field(con: &mut Connection, name: &str) -> Option<u64> {
    let info: String = redis::cmd("INFO").arg("clients").query(con).ok()?;
    let line = info.lines().find_map(|line| line.strip_prefix(name))?;
    line.trim().parse().ok()
}

impl Pool {
    /// Opens `POOL_AT_START` connections, and more as the load needs them.
    /// `con`, a connection already open, says why if Redis refuses them.
    pub fn open(redis: &Redis, con: &mut Connection) -> Result<Pool, String> {
        let refused = Arc::new(AtomicU64::new(0));
        let manager = Manager {
            source: Arc::clone(&redis.source),
            failures: Arc::new(AtomicU64::new(0)),
            ping_failed: AtomicU64::new(u64::MAX),
            refused: Arc::clone(&refused),
        };
        let connections = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(POOL_AT_START))
            .connection_timeout(CHECKOUT_TIMEOUT)
            .test_on_check_out(true)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(manager)
            .map_err(|err| {
                let (err, needed) = (err.to_string(), POOL_AT_START + 1);
                let why = match maxclients(con) {
                    Some(most) if err.contains(MAXCLIENTS_REACHED) => format!(
                        "Redis refuses more connections: seckill needs {needed} to start, and \
                         Redis allows {most} clients in all (its maxclients), most of them \
                         taken; raise it (redis-cli config set maxclients 10000) or stop \
                         other clients"
                    ),
                    _ => err,
                };
                format!("cannot open a pool of connections to {}: {why}", redis.at)
            })?;
        let turns = Permits::new(POOL_SIZE as usize);
        let sentinels = matches!(*redis.source, Source::Sentinel(_));
        Ok(Pool {
            connections,
            turns,
            sentinels,
            refused,
            told_refused: AtomicBool::new(false),
        })
    }

    /// Says once, when it begins, that Redis refuses the pool more
    /// connections: at its `maxclients`, the crowd shares those open.
    /// `con` asks Redis why.
    pub fn tell_if_refused(&self, con: &mut Connection) {
        if self.refused.swap(0, Ordering::Relaxed) == 0 {
            self.told_refused.store(false, Ordering::Relaxed);
            return;
        }
        if let Some(full) = clients_full(con)
            && !self.told_refused.swap(true, Ordering::Relaxed)
        {
            let open = self.connections.state().connections;
            warn_timed(format!(
                "{full}; this server sells on its {open} connections"
            ));
        }
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
            Trouble::Busy | Trouble::NoSale | Trouble::BadStock(_) | Trouble::Replaced => false,
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
    /// Counts the connections that could not be opened.
    refused: Arc<AtomicU64>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = RedisError;

    fn connect(&self) -> Result<Pooled, RedisError> {
        let con = self.source.connect().inspect_err(|_| {
            self.refused.fetch_add(1, Ordering::Relaxed);
        })?;
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
