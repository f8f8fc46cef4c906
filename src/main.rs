//! The seckill server, in the order of the Python script: connect to Redis,
//! set up the sale, open the pool, serve, and print the winners at the end.

mod config;

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;

use config::{Command, Config};
use seckill::beyond::logs;
use seckill::beyond::output::{self, OUTPUT_WAIT, print};
use seckill::beyond::renewal::Renewal;
use seckill::handler::{self, App};
use seckill::hosts::Hosts;
use seckill::lifecycle::{self, ORDERS_WAIT};
use seckill::orders::{Location, Writer};
use seckill::pool::{Pool, Redis};
use seckill::purchase::{self, Checkout};
use seckill::report::Report;
use seckill::stats::Latency;
use seckill::{seller, server};

fn main() -> ExitCode {
    let config = Config::from_args();
    // Diagnostics on stderr (RUST_LOG), until this is dropped at the end.
    let logs = logs::start();
    let ran = run(&config);
    output::finish(OUTPUT_WAIT);
    // What was logged comes before the last word.
    drop(logs);
    ran.unwrap_or_else(|err| {
        eprintln!("seckill: {err}");
        ExitCode::FAILURE
    })
}

fn run(config: &Config) -> Result<ExitCode, Box<dyn Error>> {
    // Python: pyredis = redis.Redis(host='', port=6379, db=0, decode_responses=True)
    let redis = Redis::open(&config.redis, &config.sentinel, &config.master)?;
    let mut con = redis.connect()?;
    let orders_given = config.orders.as_deref();
    if config.audit {
        return lifecycle::audit(&redis, &mut con, orders_given);
    }
    if let Some(Command::Orders) = config.command {
        return lifecycle::write_orders(&redis, &mut con, orders_given, config.replicas());
    }
    // Unlike the Python, all the server needs comes before the sale is set
    // up: a start that fails (a port in use, a Redis full of clients)
    // leaves the sale in Redis as it was.
    let http = server::listen(&config.bind, config.http_limits(), config.redis_connections)?;
    // Python: pool = redis.ConnectionPool(host='', port=6379, db=0)
    let pool = Pool::open(&redis, &mut con, config.redis_connections, config.turn_wait)?;
    // Not in the Python: where each winner's order is written (`orders`);
    // a sale joined keeps its own.
    let orders = lifecycle::orders(&redis, &mut con, orders_given, config.join)?;
    let location = orders
        .as_ref()
        .map_or(Location::Off, |db| db.location.clone());
    let replicas = config.replicas();
    purchase::prepare(
        config.strategy,
        replicas,
        orders.is_some(),
        &redis,
        &mut con,
    )?;

    // Python: pyredis.set(name='commodity:num', value=500); pyredis.sadd('user:id', 'null')
    let seller = seller::name(http.addr());
    let sale = lifecycle::open(&redis, &mut con, &config.begin(), &seller, &location)?;
    drop(con); // the pool's connections serve from here on

    let writer = orders
        .map(|db| Writer::start(redis.clone(), db, seller, replicas, Some(sale.id.clone())))
        .transpose()?;
    let app = Arc::new(App {
        pool,
        checkout: Checkout::new(
            config.strategy,
            config.retries,
            replicas,
            &sale,
            writer.is_some(),
        ),
        sale,
        written: writer.as_ref().map(|writer| Arc::clone(&writer.written)),
        replicas,
        suffix_max: config.suffix_max,
        report: Report::new(config.quiet),
        hosts: Hosts::new(&config.allowed_host),
        latency: Latency::default(),
        connections: Arc::default(),
    });
    // Renewed while the server sells, so that a start elsewhere sees it.
    let renewing = Arc::clone(&app);
    let renewal = Renewal::start("mark", seller::MARK_EVERY, move || {
        handler::renew_mark(&renewing)
    })?;

    // Python: app.run(host='', port=5000), listening since the start
    let serving = Arc::clone(&app);
    let joined = if config.join { ", joined" } else { "" };
    print(format!(
        "seckill: listening on {}; open {} (strategy {}, Redis {}{joined}); Ctrl-C stops and \
         prints the winners",
        http.addr(),
        server::page_urls(http.addr()).join(" or "),
        config.strategy.name(),
        redis.at
    ));
    http.serve(config.stop_wait, &app.connections, move |request| {
        handler::handle(&serving, request)
    })?;
    renewal.stop();
    let drained = writer.map(|writer| writer.finish(ORDERS_WAIT));

    // Python: print('Users whose campaign succeeded in killing merchandise:') ...
    Ok(lifecycle::end(&redis, &app, drained)?)
}
