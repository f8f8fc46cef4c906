//! The seckill server, in the order of the Python script: connect to Redis,
//! set up the sale, open the pool, serve, and print the winners at the end.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use redis::io::tcp::TcpSettings;
use redis::{Client, Connection, ConnectionAddr, IntoConnectionInfo, RedisError};

use seckill::config::Config;
use seckill::handler::{self, App};
use seckill::log::{Log, say, warn};
use seckill::permits::Permits;
use seckill::purchase::{self, Strategy};
use seckill::redis_pool::{self, CONNECT_TIMEOUT};
use seckill::sale::{self, Tally};
use seckill::server;
use seckill::stats::Stats;

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    seckill::thread_caches::turn_off();
    let config = Config::from_args();
    let result = match Redis::open(&config.redis) {
        Ok(redis) if config.audit => audit(&redis),
        Ok(redis) => run(&config, &redis).map(|()| ExitCode::SUCCESS),
        Err(message) => Err(message),
    };
    result.unwrap_or_else(|message| {
        warn(format!("seckill: {message}"));
        ExitCode::FAILURE
    })
}

fn run(config: &Config, redis: &Redis) -> Result<(), String> {
    // Python: pyredis = redis.Redis(host='', port=6379, db=0, decode_responses=True)
    let mut con = redis.connect()?;

    if config.join {
        read_tally(redis)?;
    } else {
        // Python: pyredis.set(name='commodity:num', value=500); pyredis.sadd('user:id', 'null')
        sale::start(&mut con, config.stock).map_err(|err| redis.failed(err))?;
    }
    if config.strategy == Strategy::Lua {
        purchase::load_script(&mut con).map_err(|err| redis.failed(err))?;
    }
    drop(con);

    // Python: pool = redis.ConnectionPool(host='', port=6379, db=0)
    let pool = redis_pool::build(redis.client.clone()).map_err(|err| {
        format!(
            "cannot open the pool of Redis connections to {}: {err}",
            redis.at
        )
    })?;

    // Python: app.run(host='', port=5000)
    let max_connections = server::fit_connections(config.max_connections);
    let listener = server::bind(&config.bind, config.http_limits(max_connections))?;
    let http = Arc::new(listener.server);
    let stopping = Arc::new(AtomicBool::new(false));
    server::stop_on_signal(Arc::downgrade(&http), Arc::clone(&stopping))?;
    let addr = http.server_addr();
    let joined = if config.join { ", joined" } else { "" };
    say(format!(
        "seckill: listening on {addr}; open http://{addr}/seckill (strategy {}, Redis {}{joined}); Ctrl-C stops and prints the winners",
        config.strategy.name(),
        redis.at
    ));
    let app = App {
        pool,
        strategy: config.strategy,
        retries: config.retries,
        suffix_max: config.suffix_max,
        stats: Stats::default(),
        log: Log::new(config.quiet),
        racers: config.strategy.racers_at_once().map(Permits::new),
    };
    let app = Arc::new(app);
    let shared = Arc::clone(&app);
    server::serve(
        http,
        listener.socket,
        move |request| handler::handle(&shared, request),
        &stopping,
    )
    .map_err(|err| server::listener_failed(&err.to_string()))?;

    // Python: print('Users whose campaign succeeded in killing merchandise:') ...
    //         print('Current Remaining Merchandise Number:%d' % ...)
    let (tally, winners) = sale::report(&mut redis.connect()?)
        .map_err(|err| redis.failed(err))?
        .ok_or_else(|| redis.no_sale())?;
    say(format!("Winners ({}):", winners.len()));
    for winner in &winners {
        say(winner);
    }
    say(&tally);
    say(app.stats.summary());
    Ok(())
}

/// `seckill --audit`: the sale's figures, for scripts after a load.
fn audit(redis: &Redis) -> Result<ExitCode, String> {
    let tally = read_tally(redis)?;
    say(&tally);
    Ok(if tally.verdict().went_wrong() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn read_tally(redis: &Redis) -> Result<Tally, String> {
    let mut con = redis.connect()?;
    Tally::read(&mut con)
        .map_err(|err| redis.failed(err))?
        .ok_or_else(|| redis.no_sale())
}

/// The Redis of `--redis`, and how to talk about it in messages.
struct Redis {
    client: Client,
    /// The URL without any password in it.
    at: String,
}

impl Redis {
    fn open(url: &str) -> Result<Redis, String> {
        let bad_url = |err: RedisError| format!("--redis {url}: {err}");
        // Nagle's algorithm may hold a small write back until the last one
        // is acknowledged; a buyer gains nothing from that wait.
        let nodelay = TcpSettings::default().set_nodelay(true);
        let info = url.into_connection_info().map_err(bad_url)?;
        let client = Client::open(info.set_tcp_settings(nodelay)).map_err(bad_url)?;
        let info = client.get_connection_info();
        let db = info.redis_settings().db();
        let at = match info.addr() {
            ConnectionAddr::Unix(path) => format!("redis+unix://{}?db={db}", path.display()),
            addr => format!("redis://{addr}/{db}"),
        };
        Ok(Redis { client, at })
    }

    fn connect(&self) -> Result<Connection, String> {
        self.client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(|err| self.failed(err))
    }

    fn no_sale(&self) -> String {
        format!(
            "no sale in Redis at {}: start a seckill without --join to set one up",
            self.at
        )
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
