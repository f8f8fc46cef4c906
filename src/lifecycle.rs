//! A sale's beginning and end as the server tells them: a fresh sale or
//! one joined (`--join`), the audit (`--audit`), and the winners printed when
//! the server stops. Python: the `pyredis.set(...)` before `app.run`, and the
//! prints after it.

use std::collections::HashSet;
use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Commands, Connection};

use crate::beyond::deadline::within;
use crate::beyond::output::{print, print_report, span};
use crate::beyond::replicas::Replicas;
use crate::handler::App;
use crate::keys;
use crate::opening::Opening;
use crate::orders::database::{self, DEFAULT_ORDERS};
use crate::orders::stream;
use crate::orders::{Database, Location, Writer, Written};
use crate::pool::Redis;
use crate::sale::{self, Begin, Ended, ReadError, Sale, Start, Tally};
use crate::seller;
use crate::trouble::{self, Trouble};

/// The database of the orders of this run's sale: for a fresh sale, the
/// one `given` (`--orders`) or the default; for a run that `joins` the sale
/// in Redis, the one the sale records, and another is refused. None when
/// orders are off.
pub fn orders(
    redis: &Redis,
    con: &mut Connection,
    given: Option<&str>,
    joins: bool,
) -> Result<Option<Arc<Database>>, Box<dyn Error>> {
    let recorded: Option<String> = con
        .get(keys::ORDERS_DATABASE)
        .map_err(|err| redis.failed(err))?;
    let url = database::choose(recorded.as_deref(), given, joins)?;
    Ok(Database::open(&url)?.map(Arc::new))
}

/// The sale this server sells, under the name `seller`, its orders going
/// to `orders` (recorded with a fresh sale).
/// Python: pyredis.set(name='commodity:num', value=500); pyredis.sadd('user:id', 'null')
pub fn open(
    redis: &Redis,
    con: &mut Connection,
    begin: &Begin,
    seller: &str,
    orders: &Location,
) -> Result<Sale, Box<dyn Error>> {
    if *orders != Location::Off {
        stream::check_key(con)?;
    }
    check_eviction(redis, con, begin.allow_eviction)?;
    let sale = open_or_join(redis, con, begin, seller, orders)?;
    let opening = sale.opening.get();
    if let Some(wait) = opening.as_ref().and_then(Opening::wait) {
        let at = opening
            .as_ref()
            .map(Opening::to_rfc3339)
            .unwrap_or_default();
        print(format!(
            "seckill: the sale opens at {at}, in {:.1} s; until then a purchase answers -4 \
             (not open yet) and buys nothing",
            wait.as_secs_f64()
        ));
    }
    Ok(sale)
}

fn open_or_join(
    redis: &Redis,
    con: &mut Connection,
    begin: &Begin,
    seller: &str,
    orders: &Location,
) -> Result<Sale, Box<dyn Error>> {
    let orders = orders.to_string();
    if begin.join {
        let joined = sale::join(con, seller, &orders).map_err(|err| read_failed(redis, err))?;
        return Ok(joined.ok_or_else(|| no_sale(redis))?);
    }
    let start = sale::Fresh {
        stock: begin.stock,
        opens: begin.opens,
        replace: begin.replace,
        orders: &orders,
        mark_lasts: seller::MARK_LASTS,
        mark_every: seller::MARK_EVERY,
    };
    let started = sale::start(con, &start, seller);
    match started.map_err(|err| redis.failed(err))? {
        Start::Started { sale, replaced } => {
            // The tutorial starts afresh each time; say what that replaced.
            if let Some(replaced) = replaced {
                tracing::warn!(
                    "replaced the sale in Redis ({replaced}); --join serves the sale \
                     in Redis instead"
                );
            }
            Ok(sale)
        }
        Start::OthersSell(others) => {
            let names: Vec<_> = others.iter().map(|(name, _)| name.as_str()).collect();
            Err(format!(
                "other seckills sell the sale in Redis at {} ({}): start this one with --join \
                 to sell the same sale, stop the others first for a fresh one, or give \
                 --replace to start a fresh one anyway (the others then answer 503 replaced)",
                redis.at,
                names.join("; ")
            )
            .into())
        }
    }
}

/// How many ids of a mismatch the audit names.
const IDS_SHOWN: usize = 5;

/// How long the stop waits for the order writer to write what waits in
/// the stream; what is left is written by the next writer.
pub const ORDERS_WAIT: Duration = Duration::from_secs(5);

/// The end of the sale, printed when the server stops: its winners, its
/// figures, its orders (`drained`: whether the writer wrote all that
/// waited) and this server's counters; failure if it cannot be counted or
/// was replaced.
/// Python: print('Users whose campaign succeeded in killing merchandise:')
///         print('Current Remaining Merchandise Number:%d' % ...)
pub fn end(redis: &Redis, app: &App, drained: Option<bool>) -> Result<ExitCode, String> {
    let (sale, report) = (&app.sale, &app.report);
    // On a pooled connection: a Redis at its maxclients would refuse a new one.
    let ended = app.pool.run(|con| {
        // A mark left behind would lapse in a few seconds anyway.
        let _ = sale::leave(con, sale);
        sale::ended(con, sale).map_err(Trouble::from)
    });
    let now = Instant::now();
    let print_winners = |winners: &[String]| {
        print_report(format!("Winners ({}):", winners.len()), now);
        // A page of names, a line each, at a time: a big sale's millions
        // of names reach stdout within the report's wait.
        for page in winners.chunks(WINNERS_A_WRITE) {
            print_report(page.join("\n"), now);
        }
    };
    let code = match ended.map_err(|trouble| {
        format!(
            "the sale cannot be read at its end, so no winners are printed: {}; once Redis \
             answers again (started with its data), `seckill --audit` prints the sale's \
             figures, and `redis-cli smembers {}` its winners",
            trouble.what_happened(),
            keys::WINNERS
        )
    })? {
        Ended::Sold(tally, winners) => {
            print_winners(&winners);
            print_report(&tally, now);
            ExitCode::SUCCESS
        }
        Ended::Uncounted(bad, winners) => {
            print_winners(&winners);
            print_report(format!("verdict:       BAD STOCK: {bad}"), now);
            ExitCode::FAILURE
        }
        Ended::Replaced(by) => {
            let (ours, by) = (&sale.id, by.as_deref().unwrap_or("without an id"));
            tracing::warn!(
                "this server's sale ({ours}) was replaced in Redis by another ({by}, \
                 started with --replace): its winners are no longer there to print"
            );
            ExitCode::FAILURE
        }
        Ended::Gone => return Err(no_sale(redis)),
    };
    if let Some(written) = &app.written {
        let winners = app.pool.run(|con| Ok(winners_count(con)?)).ok();
        print_report(orders_line(written, winners, drained), now);
    }
    print_report(report.summary(), now);
    Ok(code)
}

/// Winners printed in one write at the end.
const WINNERS_A_WRITE: usize = 1000;

/// "orders: 500 written for 500 winners", and what is left, if anything.
fn orders_line(written: &Written, winners: Option<usize>, drained: Option<bool>) -> String {
    let winners = winners.map_or("?".to_string(), |n| n.to_string());
    let left = if drained == Some(false) {
        format!(
            "; the rest wait in the stream ({}) for the next writer",
            keys::ORDERS
        )
    } else {
        String::new()
    };
    match written.read() {
        // Counted once the last batch was in.
        Some((count, _)) if drained == Some(true) => {
            format!("orders:        {count} written for {winners} winners{left}")
        }
        Some((count, age)) => format!(
            "orders:        {count} written for {winners} winners, as counted {} ago{left}",
            span(Duration::from_secs(age.as_secs()))
        ),
        None => format!("orders:        the database could not count them{left}"),
    }
}

/// How many winners Redis holds, the placeholder left out.
fn winners_count(con: &mut Connection) -> redis::RedisResult<usize> {
    let (members, placeholder): (usize, bool) = redis::pipe()
        .scard(keys::WINNERS)
        .sismember(keys::WINNERS, keys::PLACEHOLDER)
        .query(con)?;
    Ok(members - usize::from(placeholder))
}

/// How long the audit waits for the database's answer.
const AUDIT_WAIT: Duration = Duration::from_secs(30);

/// `seckill --audit`: the sale's figures, and its orders against its
/// winners, for scripts after a load or during one; exit status 2 if it
/// oversold, lost count, cannot be counted, or its orders and its winners
/// differ. The orders are read from the database the sale records, unless
/// `given` (`--orders`).
pub fn audit(
    redis: &Redis,
    con: &mut Connection,
    given: Option<&str>,
) -> Result<ExitCode, Box<dyn Error>> {
    let now = Instant::now();
    let failed = |err| redis.failed(err);
    let tally = match Tally::read(con) {
        Err(ReadError::BadStock(bad)) => {
            print_report(format!("verdict:       BAD STOCK: {bad}"), now);
            return Ok(ExitCode::from(2));
        }
        read => read.map_err(|err| read_failed(redis, err))?,
    };
    let tally = tally.ok_or_else(|| no_sale(redis))?;
    print_report(&tally, now);
    let mut wrong = tally.verdict().went_wrong();
    let recorded: Option<String> = con.get(keys::ORDERS_DATABASE).map_err(failed)?;
    let url = given
        .or(recorded.as_deref())
        .unwrap_or(DEFAULT_ORDERS)
        .to_string();
    // The bare tutorial (--orders off) has no orders to audit.
    let Some(database) = Database::open(&url)? else {
        return Ok(ExitCode::from(if wrong { 2 } else { 0 }));
    };
    let location = database.location.to_string();
    if let Some(recorded) = recorded.filter(|recorded| *recorded != location) {
        print_report(
            format!(
                "orders:        the sale keeps its orders at {recorded}; read {location} as asked"
            ),
            now,
        );
    }
    let sale: Option<String> = con.get(keys::SALE_ID).map_err(failed)?;
    let sale = sale.unwrap_or_default();
    // One instant by Redis's clock: a sale after it is no orphan, whatever
    // the database holds by the time it is read.
    let (at, waiting): ((u64, u64), u64) = redis::pipe()
        .atomic()
        .cmd("TIME")
        .xlen(keys::ORDERS)
        .query(con)
        .map_err(failed)?;
    let at_ms = at.0 * 1000 + at.1 / 1000;
    let winners: HashSet<String> = sale::winners(con).map_err(failed)?.into_iter().collect();
    // Read after the winners: an order is in the stream, or (written, then
    // taken off the stream) in the database, from its sale on.
    let in_stream: HashSet<String> = stream::waiting_buyers(con)
        .map_err(failed)?
        .into_iter()
        .collect();
    let read = within(AUDIT_WAIT, move || database.buyers(&sale))
        .ok_or_else(|| format!("{location}: no answer within {}", span(AUDIT_WAIT)))?;
    let buyers = read.map_err(|err| format!("{location}: cannot read the orders: {err}"))?;
    let ordered: HashSet<&String> = buyers.iter().map(|(user, _)| user).collect();
    print_report(
        format!(
            "orders:        {} written for {} winners; {waiting} waiting in the stream \
             (database: {location})",
            ordered.len(),
            winners.len()
        ),
        now,
    );
    let unordered: Vec<&String> = winners
        .iter()
        .filter(|w| !ordered.contains(w) && !in_stream.contains(*w))
        .collect();
    let unwon: Vec<&String> = buyers
        .iter()
        .filter(|(user, entry)| {
            let before = stream::entry_ms(entry).is_some_and(|ms| ms < at_ms);
            before && !winners.contains(user)
        })
        .map(|(user, _)| user)
        .collect();
    if !(unordered.is_empty() && unwon.is_empty()) {
        let few = |ids: &[&String]| {
            ids.iter()
                .take(IDS_SHOWN)
                .map(|id| id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        print_report(
            format!(
                "orders:        MISMATCH: {} winners without an order ({}), {} orders without a \
                 winner ({}); if the sale's orders went elsewhere, give that database with --orders",
                unordered.len(),
                few(&unordered),
                unwon.len(),
                few(&unwon)
            ),
            now,
        );
        wrong = true;
    }
    Ok(ExitCode::from(if wrong { 2 } else { 0 }))
}

/// `seckill orders`: the order writer alone, until Ctrl-C or SIGTERM,
/// into the database the sale records (or `given`, if it is the same).
pub fn write_orders(
    redis: &Redis,
    con: &mut Connection,
    given: Option<&str>,
    replicas: Replicas,
) -> Result<ExitCode, Box<dyn Error>> {
    let database = orders(redis, con, given, true)?.ok_or(
        "the sale in Redis keeps no orders (--orders off), so seckill orders has nothing to \
         write: start the sale with --orders sqlite:PATH or postgres://...",
    )?;
    let location = database.location.to_string();
    let name = format!("orders writer, pid {}", std::process::id());
    let (stopped, stop) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stopped.send(());
    })
    .map_err(|err| format!("cannot catch Ctrl-C: {err}"))?;
    let writer = Writer::start(redis.clone(), database, name, replicas, None)?;
    print(format!(
        "seckill orders: writing the orders of {} at {} into {location}; Ctrl-C stops",
        keys::ORDERS,
        redis.at
    ));
    let _ = stop.recv();
    let drained = writer.finish(ORDERS_WAIT);
    let left = if drained {
        "all written"
    } else {
        "some left in the stream for the next writer"
    };
    print_report(format!("seckill orders: stopped, {left}"), Instant::now());
    Ok(ExitCode::SUCCESS)
}

/// Refuses a Redis whose `maxmemory-policy` evicts any key (`allkeys-*`)
/// under memory pressure: it could drop the stock, the winners or the
/// orders waiting. With `allow`, says so and goes on.
fn check_eviction(redis: &Redis, con: &mut Connection, allow: bool) -> Result<(), String> {
    let Some((_, policy)) = trouble::evictions(con) else {
        return Ok(());
    };
    if !policy.starts_with("allkeys-") {
        return Ok(());
    }
    let what = format!(
        "Redis at {} may evict any key under memory pressure (maxmemory-policy {policy}): the \
         stock, the winners or the orders waiting could vanish",
        redis.at
    );
    if allow {
        tracing::warn!("{what}; selling anyway, as --allow-eviction asks");
        return Ok(());
    }
    Err(format!(
        "{what}. Set noeviction (redis-cli config set maxmemory-policy noeviction), so that a \
         full Redis refuses writes instead, or give --allow-eviction to sell anyway"
    ))
}

/// A sale that could not be read: Redis failed, or holds a figure it
/// cannot count with.
fn read_failed(redis: &Redis, err: ReadError) -> Box<dyn Error> {
    match err {
        ReadError::Redis(err) => redis.failed(err).into(),
        ReadError::BadStock(bad) => format!("the sale in Redis at {}: {bad}", redis.at).into(),
    }
}

/// What a Redis without a sale lacks, and what to do.
fn no_sale(redis: &Redis) -> String {
    let (at, stock, initial) = (&redis.at, keys::STOCK, keys::INITIAL_STOCK);
    format!(
        "no sale in Redis at {at}: {stock} or {initial} is missing. Start a seckill without \
         --join to set one up; if a failover promoted a replica that had not synced, the sale \
         is lost (docs/scaling.md)"
    )
}
