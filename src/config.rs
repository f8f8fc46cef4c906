//! Command-line flags. The Python hard-codes these at the top of the script.

use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

use seckill::beyond::output::{LINES_WAITING, OUTPUT_WAIT, span};
use seckill::beyond::replicas::Replicas;
use seckill::form::{MAX_BODY_BYTES, MAX_ID_BYTES};
use seckill::opening::{self, Opens};
use seckill::pool::{IO_TIMEOUT, POOL_AT_START, POOL_IDLE_CLOSE, POOL_SIZE};
use seckill::purchase::{DEFAULT_RETRIES, RACERS_AT_ONCE, Strategy};
use seckill::sale::Begin;
use seckill::seller::{MARK_EVERY, MARK_LASTS};

/// WAIT answers after its timeout: well within `IO_TIMEOUT`, the longest a
/// reply may take.
const MAX_REPLICA_TIMEOUT_MS: u64 = 300;

/// A flash-sale (秒杀) server backed by Redis: the Flask seckill tutorial in Rust.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,

    // Python: app.run(host='', port=5000)
    /// Address to listen on; 0.0.0.0:5000 takes load from other machines too.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub bind: String,

    // Python: redis.ConnectionPool(host='', port=6379, db=0)
    /// Redis to keep the sale in. With --sentinel, only its database number
    /// and password count.
    #[arg(
        long,
        global = true,
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379/0"
    )]
    pub redis: String,

    /// Sentinels to ask which Redis is the master, instead of one fixed
    /// Redis: when the master fails, they promote a replica and seckill
    /// follows it.
    #[arg(long, global = true, value_delimiter = ',', value_name = "HOST:PORT,...", value_parser = host_port)]
    pub sentinel: Vec<String>,

    /// The name the sentinels know the master by.
    #[arg(long, global = true, default_value = "mymaster", value_name = "NAME")]
    pub master: String,

    /// After each sale, wait until this many replicas have it (Redis's
    /// WAIT); a sale they do not confirm in time is answered 503
    /// unreplicated instead of 1, as a failover could lose it.
    #[arg(long, global = true, default_value_t = 0, value_name = "N")]
    pub replicas: u32,

    /// Milliseconds to wait for --replicas to confirm a sale (the range,
    /// from the constants, is added by `from_args`).
    #[arg(long, global = true, default_value_t = 100, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=MAX_REPLICA_TIMEOUT_MS))]
    pub replica_timeout: u64,

    // Python: pyredis.set(name='commodity:num', value=500)
    /// Items on sale at start.
    #[arg(long, default_value_t = 500)]
    pub stock: u32,

    /// Seconds from the start until the sale opens (by Redis's clock, so
    /// servers that --join agree); until then a purchase answers -4, not
    /// open yet, and buys nothing. The tutorial's sale is open at once.
    #[arg(long, value_name = "SECONDS", value_parser = opening::seconds_from_now,
          conflicts_with_all = ["opens_at", "join"])]
    pub opens_in: Option<u64>,

    /// When the sale opens: a time of day (14:30 or 14:30:15, the next to
    /// come, in this machine's time zone) or RFC 3339
    /// (2026-11-30T14:30:00+01:00).
    #[arg(long, value_name = "TIME", value_parser = opening::time, conflicts_with = "join")]
    pub opens_at: Option<i64>,

    // Python: userid = baseid + str(random.randint(0, 100000))
    /// Largest random number appended to the submitted id; 0 appends none, so
    /// a second click by the same person answers "repeat".
    #[arg(long, default_value_t = 100_000)]
    pub suffix_max: u32,

    /// How a purchase is made: naive oversells, watch is the tutorial's,
    /// watch-retry and lua sell out.
    #[arg(long, value_enum, default_value_t = Strategy::Watch)]
    pub strategy: Strategy,

    /// How many times watch-retry makes its transaction again after losing
    /// the race, before it answers -3.
    #[arg(long, default_value_t = DEFAULT_RETRIES)]
    pub retries: u32,

    /// Serve the sale already in Redis instead of starting one, so several
    /// servers can sell the same stock.
    #[arg(long, conflicts_with = "stock")]
    pub join: bool,

    /// Start a fresh sale even while other seckills sell the one in Redis
    /// (without it, such a start stops and says so); they answer 503
    /// replaced from then on.
    #[arg(long, conflicts_with = "join")]
    pub replace: bool,

    /// Sell on a Redis whose maxmemory-policy may evict any key (allkeys-*),
    /// with a warning; without it such a Redis is refused at start.
    #[arg(long)]
    pub allow_eviction: bool,

    /// Where every winner's order is written, from a Redis Stream:
    /// sqlite:PATH (embedded, nothing to start), postgres://USER@HOST:PORT/DB
    /// (the password from PGPASSWORD or ~/.pgpass if the URL has none), or
    /// off (the bare tutorial: the winners stay in Redis only). The sale
    /// records it: servers that --join it, `seckill orders` and --audit use
    /// the sale's unless given another. [default: sqlite:seckill-orders.sqlite,
    /// in the folder seckill is started from]
    #[arg(
        long,
        global = true,
        env = "SECKILL_ORDERS",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub orders: Option<String>,

    /// A name this server answers to besides its addresses, `localhost` and
    /// this machine's name (a request whose Host names another is refused,
    /// against DNS rebinding); repeatable: --allowed-host shop.example.
    #[arg(long, value_name = "NAME")]
    pub allowed_host: Vec<String>,

    /// Do not print a line per purchase.
    #[arg(long)]
    pub quiet: bool,

    /// Print the audit of the sale in Redis (stock, winners, remaining,
    /// verdict) and of its orders (--orders) and exit, without serving; exit
    /// status 2 if it oversold, lost count, or its orders and winners differ
    /// once none waits in the stream.
    #[arg(long)]
    pub audit: bool,

    /// Connections open at once; one more is answered 503 busy, without a
    /// thread of its own, and closed, unless a connection still waiting for
    /// a whole request can be closed for it: any, for an address holding
    /// none; for one holding some, one of an address over its share (this
    /// over the addresses connected); the address holding the most gives
    /// first, its oldest. An IPv6 client is its /64. Lowered at start to
    /// what the open-files limit has room for.
    #[arg(long, default_value_t = 2048, value_name = "N", value_parser = at_least_one)]
    pub max_connections: usize,

    /// Connections open at once from one client address, so that no one
    /// client can take them all; one more is answered 503 and closed. It
    /// leaves `ab -c 1000` room for the connections it is still closing.
    #[arg(long, default_value_t = 1536, value_name = "N", value_parser = at_least_one)]
    pub max_connections_per_client: usize,

    /// Seconds a request's head may take to arrive (408 after), from its
    /// first byte or from the connection's opening.
    #[arg(long, default_value = "10", value_parser = seconds, value_name = "SECONDS")]
    pub head_timeout: Duration,

    /// Seconds a kept-alive connection may wait for its next request.
    #[arg(long, default_value = "5", value_parser = seconds, value_name = "SECONDS")]
    pub idle_timeout: Duration,

    /// Seconds a request's body may take to arrive, from the end of its
    /// head (408 after).
    #[arg(long, default_value = "10", value_parser = seconds, value_name = "SECONDS")]
    pub body_timeout: Duration,

    /// Seconds a write of an answer may wait for the client to read; the
    /// connection is closed after.
    #[arg(long, default_value = "10", value_parser = seconds, value_name = "SECONDS")]
    pub send_timeout: Duration,

    /// Connections to Redis the server keeps open at most; a request
    /// beyond waits its turn at one (--turn-wait). One Redis gains nothing
    /// from many more than the requests it answers at once.
    #[arg(long, default_value_t = POOL_SIZE, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub redis_connections: u32,

    /// Seconds a purchase waits for its turn at Redis while a crowd is
    /// ahead and Redis is healthy (503 busy after: the server is
    /// overloaded); a Redis that fails is told at once, without waiting.
    #[arg(long, default_value = "10", value_parser = seconds, value_name = "SECONDS")]
    pub turn_wait: Duration,

    /// Seconds a stop (Ctrl-C, SIGTERM) waits for the requests in flight
    /// before it prints the winners without their answers.
    #[arg(long, default_value = "10", value_parser = seconds, value_name = "SECONDS")]
    pub stop_wait: Duration,
}

/// What to run instead of the server.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Only write the orders waiting in the stream into the database of
    /// --orders, until Ctrl-C, beside the servers or after them: a class can
    /// watch it catch up, or run several.
    Orders,
}

impl Config {
    /// The flags of this run; `--help` ends with the limits that have no flag.
    pub fn from_args() -> Config {
        let replica_timeout = format!(
            "Milliseconds to wait for --replicas to confirm a sale: 1 to \
             {MAX_REPLICA_TIMEOUT_MS}, as a reply of Redis may take {} at most",
            span(IO_TIMEOUT)
        );
        let matches = Config::command()
            .mut_arg("replica_timeout", |arg| arg.help(replica_timeout))
            .after_help(fixed_limits())
            .get_matches();
        Config::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
    }

    /// How to begin the sale: `--join`, `--stock`, the opening, `--replace`.
    pub fn begin(&self) -> Begin {
        Begin {
            join: self.join,
            stock: self.stock,
            opens: self.opens(),
            replace: self.replace,
            allow_eviction: self.allow_eviction,
        }
    }

    /// `--opens-in` or `--opens-at`.
    pub fn opens(&self) -> Opens {
        match (self.opens_in, self.opens_at) {
            (Some(ms), _) => Opens::In(ms),
            (None, Some(at)) => Opens::At(at),
            (None, None) => Opens::Now,
        }
    }

    /// `--replicas` and `--replica-timeout`.
    pub fn replicas(&self) -> Replicas {
        Replicas {
            wanted: self.replicas,
            timeout_ms: self.replica_timeout,
        }
    }

    /// The limits the HTTP layer holds clients to.
    pub fn http_limits(&self) -> tiny_http::Limits {
        tiny_http::Limits {
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            head_timeout: self.head_timeout,
            idle_timeout: self.idle_timeout,
            body_timeout: self.body_timeout,
            send_timeout: self.send_timeout,
            ..tiny_http::Limits::default()
        }
    }
}

/// The limits without a flag, from the constants that set them.
fn fixed_limits() -> String {
    let tiny_http::Limits {
        max_request_line: line,
        max_header_line: header,
        max_headers: headers,
        max_head: head,
        max_chunked_body: chunked,
        max_drain: drain,
        ..
    } = tiny_http::Limits::default();
    let reply = span(IO_TIMEOUT);
    let output = OUTPUT_WAIT.as_secs();
    let (mark_every, mark_lasts) = (MARK_EVERY.as_secs(), MARK_LASTS.as_secs());
    let pool_idle = POOL_IDLE_CLOSE.as_secs();
    format!(
        "Limits without a flag:\n  \
         a request line of {line} bytes (414 beyond); a header line of {header} bytes, {headers} \
         headers and {head} bytes of head in all (431 beyond);\n  \
         a form body of {MAX_BODY_BYTES} bytes (413 beyond; {chunked} bytes on the wire when \
         chunked), an id of {MAX_ID_BYTES} bytes;\n  \
         an unread rest of a body up to {drain} bytes is read and thrown away, a larger one \
         closes the connection;\n  \
         {POOL_AT_START} Redis connections opened at start, more as the load needs them, one \
         at a time (--redis-connections), each taken in turn (--turn-wait), and closed after \
         {pool_idle} s unused; {reply} for each reply of Redis;\n  \
         watch-retry lets {RACERS_AT_ONCE} buyers race at once; the others wait their turn \
         within the same --turn-wait;\n  \
         a server's mark on the sale it sells is renewed every {mark_every} s and lasts \
         {mark_lasts} s: a fresh start waits that long at most for a killed server's to lapse;\n  \
         {LINES_WAITING} lines wait for a stdout or stderr that is not read (more are dropped), \
         and the report at the end waits {output} s for it."
    )
}

/// A sentinel's address, such as 127.0.0.1:26379.
fn host_port(text: &str) -> Result<String, String> {
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(text.into()),
        _ => Err(format!(
            "`{text}` is not HOST:PORT; sentinels listen on 26379 unless told otherwise, \
             as in {}:26379",
            text.split(':')
                .next()
                .filter(|h| !h.is_empty())
                .unwrap_or("127.0.0.1")
        )),
    }
}

/// A count of connections: at least one, or no buyer could ever be served.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("0 leaves no room for a single buyer; give 1 or more".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

/// A number of seconds, such as 10 or 0.5.
fn seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if seconds > 0.0 && seconds <= 86_400.0 {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        Err(format!(
            "{text} s: give a number of seconds above 0, at most a day"
        ))
    }
}
