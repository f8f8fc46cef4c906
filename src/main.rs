//! The seckill server, in the order of the Python script: connect to Redis,
//! set up the sale, open the pool, serve, and print the winners at the end.

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;

use redis::Connection;

use seckill::config::Config;
use seckill::handler::{self, App};
use seckill::pool::{Pool, Redis};
use seckill::purchase::Purchase;
use seckill::report::{Log, Stats, say, warn};
use seckill::sale::{self, Tally};
use seckill::server;

fn main() -> ExitCode {
    let config = Config::from_args();
    run(&config).unwrap_or_else(|err| {
        warn(format!("seckill: {err}"));
        ExitCode::FAILURE
    })
}

fn run(config: &Config) -> Result<ExitCode, Box<dyn Error>> {
    // Python: pyredis = redis.Redis(host='', port=6379, db=0, decode_responses=True)
    let redis = Redis::open(&config.redis, &config.sentinel, &config.master)?;
    let mut con = redis.connect()?;
    if config.audit {
        return audit(&redis, &mut con);
    }
    if config.join {
        read_tally(&redis, &mut con)?;
    } else {
        // Python: pyredis.set(name='commodity:num', value=500); pyredis.sadd('user:id', 'null')
        sale::start(&mut con, config.stock).map_err(|err| redis.failed(err))?;
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

    // Python: app.run(host='', port=5000)
    let serving = Arc::clone(&app);
    let joined = if config.join { ", joined" } else { "" };
    server::run(
        config,
        move |request| handler::handle(&serving, request),
        |addr| {
            say(format!(
                "seckill: listening on {addr}; open http://{addr}/seckill (strategy {}, Redis {}{joined}); \
             Ctrl-C stops and prints the winners",
                config.strategy.name(),
                redis.at
            ));
        },
    )?;

    // Python: print('Users whose campaign succeeded in killing merchandise:')
    //         print('Current Remaining Merchandise Number:%d' % ...)
    let report = sale::report(&mut redis.connect()?).map_err(|err| redis.failed(err))?;
    let (tally, winners) = report.ok_or_else(|| no_sale(&redis))?;
    say(format!("Winners ({}):", winners.len()));
    for winner in &winners {
        say(winner);
    }
    say(&tally);
    say(app.stats.summary());
    Ok(ExitCode::SUCCESS)
}

/// `seckill --audit`: the sale's figures, for scripts after a load; exit
/// status 2 if it oversold or lost count.
fn audit(redis: &Redis, con: &mut Connection) -> Result<ExitCode, Box<dyn Error>> {
    let tally = read_tally(redis, con)?;
    say(&tally);
    Ok(ExitCode::from(if tally.verdict().went_wrong() {
        2
    } else {
        0
    }))
}

fn read_tally(redis: &Redis, con: &mut Connection) -> Result<Tally, Box<dyn Error>> {
    let tally = Tally::read(con).map_err(|err| redis.failed(err))?;
    Ok(tally.ok_or_else(|| no_sale(redis))?)
}

fn no_sale(redis: &Redis) -> String {
    let at = &redis.at;
    format!("no sale in Redis at {at}: start a seckill without --join to set one up")
}
