//! The purchase: the POST branch of the Python `fun_send`, four ways, each
//! one short function on one pooled connection. Read them in order: the
//! first oversells, the tutorial's second does not but leaves stock unsold,
//! the third sells out at the price of retries, the fourth in one step.

use std::sync::LazyLock;
use std::time::Duration;

use clap::ValueEnum;
use redis::{Connection, Script};

use crate::answer::Answer;
use crate::keys;

/// How a purchase is made: `--strategy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// Check, then decrement, with no lock: oversells under load.
    Naive,
    /// The tutorial's WATCH/MULTI/EXEC; a lost race answers -3.
    Watch,
    /// WATCH/MULTI/EXEC again after a lost race, up to --retries times.
    WatchRetry,
    /// One Lua script that Redis runs as a single step.
    Lua,
}

impl Strategy {
    /// The name `--strategy` takes and `/seckill/stats` shows.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Naive => "naive",
            Strategy::Watch => "watch",
            Strategy::WatchRetry => "watch-retry",
            Strategy::Lua => "lua",
        }
    }

    /// How many purchases may race at once, for a strategy that limits it.
    pub fn racers_at_once(self) -> Option<usize> {
        (self == Strategy::WatchRetry).then_some(RACERS_AT_ONCE)
    }

    /// Makes one purchase for `user_id`.
    pub fn buy(
        self,
        con: &mut Connection,
        user_id: &str,
        retries: u32,
    ) -> Result<Outcome, SaleError> {
        match self {
            Strategy::Naive => naive(con, user_id).map(Outcome::from),
            Strategy::Watch => watch(con, user_id).map(Outcome::from),
            Strategy::WatchRetry => watch_retry(con, user_id, retries),
            Strategy::Lua => lua(con, user_id).map(Outcome::from),
        }
    }
}

/// The default of `--retries`; see the README for how it was chosen.
pub const DEFAULT_RETRIES: u32 = 100;

/// How many `watch-retry` purchases race at once on one server; the other
/// buyers wait in turn. With all of `ab -c 100` racing, each purchase lost
/// two races on average and one in a hundred waited three times as long as
/// the median; four at a time still race, but rarely lose many times.
pub const RACERS_AT_ONCE: usize = 4;

/// How long a buyer waits for a turn to race before answering 503: turns
/// come in milliseconds unless Redis stalls.
pub const TURN_WAIT: Duration = Duration::from_secs(1);

/// A purchase's answer, and how many of its EXECs a WATCH aborted on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub answer: Answer,
    pub conflicts: u32,
}

impl From<Answer> for Outcome {
    fn from(answer: Answer) -> Outcome {
        let conflicts = u32::from(answer == Answer::Conflict);
        Outcome { answer, conflicts }
    }
}

/// Why Redis gave no answer about the sale.
#[derive(Debug)]
pub enum SaleError {
    /// `commodity:num` is missing: no sale was started, or Redis lost it.
    NoSale,
    /// Redis could not be reached, or answered with an error.
    Redis(redis::RedisError),
    /// The step that sells was sent, but its reply timed out or the
    /// connection dropped: Redis may have sold the item or not. Telling the
    /// buyer "failed" would be a lie half the time.
    MaybeSold(redis::RedisError),
}

impl SaleError {
    /// The error of the step that changes the sale.
    fn after_sending(err: redis::RedisError) -> SaleError {
        if err.is_timeout() || err.is_connection_dropped() {
            SaleError::MaybeSold(err)
        } else {
            SaleError::Redis(err)
        }
    }
}

impl From<redis::RedisError> for SaleError {
    fn from(err: redis::RedisError) -> Self {
        SaleError::Redis(err)
    }
}

/// What the tutorial warns against: read the stock, and if some is left,
/// take one. Between the GET and the DECR other buyers read the same stock,
/// so the last item is sold many times over.
pub fn naive(con: &mut Connection, user_id: &str) -> Result<Answer, SaleError> {
    let (stock, bought): (Option<i64>, bool) = redis::pipe()
        .get(keys::STOCK)
        .sismember(keys::WINNERS, user_id)
        .query(con)?;
    match stock {
        None => Err(SaleError::NoSale),
        Some(stock) if stock < 1 => Ok(Answer::SoldOut),
        Some(_) if bought => Ok(Answer::Repeat),
        Some(_) => {
            let (remaining, _added): (i64, i64) = redis::pipe()
                .decr(keys::STOCK, 1)
                .sadd(keys::WINNERS, user_id)
                .query(con)
                .map_err(SaleError::after_sending)?;
            Ok(Answer::Bought { remaining })
        }
    }
}

/// The tutorial's optimistic lock: WATCH the stock, check it and the buyer,
/// then MULTI/DECR/SADD/EXEC. Redis refuses the EXEC (nil) when anyone changed
/// the stock after our WATCH, so two buyers can never take the last item.
pub fn watch(con: &mut Connection, user_id: &str) -> Result<Answer, SaleError> {
    // Python: rpipe.watch('commodity:num')
    //         if int(rpipe.get('commodity:num')) < 1: ...
    //         elif rpipe.sismember('user:id', userid): ...
    // They go to Redis in one write, behind an UNWATCH: an early answer
    // below leaves its pooled connection watching, as the Python does, and a
    // stale WATCH must not abort this purchase's EXEC. Sending UNWATCH here
    // rather than with the early answer saves that answer a round trip.
    let (stock, bought): (Option<i64>, bool) = redis::pipe()
        .cmd("UNWATCH")
        .ignore()
        .cmd("WATCH")
        .arg(keys::STOCK)
        .ignore()
        .get(keys::STOCK)
        .sismember(keys::WINNERS, user_id)
        .query(con)?;
    match stock {
        None => return Err(SaleError::NoSale),
        Some(stock) if stock < 1 => return Ok(Answer::SoldOut),
        Some(_) if bought => return Ok(Answer::Repeat),
        Some(_) => {}
    }
    // Python: rpipe.multi(); rpipe.decr('commodity:num', amount=1);
    //         rpipe.sadd('user:id', userid); reslist = rpipe.execute()
    // MULTI, DECR, SADD and EXEC go in one write too.
    let exec: Option<(i64, i64)> = redis::pipe()
        .atomic()
        .decr(keys::STOCK, 1)
        .sadd(keys::WINNERS, user_id)
        .query(con)
        .map_err(SaleError::after_sending)?;
    Ok(match exec {
        Some((remaining, _added)) => Answer::Bought { remaining },
        None => Answer::Conflict,
    })
}

/// The tutorial's transaction, made again after each lost race, at most
/// `retries` more times. Every lost race means another buyer got an item,
/// so retrying makes progress and the stock sells out. The caller lets only
/// `RACERS_AT_ONCE` buyers in here at once.
pub fn watch_retry(
    con: &mut Connection,
    user_id: &str,
    retries: u32,
) -> Result<Outcome, SaleError> {
    let mut conflicts = 0;
    loop {
        let answer = watch(con, user_id)?;
        if answer == Answer::Conflict {
            conflicts += 1;
            if conflicts <= retries {
                continue;
            }
        }
        return Ok(Outcome { answer, conflicts });
    }
}

/// The script of `lua`, hashed once; the redis crate calls it by its SHA1
/// with EVALSHA and loads it again when Redis answers NOSCRIPT (a restart).
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("purchase.lua")));

/// Loads the script into Redis (SCRIPT LOAD), so purchases call it by SHA1.
pub fn load_script(con: &mut Connection) -> redis::RedisResult<()> {
    SCRIPT.load(con).map(drop)
}

/// The whole purchase as one Lua script that Redis runs without letting any
/// other command in: one round trip, no lock, no lost race.
pub fn lua(con: &mut Connection, user_id: &str) -> Result<Answer, SaleError> {
    let reply: Option<(i64, i64)> = SCRIPT
        .key(keys::STOCK)
        .key(keys::WINNERS)
        .arg(user_id)
        .invoke(con)
        .map_err(SaleError::after_sending)?;
    let (code, stock) = reply.ok_or(SaleError::NoSale)?;
    Answer::from_code(code, stock).ok_or_else(|| {
        let detail = format!("the purchase script answered {code}");
        SaleError::Redis(
            (
                redis::ErrorKind::UnexpectedReturnType,
                "unknown code",
                detail,
            )
                .into(),
        )
    })
}
