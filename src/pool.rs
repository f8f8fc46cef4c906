//! Redis: where it is, and the pool of connections the requests share.
//! Python: `pyredis = redis.Redis(host='', port=6379, db=0)` and
//! `pool = redis.ConnectionPool(host='', port=6379, db=0)`.

use std::fmt;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use redis::io::tcp::TcpSettings;
use redis::{Client, Connection, ConnectionAddr, IntoConnectionInfo, RedisError, RedisResult};

use crate::beyond::checks::{Checked, Connector, Reach};
use crate::beyond::clients::{self, MAXCLIENTS_REACHED, Refusals};
use crate::beyond::growth::Growth;
use crate::beyond::permits::{NoPermit, Permits};
use crate::beyond::redact::redact;
use crate::beyond::sentinel::{self, Sentinels};
use crate::trouble::{START_REDIS_AGAIN, Trouble};

/// The default of `--redis-connections`, the connections kept open at
/// most: more than `ab -c 100` holds at once.
pub const POOL_SIZE: u32 = 256;

/// Connections opened at start (and needed to start); more are opened as
/// the load needs them, up to `--redis-connections`. On two cores, a crowd's first
/// second goes no faster with more; with 2, the crowd waited for new
/// connections, and on busy cores some buyers for over a second.
pub const POOL_AT_START: u32 = 32;

/// A connection no request has taken for this long is closed (r2d2 looks
/// every 30 s): the pool shrinks back within a minute of the load's end.
/// One Redis gains nothing from connections a past crowd opened.
pub const POOL_IDLE_CLOSE: Duration = Duration::from_secs(20);

/// How often a request with its turn looks again whether Redis failed
/// while it waits for a connection to open: a stopped Redis is told at once.
const CONNECT_POLL: Duration = Duration::from_millis(20);

/// r2d2 tries again to open a connection Redis refused after half of this
/// at most (its `connection_timeout`, which no checkout here uses). While
/// Redis is down, each connection the pool keeps at start is tried again so:
/// a buyer waits a few ms for a fresh try, and the first after Redis is back
/// finds it reached again.
const RECONNECT: Duration = Duration::from_secs(1);

/// How long one reply may take. The redis crate waits this long for each
/// reply of a pipeline, even after one timed out: four replies, 1.6 s.
pub const IO_TIMEOUT: Duration = Duration::from_millis(400);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The Redis of the sale, and how to name it in messages.
#[derive(Clone)]
pub struct Redis {
    source: Arc<Source>,
    /// Where it is, without any password.
    pub at: String,
    /// How to start a Redis where `at` points, when it is this machine.
    start: Option<String>,
}

/// Where connections go: the one Redis of `--redis`, or the master that
/// the sentinels of `--sentinel` name now: each new connection asks them.
enum Source {
    Url(Client),
    Sentinel(Sentinels),
}

impl Connector for Source {
    /// A connection that answered PING, and whose every reply may take
    /// `IO_TIMEOUT` at most: one without a timeout hung the start for as
    /// long as Redis was silent. (A Redis at its maxclients takes the
    /// connection, then answers its first command with an error.)
    fn connect(&self) -> RedisResult<Connection> {
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
    fn check(&self, con: &mut Connection) -> RedisResult<()> {
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
    start: Option<String>,
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
        if !(self.err.is_io_error() || self.err.is_connection_refusal()) {
            // Reached, and it answered something seckill cannot read.
            return write!(
                f,
                "Redis at {} answered what seckill cannot read: {}",
                self.at, self.err
            );
        }
        write!(f, "cannot reach Redis at {}: {}", self.at, self.err)?;
        if self.sentinels {
            let hint = "are the sentinels running, and do they name that master? \
                        (scripts/sentinel-dev.sh starts a set)";
            write!(f, "; {hint}")?;
        } else if let Some(start) = self
            .start
            .as_ref()
            .filter(|_| self.err.is_connection_refusal())
        {
            write!(f, "; {start}")?;
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
                "--redis {}: {err}; give it as redis://HOST:PORT/DB, such as \
                 redis://127.0.0.1:6379/0",
                redact(url)
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
            return Ok(Redis {
                source,
                at,
                start: None,
            });
        }
        let client = Client::open(info).map_err(bad_url)?;
        let addr = client.get_connection_info().addr().clone();
        let at = match &addr {
            ConnectionAddr::Unix(path) => format!("redis+unix://{}?db={db}", path.display()),
            addr => format!("redis://{addr}/{db}"),
        };
        let start = start_command(&addr, &at);
        let source = Arc::new(Source::Url(client));
        Ok(Redis { source, at, start })
    }

    pub fn connect(&self) -> Result<Connection, Failed> {
        self.source.connect().map_err(|err| self.failed(err))
    }

    pub fn failed(&self, err: RedisError) -> Failed {
        let at = self.at.clone();
        let sentinels = matches!(*self.source, Source::Sentinel(_));
        let start = self.start.clone();
        Failed {
            at,
            err,
            sentinels,
            start,
        }
    }
}

/// The words that say how to start a Redis at `addr` (`at`, as messages
/// name it): a command for this machine's own addresses, with the port;
/// for another machine, where.
fn start_command(addr: &ConnectionAddr, at: &str) -> Option<String> {
    let ConnectionAddr::Tcp(host, port) = addr else {
        return Some(format!("start a Redis listening at {at}"));
    };
    let local = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !local {
        return Some(format!("start Redis on {host}:{port}"));
    }
    Some(format!(
        "start it with `REDIS_URL={at} scripts/redis-dev.sh` (it keeps the sale's data in \
         data/redis-{port}/; scripts/run.sh does it for you), or `redis-server --port {port}`"
    ))
}

/// The pool, and a queue in front of it. r2d2 hands a freed connection to
/// any waiting thread: under `ab -c 1000` on a busy machine some requests
/// waited the whole second while later ones went first. A turn taken first
/// (`Permits`, first come first served) keeps the order, and tells a crowd
/// (no turn in time: 503 busy) from Redis failing (a connection or its
/// check failed: every waiter is told at once).
pub struct Pool {
    connections: r2d2::Pool<Checked<Source>>,
    turns: Arc<Permits>,
    /// How long a request waits for its turn and its connection (`--turn-wait`).
    wait: Duration,
    /// Whether the latest connection opened, or its check passed.
    reach: Arc<Reach>,
    /// With sentinels, no connection may mean a failover is on.
    sentinels: bool,
    refusals: Refusals,
    growth: Growth,
}

impl Pool {
    /// Opens `POOL_AT_START` connections, and more as the load needs them
    /// up to `size`; a request waits `wait` at most for its turn at one.
    /// `con`, a connection already open, says why if Redis refuses them.
    pub fn open(
        redis: &Redis,
        con: &mut Connection,
        size: u32,
        wait: Duration,
    ) -> Result<Pool, String> {
        let at_start = POOL_AT_START.min(size);
        let refusals = Refusals::default();
        let reach = Arc::new(Reach::default());
        let checked = Checked::new(
            Arc::clone(&redis.source),
            refusals.counter(),
            Arc::clone(&reach),
        );
        // No idle floor (`min_idle` 0): r2d2 tops its idle connections up
        // at each checkout without counting those still opening, so under
        // load a floor of 32 opened every connection allowed (256 for `ab
        // -c 50`). A request that finds none idle asks for one.
        let connections = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .idle_timeout(Some(POOL_IDLE_CLOSE))
            .connection_timeout(RECONNECT)
            .test_on_check_out(true)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(checked);
        let opened: Result<Vec<_>, _> = (0..at_start)
            .map(|_| connections.get_timeout(RECONNECT))
            .collect();
        opened.map_err(|err| {
            let err = err.to_string();
            let why = clients::too_few_for(con, at_start + 1, &err).unwrap_or(err);
            format!("cannot open a pool of connections to {}: {why}", redis.at)
        })?;
        Ok(Pool {
            connections,
            turns: Permits::new(size as usize),
            wait,
            reach,
            sentinels: matches!(*redis.source, Source::Sentinel(_)),
            refusals,
            growth: Growth::default(),
        })
    }

    /// Says once, when it begins, that Redis refuses the pool more
    /// connections: at its `maxclients`, the crowd shares those open.
    /// `con` asks Redis why.
    pub fn tell_if_refused(&self, con: &mut Connection) {
        let open = self.connections.state().connections;
        self.refusals.tell_if_full(con, open);
    }

    /// When a request arriving now stops waiting for its turn.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.wait
    }

    /// Whether the latest connection or check failed: Redis is down or
    /// stalled, and waiting for a turn would not help.
    pub fn failing(&self) -> bool {
        self.reach.failing()
    }

    /// The 503 for a request that waited until `deadline` for a turn.
    pub fn no_turn(&self, no: NoPermit) -> Trouble {
        match no {
            NoPermit::TimedOut => Trouble::Busy(self.wait),
            NoPermit::GaveUp => self.unreachable(),
        }
    }

    /// Runs `work` on a connection, taken in turn, waiting `--turn-wait`
    /// at most. Python: pyredis = redis.Redis(connection_pool=pool)
    pub fn run<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, Trouble>,
    ) -> Result<T, Trouble> {
        self.run_by(self.deadline(), work)
    }

    /// As `run`, waiting until `deadline` at most.
    pub fn run_by<T>(
        &self,
        deadline: Instant,
        work: impl FnOnce(&mut Connection) -> Result<T, Trouble>,
    ) -> Result<T, Trouble> {
        let turn = self.turns.acquire(deadline, || self.failing());
        let _turn = turn.map_err(|no| self.no_turn(no))?;
        self.run_on_turn(deadline, work)
    }

    /// As `run`, ahead of the requests that wait, for `wait` at most: for
    /// the server's own rare tasks (its mark on the sale), which a crowd
    /// must not hold back.
    pub fn run_first<T>(
        &self,
        wait: Duration,
        work: impl FnOnce(&mut Connection) -> Result<T, Trouble>,
    ) -> Result<T, Trouble> {
        let deadline = Instant::now() + wait;
        let turn = self.turns.acquire_first(deadline, || self.failing());
        let _turn = turn.map_err(|no| self.no_turn(no))?;
        self.run_on_turn(deadline, work)
    }

    fn run_on_turn<T>(
        &self,
        deadline: Instant,
        work: impl FnOnce(&mut Connection) -> Result<T, Trouble>,
    ) -> Result<T, Trouble> {
        let mut pooled = self.checkout(deadline)?;
        let result = work(&mut pooled.con);
        pooled.used();
        let in_doubt = matches!(&result, Err(trouble) if trouble.leaves_connection_in_doubt());
        if in_doubt {
            pooled.in_doubt();
        }
        drop(pooled);
        self.growth.one_back();
        if in_doubt {
            // The next checkout checks its connection: should that fail
            // too, the queue hears it and gives up.
            self.turns.wake_all();
        } else {
            self.reach.worked();
        }
        result
    }

    /// A connection, by `deadline`; the 503 of a Redis that failed as soon
    /// as a try made since this request came fails, rather than waiting on.
    fn checkout(
        &self,
        deadline: Instant,
    ) -> Result<r2d2::PooledConnection<Checked<Source>>, Trouble> {
        let seen = self.reach.attempts();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.failing() {
                // Asks for no new connection: those asked for already are
                // tried again in the background, and a crowd asking for
                // more during an outage only multiplies the tries.
                if let Some(pooled) = self.connections.try_get() {
                    return Ok(pooled);
                }
                if self.reach.attempts() != seen || left.is_zero() {
                    self.turns.wake_all();
                    return Err(self.unreachable());
                }
                thread::sleep(left.min(CONNECT_POLL));
                continue;
            }
            let returned = self.growth.seen();
            if let Some(pooled) = self.connections.try_get() {
                return Ok(pooled);
            }
            if left.is_zero() {
                // Connections open slowly: the machine is overloaded.
                return Err(Trouble::Busy(self.wait));
            }
            if self.growth.may_ask(self.connections.state().connections) {
                // A wait of zero asks r2d2 to open one, and returns.
                if let Ok(pooled) = self.connections.get_timeout(Duration::ZERO) {
                    return Ok(pooled);
                }
            }
            self.growth.wait_after(returned, left.min(CONNECT_POLL));
        }
    }

    /// The 503 of a Redis that could not be reached, in the words of its
    /// error (it may have been reached again in the instant since).
    fn unreachable(&self) -> Trouble {
        let Some(err) = self.reach.last_failure() else {
            return Trouble::Redis(format!("Redis failed; {START_REDIS_AGAIN}"));
        };
        if self.sentinels {
            return Trouble::Redis(format!(
                "Redis is failing over, or down: no master answers ({err}); try again in a few \
                 seconds"
            ));
        }
        if err.is_connection_refusal() {
            return Trouble::Redis(format!("cannot reach Redis: {err}; {START_REDIS_AGAIN}"));
        }
        Trouble::from(err)
    }

    /// The connections to Redis open now.
    pub fn connections_open(&self) -> u32 {
        self.connections.state().connections
    }

    /// How many requests wait for their turn now, and the longest any has
    /// waited so far.
    pub fn queue(&self) -> (usize, Duration) {
        (self.turns.waiting(), self.turns.longest_wait())
    }
}
