//! The seckill server, in the order of the Python script: connect to Redis,
//! set up the sale, open the pool, serve, and print the winners at the end.

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use redis::Connection;

use seckill::config::Config;
use seckill::handler::{self, App};
use seckill::pool::{Pool, Redis};
use seckill::purchase::{self, Purchase};
use seckill::report::{self, OUTPUT_WAIT, Report, say, tell, warn};
use seckill::sale::{self, Tally, keys};
use seckill::server;

fn main() -> ExitCode {
    let config = Config::from_args();
    let code = run(&config).unwrap_or_else(|err| {
        warn(format!("seckill: {err}"));
        ExitCode::FAILURE
    });
    report::finish(OUTPUT_WAIT);
    code
}

fn run(config: &Config) -> Result<ExitCode, Box<dyn Error>> {
    // Python: pyredis = redis.Redis(host='', port=6379, db=0, decode_responses=True)
    let redis = Redis::open(&config.redis, &config.sentinel, &config.master)?;
    let mut con = redis.connect()?;
    if config.audit {
        return audit(&redis, &mut con);
    }
    // Listen before anything changes in Redis: a second seckill started on
    // a port in use stops here, and the sale it would have reset goes on.
    let http = server::listen(config)?;
    if config.join {
        read_tally(&redis, &mut con)?;
    } else {
        // Python: pyredis.set(name='commodity:num', value=500); pyredis.sadd('user:id', 'null')
        let replaced = sale::start(&mut con, config.stock).map_err(|err| redis.failed(err))?;
        // The tutorial starts afresh each time; say what that replaced.
        if let Some(Tally {
            winners,
            remaining,
            initial,
        }) = replaced
        {
            warn(format!(
                "seckill: replaced the sale in Redis (winners {winners}, left {remaining} of \
                 {initial}); --join serves the sale in Redis instead"
            ));
        }
    }
    purchase::warn_if_too_few_replicas(config.replicas, &mut con)
        .map_err(|err| redis.failed(err))?;
    let purchase = Purchase::new(config, &mut con).map_err(|err| redis.failed(err))?;

    // Python: pool = redis.ConnectionPool(host='', port=6379, db=0)
    let pool = Pool::open(&redis)?;
    let (suffix_max, report) = (config.suffix_max, Report::new(config.quiet));
    let app = Arc::new(App {
        pool,
        purchase,
        suffix_max,
        report,
    });

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

    // Python: print('Users whose campaign succeeded in killing merchandise:')
    //         print('Current Remaining Merchandise Number:%d' % ...)
    let mut con = redis.connect()?;
    let ended = sale::report(&mut con).map_err(|err| redis.failed(err))?;
    let (tally, winners) = ended.ok_or_else(|| no_sale(&redis))?;
    let now = Instant::now();
    tell(format!("Winners ({}):", winners.len()), now);
    for winner in &winners {
        tell(winner, now);
    }
    tell(&tally, now);
    tell(app.report.summary(), now);
    Ok(ExitCode::SUCCESS)
}

/// `seckill --audit`: the sale's figures, for scripts after a load; exit
/// status 2 if it oversold or lost count.
fn audit(redis: &Redis, con: &mut Connection) -> Result<ExitCode, Box<dyn Error>> {
    let tally = read_tally(redis, con)?;
    tell(&tally, Instant::now());
    Ok(ExitCode::from(if tally.verdict().went_wrong() {
        2
    } else {
        0
    }))
}

fn read_tally(redis: &Redis, con: &mut Connection) -> Result<Tally, Box<dyn Error>> {
    let tally = Tally::read(con).map_err(|err| redis.failed(err))?;
    tally.ok_or_else(|| no_sale(redis).into())
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
