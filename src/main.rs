//! The seckill server, in the order of the Python script: connect to Redis,
//! set up the sale, open the pool, serve, and print the winners at the end.

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use redis::Connection;

use seckill::config::Config;
use seckill::handler::{self, App};
use seckill::output::{self, OUTPUT_WAIT, say, tell, warn};
use seckill::pool::{Pool, Redis, Trouble};
use seckill::purchase::{self, Purchase};
use seckill::report::Report;
use seckill::sale::{self, Ended, ReadError, Sale, Start, Tally, keys};
use seckill::seller::Renewal;
use seckill::server;

fn main() -> ExitCode {
    let config = Config::from_args();
    let code = run(&config).unwrap_or_else(|err| {
        warn(format!("seckill: {err}"));
        ExitCode::FAILURE
    });
    output::finish(OUTPUT_WAIT);
    code
}

fn run(config: &Config) -> Result<ExitCode, Box<dyn Error>> {
    // Python: pyredis = redis.Redis(host='', port=6379, db=0, decode_responses=True)
    let redis = Redis::open(&config.redis, &config.sentinel, &config.master)?;
    let mut con = redis.connect()?;
    if config.audit {
        return audit(&redis, &mut con);
    }
    // Unlike the Python, all the server needs comes before the sale is set
    // up: a start that fails (a port in use, a Redis full of clients)
    // leaves the sale in Redis as it was.
    let http = server::listen(&config.bind, config.http_limits())?;
    // Python: pool = redis.ConnectionPool(host='', port=6379, db=0)
    let pool = Pool::open(&redis, &mut con)?;
    let failed = |err| redis.failed(err);
    purchase::load_script(config.strategy, &mut con).map_err(failed)?;
    let replicas = config.replicas();
    replicas.warn_if_too_few(&mut con).map_err(failed)?;

    // Python: pyredis.set(name='commodity:num', value=500); pyredis.sadd('user:id', 'null')
    let seller = server::seller_name(http.addr());
    let sale = if config.join {
        join(&redis, &mut con, &seller)?
    } else {
        start(&redis, &mut con, config, &seller)?
    };

    drop(con); // the pool's connections serve from here on
    let app = Arc::new(App {
        pool,
        purchase: Purchase::new(config.strategy, config.retries, replicas, &sale.id),
        sale,
        replicas,
        suffix_max: config.suffix_max,
        report: Report::new(config.quiet),
    });
    let renewing = Arc::clone(&app);
    let renewal = Renewal::start(move || handler::renew_mark(&renewing))?;

    // Python: app.run(host='', port=5000), listening since the start
    let serving = Arc::clone(&app);
    let (addr, joined) = (http.addr(), if config.join { ", joined" } else { "" });
    say(format!(
        "seckill: listening on {addr}; open http://{addr}/seckill (strategy {}, Redis {}{joined}); \
         Ctrl-C stops and prints the winners",
        config.strategy.name(),
        redis.at
    ));
    http.serve(move |request| handler::handle(&serving, request))?;
    renewal.stop();

    // Python: print('Users whose campaign succeeded in killing merchandise:')
    //         print('Current Remaining Merchandise Number:%d' % ...)
    // On a pooled connection: a Redis at its maxclients would refuse a new one.
    let ended = app.pool.run(|con| {
        // A mark left behind would lapse in a few seconds anyway.
        let _ = sale::leave(con, &app.sale);
        sale::ended(con, &app.sale).map_err(Trouble::from)
    });
    let now = Instant::now();
    let print_winners = |winners: &[String]| {
        tell(format!("Winners ({}):", winners.len()), now);
        for winner in winners {
            tell(winner, now);
        }
    };
    match ended.map_err(|trouble| format!("cannot read the sale at its end: {trouble}"))? {
        Ended::Sold(tally, winners) => {
            print_winners(&winners);
            tell(&tally, now);
            tell(app.report.summary(), now);
            Ok(ExitCode::SUCCESS)
        }
        Ended::Uncounted(bad, winners) => {
            print_winners(&winners);
            tell(format!("verdict:       BAD STOCK: {bad}"), now);
            tell(app.report.summary(), now);
            Ok(ExitCode::FAILURE)
        }
        Ended::Replaced(by) => {
            let (ours, by) = (&app.sale.id, by.as_deref().unwrap_or("without an id"));
            warn(format!(
                "seckill: this server's sale ({ours}) was replaced in Redis by another ({by}, \
                 started with --replace): its winners are no longer there to print"
            ));
            tell(app.report.summary(), now);
            Ok(ExitCode::FAILURE)
        }
        Ended::Gone => Err(no_sale(&redis).into()),
    }
}

/// A fresh sale, unless other servers still sell the one in Redis.
fn start(
    redis: &Redis,
    con: &mut Connection,
    config: &Config,
    seller: &str,
) -> Result<Sale, Box<dyn Error>> {
    let started = sale::start(con, config.stock, seller, config.replace);
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

/// `--join`: the sale in Redis, to sell beside the servers selling it.
fn join(redis: &Redis, con: &mut Connection, seller: &str) -> Result<Sale, Box<dyn Error>> {
    let joined = sale::join(con, seller).map_err(|err| read_failed(redis, err))?;
    Ok(joined.ok_or_else(|| no_sale(redis))?)
}

/// `seckill --audit`: the sale's figures, for scripts after a load; exit
/// status 2 if it oversold, lost count or cannot be counted.
fn audit(redis: &Redis, con: &mut Connection) -> Result<ExitCode, Box<dyn Error>> {
    let tally = match Tally::read(con) {
        Err(ReadError::BadStock(bad)) => {
            tell(format!("verdict:       BAD STOCK: {bad}"), Instant::now());
            return Ok(ExitCode::from(2));
        }
        read => read.map_err(|err| read_failed(redis, err))?,
    };
    let tally = tally.ok_or_else(|| no_sale(redis))?;
    tell(&tally, Instant::now());
    Ok(ExitCode::from(if tally.verdict().went_wrong() {
        2
    } else {
        0
    }))
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
