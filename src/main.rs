//! The seckill server, in the order of the Python script: connect to Redis,
//! set up the sale, open the pool, serve, and print the winners at the end.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use redis::{Client, Connection, RedisError};

use seckill::config::Config;
use seckill::handler::App;
use seckill::log::Log;
use seckill::redis_pool::{self, CONNECT_TIMEOUT};
use seckill::sale::{self, Audit};
use seckill::server;

fn main() -> ExitCode {
    let config = Config::parse();
    let result = match Redis::open(&config.redis) {
        Ok(redis) if config.audit => audit(&redis),
        Ok(redis) => run(&config, &redis).map(|()| ExitCode::SUCCESS),
        Err(message) => Err(message),
    };
    result.unwrap_or_else(|message| {
        eprintln!("seckill: {message}");
        ExitCode::FAILURE
    })
}

fn run(config: &Config, redis: &Redis) -> Result<(), String> {
    // Python: pyredis = redis.Redis(host='', port=6379, db=0, decode_responses=True)
    let mut con = redis.connect()?;

    // Python: pyredis.set(name='commodity:num', value=500); pyredis.sadd('user:id', 'null')
    sale::start(&mut con, config.stock).map_err(|err| redis.failed(err))?;
    drop(con);

    // Python: pool = redis.ConnectionPool(host='', port=6379, db=0)
    let pool = redis_pool::build(redis.client.clone()).map_err(|err| {
        format!(
            "cannot open the pool of Redis connections to {}: {err}",
            redis.at
        )
    })?;

    // Python: app.run(host='', port=5000)
    let http = Arc::new(server::bind(&config.bind)?);
    let stopping = Arc::new(AtomicBool::new(false));
    server::stop_on_signal(Arc::downgrade(&http), Arc::clone(&stopping))?;
    let addr = http.server_addr();
    println!(
        "seckill: listening on {addr}; open http://{addr}/seckill (stock {}, Redis {}); Ctrl-C stops and prints the winners",
        config.stock, redis.at
    );
    let app = Arc::new(App {
        pool,
        suffix_max: config.suffix_max,
        log: Log::new(config.quiet),
    });
    server::serve(http, app, &stopping).map_err(|err| {
        format!("the listener stopped: {err}; if it says too many open files, raise `ulimit -n`")
    })?;

    // Python: print('Users whose campaign succeeded in killing merchandise:') ...
    //         print('Current Remaining Merchandise Number:%d' % ...)
    let audit = read_audit(redis)?;
    println!("Winners ({}):", audit.winners.len());
    for winner in &audit.winners {
        println!("{winner}");
    }
    println!("{audit}");
    Ok(())
}

/// `seckill --audit`: the sale's figures, for scripts after a load.
fn audit(redis: &Redis) -> Result<ExitCode, String> {
    let audit = read_audit(redis)?;
    println!("{audit}");
    Ok(if audit.verdict().went_wrong() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn read_audit(redis: &Redis) -> Result<Audit, String> {
    let mut con = redis.connect()?;
    Audit::read(&mut con)
        .map_err(|err| redis.failed(err))?
        .ok_or_else(|| {
            format!(
                "no sale in Redis at {}: start seckill to set one up",
                redis.at
            )
        })
}

/// The Redis of `--redis`, and how to talk about it in messages.
struct Redis {
    client: Client,
    /// The URL without any password in it.
    at: String,
}

impl Redis {
    fn open(url: &str) -> Result<Redis, String> {
        let client = Client::open(url).map_err(|err| format!("--redis {url}: {err}"))?;
        let info = client.get_connection_info();
        let at = format!("redis://{}/{}", info.addr(), info.redis_settings().db());
        Ok(Redis { client, at })
    }

    fn connect(&self) -> Result<Connection, String> {
        self.client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(|err| self.failed(err))
    }

    /// What went wrong, and how to fix it when the fix is to start Redis.
    fn failed(&self, err: RedisError) -> String {
        let hint = if err.is_connection_refusal() || err.is_timeout() {
            "; start it with `redis-server` (or scripts/redis-dev.sh)"
        } else {
            ""
        };
        format!("cannot reach Redis at {}: {err}{hint}", self.at)
    }
}
