//! Why Redis gave no answer about the sale, as a request meets it: each
//! `Trouble` is a 503 whose words say what happened and what to do, and
//! whose `cause` names it for programs (src/lib.rs tells the whole story of
//! the errors).

use std::fmt;
use std::time::Duration;

use redis::RedisError;

use crate::beyond::output::span;
use crate::beyond::replicas::Unconfirmed;
use crate::http::Cause;
use crate::keys;
use crate::sale::{BadStock, ReadError};

/// The next step when Redis went away, said the same everywhere: a Redis
/// started again with its data brings the sale back.
pub const START_REDIS_AGAIN: &str =
    "start Redis again (with its data: scripts/redis-dev.sh keeps it), and the sale goes on";

/// Why Redis gave no answer about the sale.
#[derive(Debug)]
pub enum Trouble {
    /// No turn came within the wait it holds (`--turn-wait`): the server is
    /// overloaded, and Redis is healthy.
    Busy(Duration),
    /// Redis could not be reached or failed; the words say how.
    Redis(String),
    /// The Redis user may not run a command the sale needs (an ACL); the
    /// words name it and what to grant.
    NoPermission(String),
    /// `commodity:num` is missing: no sale was started, or Redis lost it.
    NoSale,
    /// The same, in a Redis that has evicted keys under memory pressure
    /// (`evicted_keys`, and its `maxmemory-policy`): the sale most likely.
    Evicted { keys: u64, policy: String },
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

impl From<Unconfirmed> for Trouble {
    fn from(Unconfirmed { what, wait_failed }: Unconfirmed) -> Trouble {
        Trouble::Unreplicated { what, wait_failed }
    }
}

/// The error codes of the Lua scripts (src/purchase/purchase.lua, src/mark.lua).
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
            Some("NOPERM") => {
                return Trouble::NoPermission(format!(
                    "the Redis user may not do what a purchase needs ({err}); grant it the \
                     right (redis-cli ACL SETUSER ...), and the sale goes on"
                ));
            }
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
            _ if err.is_connection_dropped()
                || err.is_connection_refusal()
                || err.is_io_error() =>
            {
                format!("Redis failed: {err}; {START_REDIS_AGAIN}")
            }
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
            Trouble::Busy(wait) => write!(
                f,
                "busy: the server is overloaded: a crowd is ahead and no turn came within {}; \
                 try again in a moment",
                span(*wait)
            ),
            Trouble::Redis(what)
            | Trouble::NoPermission(what)
            | Trouble::Unreplicated { what, .. } => f.write_str(what),
            // The right step first: a Redis started again with its data brings
            // the sale back; a fresh start of seckill throws it away.
            Trouble::NoSale => write!(
                f,
                "no sale is set up in Redis ({} is missing): if Redis restarted without its \
                 data, stop that Redis (redis-cli shutdown) and start it with its data \
                 (scripts/redis-dev.sh keeps it), and the sale comes back; to start a fresh \
                 sale instead, restart seckill without --join",
                keys::STOCK
            ),
            Trouble::Evicted { keys, policy } => write!(
                f,
                "no sale is set up in Redis ({} is missing), and Redis has evicted {keys} keys \
                 under memory pressure (maxmemory-policy {policy}): the sale was most likely \
                 evicted. Set noeviction (redis-cli config set maxmemory-policy noeviction) so \
                 that Redis refuses writes rather than dropping a sale, and start a fresh sale",
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
    /// `NoSale`, told apart: a Redis that evicts keys has most likely
    /// evicted the sale, and a restart without its data is not the cause.
    pub fn no_sale_in(self, con: &mut redis::Connection) -> Trouble {
        if !matches!(self, Trouble::NoSale) {
            return self;
        }
        match evictions(con) {
            Some((keys, policy)) if keys > 0 => Trouble::Evicted { keys, policy },
            _ => Trouble::NoSale,
        }
    }

    /// What happened, without the next step its 503 gives a buyer (which
    /// says the sale goes on): for a server that has stopped.
    pub fn what_happened(&self) -> String {
        let words = self.to_string();
        match words.strip_suffix(&format!("; {START_REDIS_AGAIN}")) {
            Some(what) => what.to_string(),
            None => words,
        }
    }

    /// The `cause` of its 503, for programs.
    pub fn cause(&self) -> Cause {
        match self {
            Trouble::Busy(_) => Cause::Busy,
            Trouble::Redis(_) => Cause::Redis,
            Trouble::NoPermission(_) => Cause::NoPermission,
            Trouble::NoSale | Trouble::Evicted { .. } => Cause::NoSale,
            Trouble::BadStock(_) => Cause::BadStock,
            Trouble::Replaced => Cause::Replaced,
            Trouble::MaybeSold(_) => Cause::MaybeSold,
            Trouble::Unreplicated { .. } => Cause::Unreplicated,
        }
    }

    /// After this trouble, whether its connection still WATCHes or owes a
    /// reply is unknown, and it is closed. A WAIT that answered "too few
    /// replicas" leaves it clean.
    pub fn leaves_connection_in_doubt(&self) -> bool {
        match self {
            Trouble::Redis(_) | Trouble::MaybeSold(_) => true,
            Trouble::Unreplicated { wait_failed, .. } => *wait_failed,
            Trouble::Busy(_)
            | Trouble::NoPermission(_)
            | Trouble::NoSale
            | Trouble::Evicted { .. }
            | Trouble::BadStock(_)
            | Trouble::Replaced => false,
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

/// How many keys Redis has evicted since it started, and its
/// `maxmemory-policy`, from INFO.
pub fn evictions(con: &mut redis::Connection) -> Option<(u64, String)> {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .arg("memory")
        .query(con)
        .ok()?;
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_string())
    };
    let keys = field("evicted_keys:")?.parse().ok()?;
    Some((keys, field("maxmemory_policy:")?))
}
