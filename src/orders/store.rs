//! What a database of orders does, and the SQL both stores share: one
//! schema, with the order's key (its sale and its buyer) unique, so a batch
//! written twice (a crash between the commit and the XACK) inserts nothing
//! twice.

use std::time::Duration;

use super::Order;

/// The table, created if missing; its SQL reads the same in both. Named
/// for the project, so it meets no `orders` table a database already has.
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS seckill_orders (
    sale TEXT NOT NULL,
    user_id TEXT NOT NULL,
    stock_left BIGINT NOT NULL,
    seller TEXT NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (sale, user_id)
)";

/// One order; an order already there is left as it is. (SQLite reads `$1`
/// to `$5` as named parameters, numbered in the order they first appear:
/// here, their own.)
pub const INSERT: &str = "INSERT INTO seckill_orders (sale, user_id, stock_left, seller, entry)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

pub const COUNT: &str = "SELECT COUNT(*) FROM seckill_orders WHERE sale = $1";

pub const BUYERS: &str = "SELECT user_id, entry FROM seckill_orders WHERE sale = $1";

/// How long a connection to the database may take, and a locked SQLite
/// file may be waited for, before the writer tries again later.
pub const DB_WAIT: Duration = Duration::from_secs(2);

/// The pool of connections the writer and the audit share: at most four,
/// none kept open once idle for 20 s (r2d2 looks every 30 s), so a database
/// sees them go within a minute of the sale's end.
pub fn pool_of<M: r2d2::ManageConnection>(manager: M) -> r2d2::Pool<M> {
    r2d2::Pool::builder()
        .max_size(4)
        .min_idle(Some(0))
        .idle_timeout(Some(Duration::from_secs(20)))
        .connection_timeout(DB_WAIT)
        .test_on_check_out(true)
        .build_unchecked(manager)
}

/// What a database of orders does; SQLite and PostgreSQL each in a file.
pub trait Store: Send + Sync {
    /// Writes `orders` in one transaction; an order already there is
    /// skipped. How many were new.
    fn write(&self, orders: &[Order]) -> Result<u64, String>;

    /// How many orders the sale `sale` has.
    fn count(&self, sale: &str) -> Result<u64, String>;

    /// The buyers with an order in the sale `sale`, each with the id of
    /// its stream entry.
    fn buyers(&self, sale: &str) -> Result<Vec<(String, String)>, String>;
}
