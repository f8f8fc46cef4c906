//! Every winner becomes an order: where the tutorial stops (a set of
//! winners, printed at the end), a real flash sale goes on to a database,
//! without putting the database in the buyer's path.
//!
//! Each sale adds an entry to a Redis Stream in the same atomic step as the
//! sale (`stream::add`, inside the WATCH transaction or the Lua script), so
//! there is no sale without its order entry, nor the other way round. A
//! writer thread reads the stream as one of a consumer group, writes each
//! batch to the database in one transaction, and only then acknowledges
//! it: at least once delivered, written once (the order's key is unique).
//! A writer that died leaves its entries pending; another claims them.

pub mod database;
pub mod stream;

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use redis::Connection;
use redis::streams::StreamId;

use crate::beyond::output::warn_timed;
use crate::beyond::replicas::Replicas;
use crate::pool::Redis;
use database::Database;

/// One order, as its stream entry holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    /// The stream entry's id, kept with the order to trace it.
    pub entry: String,
    pub user: String,
    pub sale: String,
    /// The stock left after this sale.
    pub left: i64,
    /// The server that sold it.
    pub seller: String,
}

/// How long a read of the stream waits for new entries.
const BLOCK: Duration = Duration::from_millis(500);

/// How long a read waits while draining at the stop: nothing new is sold.
const DRAIN_BLOCK: Duration = Duration::from_millis(50);

/// How often the stop looks whether the writer is done.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// How long entries given to a writer may stay unacknowledged before
/// another writer claims them: the writer that had them is gone.
pub const CLAIM_IDLE: Duration = Duration::from_secs(10);

/// How often a writer looks for such entries.
const CLAIM_EVERY: Duration = Duration::from_secs(2);

/// How long a writer rests after Redis or the database failed.
const RETRY: Duration = Duration::from_millis(500);

/// The writer: a thread that turns stream entries into database rows.
pub struct Writer {
    draining: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Starts writing the orders of the stream into `database`, as the
    /// consumer `name` (this server's name: a new one after a restart).
    /// With `replicas` (`--replicas`), a batch is written only once that
    /// many replicas have it: an order whose sale a failover could still
    /// lose is not written yet.
    pub fn start(
        redis: Redis,
        database: Arc<Database>,
        name: String,
        replicas: Replicas,
    ) -> std::io::Result<Writer> {
        let (draining, stop) = (Arc::default(), Arc::default());
        let work = Work {
            redis,
            database,
            name,
            draining: Arc::clone(&draining),
            stop: Arc::clone(&stop),
            replicas,
            redis_down: Cell::new(false),
            database_down: Cell::new(false),
            unreplicated: Cell::new(false),
        };
        let thread = thread::Builder::new()
            .name("orders".into())
            .spawn(move || work.run())?;
        Ok(Writer {
            draining,
            stop,
            thread,
        })
    }

    /// Writes what waits in the stream, for `wait` at most, then stops.
    /// False if entries may be left (the next writer writes them).
    pub fn finish(self, wait: Duration) -> bool {
        self.draining.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + wait;
        while !self.thread.is_finished() && Instant::now() < deadline {
            thread::sleep(DRAIN_POLL);
        }
        self.stop.store(true, Ordering::SeqCst);
        // A writer that panicked is finished too, but wrote nothing since.
        self.thread.is_finished() && self.thread.join().is_ok()
    }
}

struct Work {
    redis: Redis,
    database: Arc<Database>,
    name: String,
    draining: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Whether Redis, or the database, failed last time: the log says
    /// when a failure begins and when it ends, not at each retry.
    redis_down: Cell<bool>,
    database_down: Cell<bool>,
    unreplicated: Cell<bool>,
    replicas: Replicas,
}

impl Work {
    fn run(&self) {
        let mut con: Option<Connection> = None;
        let mut claimed_at: Option<Instant> = None;
        let mut cursor = String::from("0-0");
        while !self.stop.load(Ordering::SeqCst) {
            let Some(c) = con.as_mut() else {
                con = self.connect();
                continue;
            };
            let draining = self.draining.load(Ordering::SeqCst);
            let claim = claimed_at.is_none_or(|at| at.elapsed() >= CLAIM_EVERY);
            let block = if draining { DRAIN_BLOCK } else { BLOCK };
            let read = if claim {
                claimed_at = Some(Instant::now());
                stream::claim(c, &self.name, CLAIM_IDLE.as_millis() as u64, &mut cursor)
            } else {
                stream::read(c, &self.name, block.as_millis() as usize)
            };
            match read {
                Ok(entries) if entries.is_empty() && draining && !claim => return,
                Ok(entries) if entries.is_empty() => {}
                Ok(entries) => {
                    if !self.write(c, &entries) {
                        thread::sleep(RETRY);
                    }
                }
                Err(err) => {
                    self.redis_failed(&err.to_string());
                    con = None;
                }
            }
        }
    }

    /// A connection whose reads may block for a whole `BLOCK`, with the
    /// group in place.
    fn connect(&self) -> Option<Connection> {
        let connected = self.redis.connect().map_err(|err| err.to_string());
        let ready = connected.and_then(|mut con| {
            con.set_read_timeout(Some(BLOCK * 2))
                .map_err(|err| err.to_string())?;
            stream::create_group(&mut con).map_err(|err| err.to_string())?;
            Ok(con)
        });
        match ready {
            Ok(con) => {
                if self.redis_down.replace(false) {
                    warn_timed("the order writer reaches Redis again");
                }
                Some(con)
            }
            Err(err) => {
                self.redis_failed(&err);
                None
            }
        }
    }

    fn redis_failed(&self, err: &str) {
        if !self.redis_down.replace(true) {
            warn_timed(format!(
                "the order writer lost Redis ({err}); trying again every {} ms",
                RETRY.as_millis()
            ));
        }
        thread::sleep(RETRY);
    }

    /// Writes the orders of `entries` in one transaction, then
    /// acknowledges them; an entry that holds no order goes to the dead
    /// letters. False if the database failed: the entries stay pending.
    fn write(&self, con: &mut Connection, entries: &[StreamId]) -> bool {
        let mut orders = Vec::with_capacity(entries.len());
        for entry in entries {
            match stream::order_of(entry) {
                Ok(order) => orders.push(order),
                Err(why) => {
                    warn_timed(format!(
                        "stream entry {} holds no order ({why}); moved to {}",
                        entry.id,
                        crate::sale::keys::ORDERS_DEAD
                    ));
                    if let Err(err) = stream::bury(con, entry, &why) {
                        self.redis_failed(&err.to_string());
                        return true;
                    }
                }
            }
        }
        // WAIT covers this connection's writes: claiming the entries again
        // (replicated, after their XADDs) makes it cover them.
        let ids: Vec<&str> = orders.iter().map(|order| order.entry.as_str()).collect();
        let confirmed = match self.replicas.wanted {
            0 => Ok(()),
            _ => match stream::touch(con, &self.name, &ids) {
                Ok(()) => self.replicas.confirm(con),
                Err(err) => {
                    self.redis_failed(&err.to_string());
                    return true;
                }
            },
        };
        if let Err(unconfirmed) = confirmed {
            if !self.unreplicated.replace(true) {
                warn_timed(format!(
                    "orders wait to be written until the replicas have them: {}",
                    unconfirmed.what
                ));
            }
            return false;
        }
        if self.unreplicated.replace(false) {
            warn_timed("the replicas have the orders again; writing them");
        }
        if let Err(err) = self.database.write(&orders) {
            if !self.database_down.replace(true) {
                warn_timed(format!(
                    "cannot write orders to the database ({err}); they wait in the stream \
                     and are written once it is back"
                ));
            }
            return false;
        }
        if self.database_down.replace(false) {
            warn_timed("orders are written to the database again");
        }
        if let Err(err) = stream::done(con, &ids) {
            // Written but not acknowledged: written again later, inserting nothing.
            self.redis_failed(&err.to_string());
        }
        true
    }
}
