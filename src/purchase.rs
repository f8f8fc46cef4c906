//! The purchase: the POST branch of the Python `fun_send`, four ways, each
//! one short function on one pooled connection. Read them in order: the
//! first oversells, the tutorial's second does not but leaves stock unsold,
//! the third sells out at the price of retries, the fourth in one step.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use clap::ValueEnum;
use redis::{Connection, Script};

use crate::answer::{Answer, Outcome};
use crate::beyond::permits::Permits;
use crate::beyond::replicas::Replicas;
use crate::opening::Opening;
use crate::pool::Pool;
use crate::sale::{Sale, keys, whole_number};
use crate::trouble::Trouble;

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
}

/// The default of `--retries`: a lost race means another buyer bought, so
/// the bound is only what one request may cost (200 round trips).
pub const DEFAULT_RETRIES: u32 = 100;

/// How many watch-retry purchases race at once on one server; the other
/// buyers wait their turn. With all of `ab -c 100` racing, a purchase lost
/// two races on average and the unlucky many in a row.
pub const RACERS_AT_ONCE: usize = 4;

/// How long a watch-retry buyer waits for a turn to race before 503 busy.
pub const TURN_WAIT: Duration = Duration::from_secs(1);

/// The strategy of this server, and what it needs.
pub struct Purchase {
    pub strategy: Strategy,
    retries: u32,
    /// watch-retry's turns to race.
    racers: Arc<Permits>,
    replicas: Replicas,
    /// The id of the sale this server sells: it buys from no other.
    sale: String,
    /// When the sale opens, if not at once.
    opening: Option<Opening>,
}

/// Gets Redis ready for `strategy`: the Lua script loaded when it needs
/// it, and a warning when the master has fewer replicas than `replicas`
/// asks for.
pub fn prepare(
    strategy: Strategy,
    replicas: Replicas,
    con: &mut Connection,
) -> redis::RedisResult<()> {
    if strategy == Strategy::Lua {
        SCRIPT.load(con)?;
    }
    replicas.warn_if_too_few(con)
}

impl Purchase {
    /// Purchases for the sale `sale`, made the way of `strategy`.
    pub fn new(strategy: Strategy, retries: u32, replicas: Replicas, sale: &Sale) -> Purchase {
        Purchase {
            strategy,
            retries,
            racers: Permits::new(RACERS_AT_ONCE),
            replicas,
            sale: sale.id.clone(),
            opening: sale.opening,
        }
    }

    /// Makes one purchase for `user_id`.
    pub fn buy(&self, pool: &Pool, user_id: &str) -> Result<Outcome, Trouble> {
        // Before the opening, nothing is asked of Redis (see `opening`).
        if let Some(wait) = self.opening.as_ref().and_then(Opening::wait) {
            let opens_in_ms = wait.as_millis() as u64;
            return Ok(Answer::NotOpen { opens_in_ms }.into());
        }
        // watch-retry takes a turn first, before a connection that would sit idle meanwhile.
        let racing = self.strategy == Strategy::WatchRetry;
        let _turn = racing
            .then(|| {
                self.racers
                    .acquire(TURN_WAIT)
                    .ok_or(Trouble::Busy(TURN_WAIT))
            })
            .transpose()?;
        let sale = self.sale.as_str();
        pool.run(|con| {
            let outcome = match self.strategy {
                Strategy::Naive => naive(con, sale, user_id)?.into(),
                Strategy::Watch => watch(con, sale, user_id)?.into(),
                Strategy::WatchRetry => watch_retry(con, sale, user_id, self.retries)?,
                Strategy::Lua => lua(con, sale, user_id)?.into(),
            };
            if matches!(outcome.answer, Answer::Bought { .. }) {
                self.replicas.confirm(con)?;
            }
            Ok(outcome)
        })
    }
}

/// The stock of the sale `sale`, from what a strategy read of it: no stock
/// is no sale, another sale's id means ours was replaced, and a stock must
/// be a whole number for DECR to take one from it.
pub fn stock_of(sale: &str, id: Option<String>, stock: Option<String>) -> Result<i64, Trouble> {
    let stock = stock.ok_or(Trouble::NoSale)?;
    if id.as_deref() != Some(sale) {
        return Err(Trouble::Replaced);
    }
    Ok(whole_number(keys::STOCK, &stock)?)
}

/// What the tutorial warns against: read the stock, and if some is left,
/// take one. Between the GET and the DECR other buyers read the same stock,
/// so the last item is sold many times over (and another server's fresh
/// sale could come in between too: naive is the broken one).
pub fn naive(con: &mut Connection, sale: &str, user_id: &str) -> Result<Answer, Trouble> {
    let ((id, stock), bought): ((Option<String>, Option<String>), bool) = redis::pipe()
        .mget(&[keys::SALE_ID, keys::STOCK])
        .sismember(keys::WINNERS, user_id)
        .query(con)?;
    if stock_of(sale, id, stock)? < 1 {
        return Ok(Answer::SoldOut);
    }
    if bought {
        return Ok(Answer::Repeat);
    }
    // The buyer is added only after a DECR that worked: a DECR Redis refuses
    // (the stock set to 7.5 meanwhile) must add no winner.
    let remaining: i64 = redis::cmd("DECR")
        .arg(keys::STOCK)
        .query(con)
        .map_err(Trouble::after_sending)?;
    redis::cmd("SADD")
        .arg(keys::WINNERS)
        .arg(user_id)
        .exec(con)
        .map_err(Trouble::after_sending)?;
    Ok(Answer::Bought { remaining })
}

/// The tutorial's optimistic lock: WATCH the stock, check it and the buyer,
/// then MULTI/DECR/SADD/EXEC. Redis refuses the EXEC (nil) when anyone changed
/// the stock after our WATCH, so two buyers can never take the last item.
pub fn watch(con: &mut Connection, sale: &str, user_id: &str) -> Result<Answer, Trouble> {
    // Python: rpipe.watch('commodity:num')
    //         if int(rpipe.get('commodity:num')) < 1: ...
    //         elif rpipe.sismember('user:id', userid): ...
    // In one write, behind an UNWATCH: an early answer below leaves its
    // pooled connection watching, as the Python does, and a stale WATCH must
    // not abort this purchase's EXEC. The sale's id is watched too: a fresh
    // sale started meanwhile aborts the EXEC.
    let ((id, stock), bought): ((Option<String>, Option<String>), bool) = redis::pipe()
        .cmd("UNWATCH")
        .ignore()
        .cmd("WATCH")
        .arg(keys::STOCK)
        .arg(keys::SALE_ID)
        .ignore()
        .mget(&[keys::SALE_ID, keys::STOCK])
        .sismember(keys::WINNERS, user_id)
        .query(con)?;
    if stock_of(sale, id, stock)? < 1 {
        return Ok(Answer::SoldOut);
    }
    if bought {
        return Ok(Answer::Repeat);
    }
    // Python: rpipe.multi(); rpipe.decr('commodity:num', amount=1);
    //         rpipe.sadd('user:id', userid); reslist = rpipe.execute()
    let exec: Option<(i64, i64)> = redis::pipe()
        .atomic()
        .decr(keys::STOCK, 1)
        .sadd(keys::WINNERS, user_id)
        .query(con)
        .map_err(Trouble::after_sending)?;
    Ok(match exec {
        Some((remaining, _added)) => Answer::Bought { remaining },
        None => Answer::Conflict,
    })
}

/// The tutorial's transaction, made again after each lost race, at most
/// `retries` more times. Every lost race means another buyer got an item,
/// so retrying makes progress and the stock sells out.
pub fn watch_retry(
    con: &mut Connection,
    sale: &str,
    user_id: &str,
    retries: u32,
) -> Result<Outcome, Trouble> {
    let mut conflicts = 0;
    loop {
        let answer = watch(con, sale, user_id)?;
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

/// The whole purchase as one Lua script that Redis runs without letting any
/// other command in: one round trip, no lock, no lost race.
pub fn lua(con: &mut Connection, sale: &str, user_id: &str) -> Result<Answer, Trouble> {
    let reply: Option<Vec<i64>> = SCRIPT
        .key(keys::STOCK)
        .key(keys::WINNERS)
        .key(keys::SALE_ID)
        .arg(user_id)
        .arg(sale)
        .invoke(con)
        .map_err(Trouble::after_sending)?;
    match reply.ok_or(Trouble::NoSale)?.as_slice() {
        [1, remaining] => Ok(Answer::Bought {
            remaining: *remaining,
        }),
        [-1] => Ok(Answer::SoldOut),
        [-2] => Ok(Answer::Repeat),
        other => Err(Trouble::Redis(format!(
            "the purchase script answered {other:?}"
        ))),
    }
}
