//! Where orders are kept: SQLite, embedded (the default: no server to
//! start), or PostgreSQL for a real deployment, each through a synchronous
//! client and an r2d2 pool, as Redis is. One schema for both, with the
//! order's key (its sale and its buyer) unique, so a batch written twice
//! (a crash between the commit and the XACK) inserts nothing twice.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::postgres::NoTls;
use r2d2_sqlite::SqliteConnectionManager;

use super::Order;
use crate::beyond::output::warn;

/// The table, created if missing; its SQL reads the same in both. Named
/// for the project, so it meets no `orders` table a database already has.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS seckill_orders (
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
const INSERT: &str = "INSERT INTO seckill_orders (sale, user_id, stock_left, seller, entry)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

const COUNT: &str = "SELECT COUNT(*) FROM seckill_orders WHERE sale = $1";

const BUYERS: &str = "SELECT user_id FROM seckill_orders WHERE sale = $1";

/// How long a connection to the database may take, and a locked SQLite
/// file may be waited for, before the writer tries again later.
const DB_WAIT: Duration = Duration::from_secs(2);

/// Connections the writer and the stats share.
const DB_POOL: u32 = 4;

/// A database of orders: `--orders sqlite:PATH` or `--orders postgres://...`.
pub struct Database {
    pools: Pools,
    /// Whether the table is known to exist: created at open, or at the
    /// first write when the database was down at open.
    ready: AtomicBool,
    /// The last count asked for (`count`): when, of which sale, how many.
    counted: Mutex<Option<(Instant, String, u64)>>,
}

/// How long a count of orders is answered again without asking the
/// database: however many pages poll `/seckill/stats`, and however fast a
/// client asks, the database is asked a few times a second at most, and the
/// writer keeps its connections.
const COUNT_FRESH: Duration = Duration::from_millis(250);

enum Pools {
    Sqlite(r2d2::Pool<SqliteConnectionManager>),
    Postgres(r2d2::Pool<PostgresConnectionManager<NoTls>>),
}

impl Database {
    /// The database of `url`, with its table created if missing. A
    /// database that does not answer is no reason not to sell: the orders
    /// wait in the stream, and the writer says so.
    pub fn open(url: &str) -> Result<Database, String> {
        let failed = |err: &dyn std::fmt::Display| format!("--orders {url}: {err}");
        fn builder<M: r2d2::ManageConnection>() -> r2d2::Builder<M> {
            r2d2::Pool::builder()
                .max_size(DB_POOL)
                .min_idle(Some(0))
                .connection_timeout(DB_WAIT)
        }
        let pools = if let Some(path) = url.strip_prefix("sqlite:") {
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|err| failed(&err))?;
            }
            // WAL: the stats read while the writer writes.
            let manager = SqliteConnectionManager::file(path).with_init(|con| {
                con.busy_timeout(DB_WAIT)?;
                con.pragma_update(None, "journal_mode", "WAL")
            });
            Pools::Sqlite(builder().build_unchecked(manager))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut config: postgres::Config = url.parse().map_err(|err| failed(&err))?;
            // Nothing waits on PostgreSQL for ever: a buyer never does, but
            // the writer, the stats and the stop would.
            let wait_ms = DB_WAIT.as_millis();
            config.connect_timeout(DB_WAIT).options(&format!(
                "-c statement_timeout={wait_ms} -c lock_timeout={wait_ms}"
            ));
            let manager = PostgresConnectionManager::new(config, NoTls);
            Pools::Postgres(builder().build_unchecked(manager))
        } else {
            return Err(format!(
                "--orders {url}: give sqlite:PATH, postgres://USER@HOST:PORT/DB, or off"
            ));
        };
        let database = Database {
            pools,
            ready: AtomicBool::new(false),
            counted: Mutex::new(None),
        };
        if let Err(err) = database.ensure_table() {
            warn(format!(
                "seckill: --orders {url}: {err}; orders wait in the stream until it answers"
            ));
        }
        Ok(database)
    }

    /// Creates the table if it is missing, once.
    fn ensure_table(&self) -> Result<(), String> {
        if self.ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        match &self.pools {
            Pools::Sqlite(pool) => {
                let con = pool.get().map_err(|err| err.to_string())?;
                con.execute(SCHEMA, []).map_err(|err| err.to_string())?;
            }
            Pools::Postgres(pool) => {
                let mut con = pool.get().map_err(|err| err.to_string())?;
                con.batch_execute(SCHEMA).map_err(|err| err.to_string())?;
            }
        }
        self.ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Writes `orders` in one transaction; an order already there is
    /// skipped. How many were new.
    pub fn write(&self, orders: &[Order]) -> Result<u64, String> {
        self.ensure_table()?;
        let text = |err: &dyn std::fmt::Display| err.to_string();
        match &self.pools {
            Pools::Sqlite(pool) => {
                let mut con = pool.get().map_err(|err| text(&err))?;
                let tx = con.transaction().map_err(|err| text(&err))?;
                let mut new = 0;
                {
                    let mut insert = tx.prepare_cached(INSERT).map_err(|err| text(&err))?;
                    for o in orders {
                        let row = (&o.sale, &o.user, o.left, &o.seller, &o.entry);
                        new += insert.execute(row).map_err(|err| text(&err))? as u64;
                    }
                }
                tx.commit().map_err(|err| text(&err))?;
                Ok(new)
            }
            Pools::Postgres(pool) => {
                let mut con = pool.get().map_err(|err| text(&err))?;
                let mut tx = con.transaction().map_err(|err| text(&err))?;
                let insert = tx.prepare(INSERT).map_err(|err| text(&err))?;
                let mut new = 0;
                for o in orders {
                    let row: [&(dyn postgres::types::ToSql + Sync); 5] =
                        [&o.sale, &o.user, &o.left, &o.seller, &o.entry];
                    new += tx.execute(&insert, &row).map_err(|err| text(&err))?;
                }
                tx.commit().map_err(|err| text(&err))?;
                Ok(new)
            }
        }
    }

    /// How many orders the sale `sale` has, as counted `COUNT_FRESH` ago at
    /// most. The lock is held while counting: a crowd of askers waits for one
    /// count instead of each asking the database.
    pub fn count(&self, sale: &str) -> Result<u64, String> {
        let mut counted = self.counted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, of, count)) = counted.as_ref()
            && of == sale
            && at.elapsed() < COUNT_FRESH
        {
            return Ok(*count);
        }
        let count = self.count_now(sale)?;
        *counted = Some((Instant::now(), sale.to_string(), count));
        Ok(count)
    }

    /// How many orders the sale `sale` has now, asked of the database.
    pub fn count_now(&self, sale: &str) -> Result<u64, String> {
        self.ensure_table()?;
        let text = |err: &dyn std::fmt::Display| err.to_string();
        match &self.pools {
            Pools::Sqlite(pool) => {
                let con = pool.get().map_err(|err| text(&err))?;
                let count: i64 = con
                    .query_row(COUNT, [sale], |row| row.get(0))
                    .map_err(|err| text(&err))?;
                Ok(count as u64)
            }
            Pools::Postgres(pool) => {
                let mut con = pool.get().map_err(|err| text(&err))?;
                let row = con.query_one(COUNT, &[&sale]).map_err(|err| text(&err))?;
                Ok(row.get::<_, i64>(0) as u64)
            }
        }
    }

    /// The buyers with an order in the sale `sale`.
    pub fn buyers(&self, sale: &str) -> Result<Vec<String>, String> {
        self.ensure_table()?;
        let text = |err: &dyn std::fmt::Display| err.to_string();
        match &self.pools {
            Pools::Sqlite(pool) => {
                let con = pool.get().map_err(|err| text(&err))?;
                let mut query = con.prepare(BUYERS).map_err(|err| text(&err))?;
                let rows = query
                    .query_map([sale], |row| row.get::<_, String>(0))
                    .map_err(|err| text(&err))?;
                rows.collect::<Result<_, _>>().map_err(|err| text(&err))
            }
            Pools::Postgres(pool) => {
                let mut con = pool.get().map_err(|err| text(&err))?;
                let rows = con.query(BUYERS, &[&sale]).map_err(|err| text(&err))?;
                Ok(rows.iter().map(|row| row.get(0)).collect())
            }
        }
    }
}
