//! Redis: where it is, and the pool of connections the requests share.
//! Python: `pyredis = redis.Redis(host='', port=6379, db=0)` and
//! `pool = redis.ConnectionPool(host='', port=6379, db=0)`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::io::tcp::TcpSettings;
use redis::{Client, Connection, ConnectionAddr, IntoConnectionInfo, RedisError, RedisResult};

use crate::beyond::checks::{Checked, Connector};
use crate::beyond::clients::{self, MAXCLIENTS_REACHED, Refusals};
use crate::beyond::output::span;
use crate::beyond::permits::Permits;
use crate::beyond::sentinel::{self, Sentinels};
use crate::trouble::{START_REDIS_AGAIN, Trouble};

/// Connections kept open at most: more than `ab -c 100` holds at once.
pub const POOL_SIZE: u32 = 256;

/// Connections opened at start (and needed to start); more are opened as
/// the load needs them, up to `POOL_SIZE`. On two cores, a crowd's first
/// second goes no faster with more; with 2, the crowd waited for new
/// connections, and on busy cores some buyers for over a second.
pub const POOL_AT_START: u32 = 32;

/// How long a request waits for its turn at a connection before answering
/// 503 busy. The Python waits forever; a flash-sale buyer should hear back.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(1);

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

/// The pool, and a queue in front of it. r2d2 hands a freed connection to
/// any waiting thread: under `ab -c 1000` on a busy machine some requests
/// waited the whole second while later ones went first. A turn taken first
/// (`Permits`, first come first served) keeps the order, and tells a crowd
/// (no turn in time) from Redis failing (a turn, but no connection).
pub struct Pool {
    connections: r2d2::Pool<Checked<Source>>,
    turns: Arc<Permits>,
    /// With sentinels, no connection may mean a failover is on.
    sentinels: bool,
    refusals: Refusals,
}

impl Pool {
    /// Opens `POOL_AT_START` connections, and more as the load needs them.
    /// `con`, a connection already open, says why if Redis refuses them.
    pub fn open(redis: &Redis, con: &mut Connection) -> Result<Pool, String> {
        let refusals = Refusals::default();
        let connections = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(POOL_AT_START))
            .connection_timeout(CHECKOUT_TIMEOUT)
            .test_on_check_out(true)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(Checked::new(Arc::clone(&redis.source), refusals.counter()))
            .map_err(|err| {
                let err = err.to_string();
                let why = clients::too_few_for(con, POOL_AT_START + 1, &err).unwrap_or(err);
                format!("cannot open a pool of connections to {}: {why}", redis.at)
            })?;
        Ok(Pool {
            connections,
            turns: Permits::new(POOL_SIZE as usize),
            sentinels: matches!(*redis.source, Source::Sentinel(_)),
            refusals,
        })
    }

    /// Says once, when it begins, that Redis refuses the pool more
    /// connections: at its `maxclients`, the crowd shares those open.
    /// `con` asks Redis why.
    pub fn tell_if_refused(&self, con: &mut Connection) {
        let open = self.connections.state().connections;
        self.refusals.tell_if_full(con, open);
    }

    /// Runs `work` on a connection, taken in turn.
    /// Python: pyredis = redis.Redis(connection_pool=pool)
    pub fn run<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, Trouble>,
    ) -> Result<T, Trouble> {
        let busy = Trouble::Busy(CHECKOUT_TIMEOUT);
        let _turn = self.turns.acquire(CHECKOUT_TIMEOUT).ok_or(busy)?;
        let mut pooled = self.connections.get().map_err(|err| {
            let wait = span(CHECKOUT_TIMEOUT);
            Trouble::Redis(if self.sentinels {
                format!(
                    "Redis is failing over, or down: no master within {wait} ({err}); try again \
                     in a few seconds"
                )
            } else {
                format!("no connection to Redis within {wait}: {err}; {START_REDIS_AGAIN}")
            })
        })?;
        let result = work(&mut pooled.con);
        pooled.used();
        if result
            .as_ref()
            .is_err_and(Trouble::leaves_connection_in_doubt)
        {
            pooled.in_doubt();
        }
        result
    }
}
