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
use seckill::report::{self, Log, OUTPUT_WAIT, Stats, say, tell, warn};
use seckill::sale::{self, Tally};
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
        // The tutorial starts afresh each time; say what that replaces.
        if let Some(old) = Tally::read(&mut con).map_err(|err| redis.failed(err))? {
            let Tally {
                winners,
                remaining,
                initial,
            } = old;
            warn(format!(
                "seckill: replacing the sale in Redis (winners {winners}, left {remaining} of \
                 {initial}); --join serves the sale in Redis instead"
            ));
        }
        // Python: pyredis.set(name='commodity:num', value=500); pyredis.sadd('user:id', 'null')
        sale::start(&mut con, config.stock).map_err(|err| redis.failed(err))?;
    }
    if config.replicas > 0 {
        let connected = purchase::connected_replicas(&mut con).map_err(|err| redis.failed(err))?;
        if connected < config.replicas {
            warn(format!(
                "seckill: --replicas {} but Redis has {connected} replicas connected: every sale \
                 will be answered 503 unreplicated until enough are",
                config.replicas
            ));
        }
    }
    let purchase = Purchase::new(config, &mut con);
    let purchase = purchase.map_err(|err| redis.failed(err))?;

    // Python: pool = redis.ConnectionPool(host='', port=6379, db=0)
    let pool = Pool::open(&redis)?;
    let (log, stats, suffix_max) = (Log::new(config.quiet), Stats::default(), config.suffix_max);
    let app = Arc::new(App {
        pool,
        purchase,
        suffix_max,
        stats,
        log,
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
    let report = sale::report(&mut con).map_err(|err| redis.failed(err))?;
    let (tally, winners) = report.ok_or_else(|| no_sale(&redis, &mut con))?;
    let now = Instant::now();
    tell(format!("Winners ({}):", winners.len()), now);
    for winner in &winners {
        tell(winner, now);
    }
    tell(&tally, now);
    tell(app.stats.summary(), now);
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
    match Tally::read(con).map_err(|err| redis.failed(err))? {
        Some(tally) => Ok(tally),
        None => Err(no_sale(redis, con).into()),
    }
}

/// What a Redis without a sale lacks, and what to do.
fn no_sale(redis: &Redis, con: &mut Connection) -> String {
    let at = &redis.at;
    let missing = sale::missing(con).unwrap_or_else(|err| format!("({err})"));
    format!(
        "no sale in Redis at {at}: {missing}. Start a seckill without --join to set one up; \
         if a failover promoted a replica that had not synced, the sale is lost (docs/scaling.md)"
    )
}
