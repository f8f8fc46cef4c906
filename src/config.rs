//! Command-line flags. The Python hard-codes these at the top of the script.

use clap::Parser;

use crate::purchase::{DEFAULT_RETRIES, Strategy};

/// A flash-sale (秒杀) server backed by Redis: the Flask seckill tutorial in Rust.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Config {
    // Python: app.run(host='', port=5000)
    /// Address to listen on; 0.0.0.0:5000 takes load from other machines too.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub bind: String,

    // Python: redis.ConnectionPool(host='', port=6379, db=0)
    /// Redis to keep the sale in.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    pub redis: String,

    // Python: pyredis.set(name='commodity:num', value=500)
    /// Items on sale at start.
    #[arg(long, default_value_t = 500)]
    pub stock: u32,

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

    /// Do not print a line per purchase.
    #[arg(long)]
    pub quiet: bool,

    /// Print the audit of the sale in Redis (stock, winners, remaining,
    /// verdict) and exit, without serving; exit status 2 if it oversold or
    /// lost count.
    #[arg(long)]
    pub audit: bool,
}
