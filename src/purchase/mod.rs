//! A purchase: how it is made (`--strategy`), and what every purchase goes
//! through around the strategy's own commands (the opening, watch-retry's
//! turn to race, a connection of the pool, the replicas' confirmation) at
//! the `Checkout`. The four strategies themselves, the lesson, are side by
//! side in `strategies.rs`, and the fourth in `purchase.lua`. A new way to
//! buy is a variant of `Strategy`, a function in `strategies.rs`, and its
//! arm in `Checkout::make`: this folder and its tests, and, for a command
//! no other strategy runs, its line in `rights::needed` (checked at start).

pub mod strategies;

use std::sync::Arc;

use clap::ValueEnum;
use redis::Connection;

use crate::answer::{Answer, Outcome};
use crate::beyond::permits::Permits;
use crate::beyond::replicas::Replicas;
use crate::opening::{Opening, Schedule};
use crate::pool::{Pool, Redis};
use crate::rights;
use crate::sale::Sale;
use crate::trouble::Trouble;
use strategies::{Selling, lua, naive, watch, watch_retry};

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
    /// The name `--strategy` takes and `/seckill/stats` shows: clap's, made
    /// from the variant's.
    pub fn name(self) -> String {
        let value = self.to_possible_value();
        value.map_or_else(String::new, |value| value.get_name().to_string())
    }
}

/// The default of `--retries`: a lost race means another buyer bought, so
/// the bound is only what one request may cost (200 round trips).
pub const DEFAULT_RETRIES: u32 = 100;

/// How many watch-retry purchases race at once on one server; the other
/// buyers wait their turn. With all of `ab -c 100` racing, a purchase lost
/// two races on average and the unlucky many in a row.
pub const RACERS_AT_ONCE: usize = 4;

/// Where this server's purchases are made: its strategy, and what it
/// needs.
pub struct Checkout {
    pub strategy: Strategy,
    retries: u32,
    /// watch-retry's turns to race.
    racers: Arc<Permits>,
    replicas: Replicas,
    /// The sale this server sells: it buys from no other.
    sale: Selling,
    /// When the sale opens, if not at once.
    opening: Arc<Schedule>,
}

/// Gets Redis ready for `strategy`: the user's rights checked (with
/// `orders`, the stream's too), the Lua script loaded when it needs it, and
/// a warning when the master has fewer replicas than `replicas` asks for.
pub fn prepare(
    strategy: Strategy,
    replicas: Replicas,
    orders: bool,
    redis: &Redis,
    con: &mut Connection,
) -> Result<(), Box<dyn std::error::Error>> {
    let failed = |err| redis.failed(err);
    let watch = matches!(strategy, Strategy::Watch | Strategy::WatchRetry);
    if let Some(missing) =
        rights::missing(con, watch, orders, replicas.wanted > 0).map_err(failed)?
    {
        return Err(format!("Redis at {}: {missing}", redis.at).into());
    }
    if strategy == Strategy::Lua {
        strategies::load_script(con).map_err(failed)?;
    }
    Ok(replicas.warn_if_too_few(con).map_err(failed)?)
}

/// Whether the user of `con` may still run all that `strategy` needs: the
/// trouble of /readyz when an admin took a right away.
pub fn rights_kept(
    strategy: Strategy,
    orders: bool,
    replicas: Replicas,
    con: &mut Connection,
) -> Result<(), Trouble> {
    let watch = matches!(strategy, Strategy::Watch | Strategy::WatchRetry);
    match rights::missing(con, watch, orders, replicas.wanted > 0)? {
        Some(missing) => Err(Trouble::NoPermission(missing)),
        None => Ok(()),
    }
}

impl Checkout {
    /// Purchases for the sale `sale`, made the way of `strategy`.
    /// With `orders`, each sale adds its order to the stream in the same step.
    pub fn new(
        strategy: Strategy,
        retries: u32,
        replicas: Replicas,
        sale: &Sale,
        orders: bool,
    ) -> Checkout {
        Checkout {
            strategy,
            retries,
            racers: Permits::new(RACERS_AT_ONCE),
            replicas,
            sale: Selling {
                id: sale.id.clone(),
                seller: sale.seller.clone(),
                orders,
            },
            opening: Arc::clone(&sale.opening),
        }
    }

    /// Makes one purchase for `user_id`.
    pub fn buy(&self, pool: &Pool, user_id: &str) -> Result<Outcome, Trouble> {
        // Before the opening, nothing is asked of Redis (see `opening`).
        if let Some(wait) = self.opening.get().as_ref().and_then(Opening::wait) {
            let opens_in_ms = wait.as_millis() as u64;
            return Ok(Answer::NotOpen { opens_in_ms }.into());
        }
        // One wait for both turns: the buyer's, from its arrival (`--turn-wait`).
        let deadline = pool.deadline();
        // watch-retry takes a turn first, before a connection that would sit idle meanwhile.
        let racing = self.strategy == Strategy::WatchRetry;
        let _turn = racing
            .then(|| {
                let failing = || pool.failing();
                let turn = self.racers.acquire(deadline, failing);
                turn.map_err(|no| pool.no_turn(no))
            })
            .transpose()?;
        pool.run_by(deadline, |con| {
            self.make(con, user_id)
                .map_err(|trouble| trouble.no_sale_in(con))
        })
    }

    /// The purchase on `con`, the way of this server's strategy, confirmed
    /// by the replicas (`--replicas`).
    fn make(&self, con: &mut Connection, user_id: &str) -> Result<Outcome, Trouble> {
        let sale = &self.sale;
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
    }
}
