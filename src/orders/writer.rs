//! The order writer: a thread that turns stream entries into database
//! rows, counts the orders the database holds for this server's sale (so
//! that no request ever waits on the database), and says when the
//! database stops answering and when it answers again.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use redis::Connection;
use redis::streams::StreamId;

use super::database::Database;
use super::stream;
use crate::beyond::output::span;
use crate::beyond::renewal::Renewal;
use crate::beyond::replicas::Replicas;
use crate::keys;
use crate::pool::Redis;

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

/// The shortest time between two batches, unless the last was full (a
/// backlog): orders that come meanwhile wait to go in the next, so that a
/// batch is a few dozen orders under load and not one (a commit and its
/// sync, and three round trips, for each order cost a third of a
/// purchase's time).
const BATCH_EVERY: Duration = Duration::from_millis(50);

/// How long a writer rests after Redis or the database failed.
const RETRY: Duration = Duration::from_millis(500);

/// How often the orders are counted afresh while none is written, and while
/// they are: in between, each batch adds what it wrote. A count of every
/// order after each batch cost the writer a scan of the sale's orders each
/// time, a tenth of the server's time at a thousand purchases a second.
const COUNT_EVERY: Duration = Duration::from_secs(1);
const COUNT_EVERY_WHILE_WRITING: Duration = Duration::from_secs(5);

/// How long the database may take to answer before the log says it does
/// not: more than its own timeouts, so only a database frozen whole, or
/// cut off by the network, is told.
const STALLED: Duration = Duration::from_secs(5);

/// How often the watch on the database looks.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// The orders the database holds for this server's sale, as the writer last
/// counted them, and how the writer is getting on with the database: what
/// `/seckill/stats` and the report at the end show.
#[derive(Debug, Default)]
pub struct Written {
    count: AtomicU64,
    /// When the orders were last counted.
    counted: Mutex<Option<Instant>>,
    /// Since when the writer has waited for the database, if it does.
    waiting: Mutex<Option<Instant>>,
}

impl Written {
    /// The orders counted, and how long ago; none before the first count.
    pub fn read(&self) -> Option<(u64, Duration)> {
        let counted = *lock(&self.counted);
        counted.map(|at| (self.count.load(Ordering::Relaxed), at.elapsed()))
    }

    fn counted(&self, count: u64) {
        self.count.store(count, Ordering::Relaxed);
        *lock(&self.counted) = Some(Instant::now());
    }

    /// `more` orders written since the last count.
    fn added(&self, more: u64) {
        let mut counted = lock(&self.counted);
        if counted.is_some() {
            self.count.fetch_add(more, Ordering::Relaxed);
            *counted = Some(Instant::now());
        }
    }

    /// How long the writer has waited for the database so far, if it does.
    fn waited(&self) -> Option<Duration> {
        lock(&self.waiting).map(|since| since.elapsed())
    }

    /// Runs `call` on the database, marked as waited for meanwhile.
    fn waiting_for<T>(&self, call: impl FnOnce() -> T) -> T {
        *lock(&self.waiting) = Some(Instant::now());
        let answer = call();
        *lock(&self.waiting) = None;
        answer
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The writer: a thread that turns stream entries into database rows.
pub struct Writer {
    draining: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    watch: Renewal,
    /// What the database holds, as counted.
    pub written: Arc<Written>,
}

impl Writer {
    /// Starts writing the orders of the stream into `database`, as the
    /// consumer `name` (this server's name: a new one after a restart),
    /// counting those of the sale `counted` if given. With `replicas`
    /// (`--replicas`), a batch is written only once that many replicas have
    /// it: an order whose sale a failover could still lose is not written yet.
    pub fn start(
        redis: Redis,
        database: Arc<Database>,
        name: String,
        replicas: Replicas,
        counted: Option<String>,
    ) -> std::io::Result<Writer> {
        let (draining, stop) = (Arc::default(), Arc::default());
        let written = Arc::new(Written::default());
        let watch = watch_the_database(&database, &written)?;
        let work = Work {
            redis,
            database,
            name,
            draining: Arc::clone(&draining),
            stop: Arc::clone(&stop),
            replicas,
            counted,
            written: Arc::clone(&written),
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
            watch,
            written,
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
        self.watch.stop();
        // A writer that panicked is finished too, but wrote nothing since.
        self.thread.is_finished() && self.thread.join().is_ok()
    }
}

/// Says when the writer has waited `STALLED` for the database, and when it
/// answers again: a database frozen whole holds the writer's call with no
/// error to tell.
fn watch_the_database(database: &Database, written: &Arc<Written>) -> std::io::Result<Renewal> {
    let (written, location) = (Arc::clone(written), database.location.to_string());
    let told = Cell::new(false);
    Renewal::start("orders-watch", WATCH_EVERY, move || {
        match written.waited() {
            Some(waited) if waited >= STALLED && !told.replace(true) => tracing::warn!(
                "the database of orders ({location}) has not answered for {}: is it frozen, \
                 or cut off by the network? Orders wait in the stream",
                span(STALLED)
            ),
            None if told.replace(false) => {
                tracing::info!("the database of orders ({location}) answers again");
            }
            _ => {}
        }
        true
    })
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
    /// The sale whose orders are counted, if any.
    counted: Option<String>,
    written: Arc<Written>,
}

impl Work {
    fn run(&self) {
        let mut con: Option<Connection> = None;
        let mut claimed_at: Option<Instant> = None;
        let (mut counted_at, mut writing): (Option<Instant>, bool) = (None, false);
        // Entries given to this writer may be left unacknowledged (at the
        // start, after a failure): they are read first, until none is.
        let mut own_left = true;
        // When the last batch was written, if it was not a full one.
        let mut written_at: Option<Instant> = None;
        let mut cursor = String::from("0-0");
        while !self.stop.load(Ordering::SeqCst) {
            let every = if writing {
                COUNT_EVERY_WHILE_WRITING
            } else {
                COUNT_EVERY
            };
            if counted_at.is_none_or(|at| at.elapsed() >= every) {
                self.count();
                counted_at = Some(Instant::now());
            }
            let Some(c) = con.as_mut() else {
                con = self.connect();
                continue;
            };
            let draining = self.draining.load(Ordering::SeqCst);
            let claim = claimed_at.is_none_or(|at| at.elapsed() >= CLAIM_EVERY);
            let block = if draining { DRAIN_BLOCK } else { BLOCK };
            if let Some(wait) = written_at
                .map(|at| BATCH_EVERY.saturating_sub(at.elapsed()))
                .filter(|wait| !wait.is_zero() && !draining)
            {
                thread::sleep(wait);
            }
            let read = if claim {
                claimed_at = Some(Instant::now());
                stream::claim(c, &self.name, CLAIM_IDLE.as_millis() as u64, &mut cursor)
            } else if own_left {
                let read = stream::read(c, &self.name, block.as_millis() as usize);
                own_left = false;
                read
            } else {
                stream::read_new(c, &self.name, block.as_millis() as usize)
            };
            match read {
                Ok(entries) if entries.is_empty() && draining && !claim => {
                    // The last count, once every order is in.
                    self.count();
                    return;
                }
                Ok(entries) if entries.is_empty() => writing = false,
                Ok(entries) => {
                    writing = true;
                    written_at = (entries.len() < stream::BATCH).then(Instant::now);
                    if !self.write(c, &entries) {
                        own_left = true;
                        thread::sleep(RETRY);
                    }
                }
                Err(err) => {
                    self.redis_failed(&err.to_string());
                    own_left = true;
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
                    tracing::info!("the order writer reaches Redis again");
                }
                Some(con)
            }
            Err(err) => {
                self.redis_failed(&err);
                None
            }
        }
    }

    /// Counts the orders of the sale, if one is counted; a failure keeps
    /// the last count, which then shows its age.
    fn count(&self) {
        let Some(sale) = &self.counted else { return };
        if let Ok(count) = self.written.waiting_for(|| self.database.count(sale)) {
            self.written.counted(count);
        }
    }

    fn redis_failed(&self, err: &str) {
        if !self.redis_down.replace(true) {
            tracing::warn!(
                "the order writer lost Redis ({err}); trying again every {} ms",
                RETRY.as_millis()
            );
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
                    tracing::warn!(
                        "stream entry {} holds no order ({why}); moved to {}",
                        entry.id,
                        keys::ORDERS_DEAD
                    );
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
                tracing::warn!(
                    "orders wait to be written until the replicas have them: {}",
                    unconfirmed.what
                );
            }
            return false;
        }
        if self.unreplicated.replace(false) {
            tracing::info!("the replicas have the orders again; writing them");
        }
        let started = Instant::now();
        let new = match self.written.waiting_for(|| self.database.write(&orders)) {
            Ok(new) => {
                tracing::debug!(
                    "wrote a batch of {} orders ({new} new) in {:?}",
                    orders.len(),
                    started.elapsed()
                );
                new
            }
            Err(err) => {
                if !self.database_down.replace(true) {
                    tracing::warn!(
                        "cannot write orders to the database ({err}); they wait in the stream \
                         and are written once it is back"
                    );
                }
                return false;
            }
        };
        if self.database_down.replace(false) {
            tracing::info!("orders are written to the database again");
        }
        if let Err(err) = stream::done(con, &ids) {
            // Written but not acknowledged: written again later, inserting nothing.
            self.redis_failed(&err.to_string());
        }
        // Counted once out of the stream, so that no order is both waiting
        // and written in the stats. Orders of other sales: the next count tells.
        let counted = self.counted.as_deref();
        if orders
            .iter()
            .all(|order| Some(order.sale.as_str()) == counted)
        {
            self.written.added(new);
        }
        true
    }
}
