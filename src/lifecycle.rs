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

use crate::beyond::output::{print, print_report, warn};
use crate::beyond::replicas::Replicas;
use crate::handler::App;
use crate::opening::{Opening, Opens};
use crate::orders::database::Database;
use crate::orders::{Writer, stream};
use crate::pool::Redis;
use crate::sale::{self, Ended, ReadError, Sale, Start, Tally, keys};
use crate::trouble::Trouble;

/// How to begin: `--join`, else a fresh sale of `stock` (`--stock`),
/// open at `opens` (`--opens-in`, `--opens-at`), that replaces one others
/// still sell only with `replace` (`--replace`).
pub struct Begin {
    pub join: bool,
    pub stock: u32,
    pub opens: Opens,
    pub replace: bool,
    /// Whether each sale adds its order to the stream (`--orders`).
    pub orders: bool,
}

/// The sale this server sells, under the name `seller`.
/// Python: pyredis.set(name='commodity:num', value=500); pyredis.sadd('user:id', 'null')
pub fn open(
    redis: &Redis,
    con: &mut Connection,
    begin: &Begin,
    seller: &str,
) -> Result<Sale, Box<dyn Error>> {
    if begin.orders {
        stream::check_key(con)?;
    }
    let sale = open_or_join(redis, con, begin, seller)?;
    if let Some(wait) = sale.opening.as_ref().and_then(Opening::wait) {
        let at = sale
            .opening
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
) -> Result<Sale, Box<dyn Error>> {
    if begin.join {
        let joined = sale::join(con, seller).map_err(|err| read_failed(redis, err))?;
        return Ok(joined.ok_or_else(|| no_sale(redis))?);
    }
    let started = sale::start(con, begin.stock, begin.opens, seller, begin.replace);
    match started.map_err(|err| redis.failed(err))? {
        Start::Started { sale, replaced } => {
            // The tutorial starts afresh each time; say what that replaced.
            if let Some(replaced) = replaced {
                warn(format!(
                    "seckill: replaced the sale in Redis ({replaced}); --join serves the sale \
                     in Redis instead"
                ));
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
        for winner in winners {
            print_report(winner, now);
        }
    };
    let code =
        match ended.map_err(|trouble| format!("cannot read the sale at its end: {trouble}"))? {
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
                warn(format!(
                    "seckill: this server's sale ({ours}) was replaced in Redis by another ({by}, \
                 started with --replace): its winners are no longer there to print"
                ));
                ExitCode::FAILURE
            }
            Ended::Gone => return Err(no_sale(redis)),
        };
    if let Some(database) = &app.orders {
        let winners = app.pool.run(|con| Ok(winners_count(con)?)).ok();
        print_report(
            orders_line(database.count_now(&sale.id), winners, drained),
            now,
        );
    }
    print_report(report.summary(), now);
    Ok(code)
}

/// "orders: 500 written for 500 winners", and what is left, if anything.
fn orders_line(
    written: Result<u64, String>,
    winners: Option<usize>,
    drained: Option<bool>,
) -> String {
    let winners = winners.map_or("?".to_string(), |n| n.to_string());
    let left = if drained == Some(false) {
        format!(
            "; the rest wait in the stream ({}) for the next writer",
            keys::ORDERS
        )
    } else {
        String::new()
    };
    match written {
        Ok(written) => format!("orders:        {written} written for {winners} winners{left}"),
        Err(err) => format!("orders:        cannot count them in the database ({err}){left}"),
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

/// The winners in Redis, the placeholder left out.
fn winners_of(con: &mut Connection) -> redis::RedisResult<HashSet<String>> {
    let mut winners: HashSet<String> = con.smembers(keys::WINNERS)?;
    winners.remove(keys::PLACEHOLDER);
    Ok(winners)
}

/// `seckill --audit`: the sale's figures, and its orders against its
/// winners, for scripts after a load; exit status 2 if it oversold, lost
/// count, cannot be counted, or (the stream drained) its orders and its
/// winners differ.
pub fn audit(
    redis: &Redis,
    con: &mut Connection,
    orders: Option<&Database>,
) -> Result<ExitCode, Box<dyn Error>> {
    let now = Instant::now();
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
    if let Some(database) = orders {
        let failed = |err| redis.failed(err);
        let sale: Option<String> = con.get(keys::SALE_ID).map_err(failed)?;
        let winners = winners_of(con).map_err(failed)?;
        let waiting = stream::waiting(con).map_err(failed)?.count;
        let buyers: HashSet<String> = database
            .buyers(sale.as_deref().unwrap_or(""))
            .map_err(|err| format!("--orders: cannot read the orders: {err}"))?
            .into_iter()
            .collect();
        print_report(
            format!(
                "orders:        {} written for {} winners; {waiting} waiting in the stream",
                buyers.len(),
                winners.len()
            ),
            now,
        );
        let unordered: Vec<&String> = winners.difference(&buyers).collect();
        let unwon: Vec<&String> = buyers.difference(&winners).collect();
        if waiting == 0 && !(unordered.is_empty() && unwon.is_empty()) {
            let few = |ids: &[&String]| {
                ids.iter()
                    .take(IDS_SHOWN)
                    .map(|id| id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            print_report(
                format!(
                    "orders:        MISMATCH: {} winners without an order ({}), {} orders without a winner ({})",
                    unordered.len(),
                    few(&unordered),
                    unwon.len(),
                    few(&unwon)
                ),
                now,
            );
            wrong = true;
        }
    }
    Ok(ExitCode::from(if wrong { 2 } else { 0 }))
}

/// `seckill orders`: the order writer alone, until Ctrl-C or SIGTERM.
pub fn write_orders(
    redis: &Redis,
    orders: Option<Arc<Database>>,
    replicas: Replicas,
) -> Result<ExitCode, Box<dyn Error>> {
    let database = orders.ok_or(
        "seckill orders writes into a database: give --orders sqlite:PATH or postgres://...",
    )?;
    let name = format!("orders writer, pid {}", std::process::id());
    let (stopped, stop) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stopped.send(());
    })
    .map_err(|err| format!("cannot catch Ctrl-C: {err}"))?;
    let writer = Writer::start(redis.clone(), database, name, replicas)?;
    print(format!(
        "seckill orders: writing the orders of {} at {} into the database; Ctrl-C stops",
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
