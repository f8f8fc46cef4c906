//! What the server tells: a line per purchase on stdout, as the Python
//! prints; trouble with Redis on stderr, once per outage; and the counters
//! of `/seckill/stats` and of the report at shutdown.

use std::fmt::Display;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, LazyLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::pool::Trouble;
use crate::purchase::{Answer, Outcome};
use crate::sale::Tally;

/// Lines that may wait for stdout or stderr; a log line beyond is dropped.
pub const LINES_WAITING: usize = 10_000;

/// How long the report at the end may wait for stdout to take it.
pub const OUTPUT_WAIT: Duration = Duration::from_secs(5);

/// Prints a line on stdout, unless `LINES_WAITING` lines wait already: then
/// it is dropped, and counted.
pub fn say(line: impl Display) {
    STDOUT.line(line.to_string(), None);
}

/// Prints a line on stderr, as `say` does on stdout.
pub fn warn(line: impl Display) {
    STDERR.line(line.to_string(), None);
}

/// Prints `seckill: {event} ({time of day})` on stderr: when an outage
/// began and ended, so a class can time a failover from the log.
pub fn warn_timed(event: impl Display) {
    warn(format!("seckill: {event} ({})", time_of_day()));
}

/// Prints a line of the report or the audit: it waits for room rather than
/// being dropped, up to `OUTPUT_WAIT` after `since`.
pub fn tell(line: impl Display, since: Instant) {
    STDOUT.line(line.to_string(), Some(since + OUTPUT_WAIT));
}

/// Waits, at most `wait`, until every line has been written.
pub fn finish(wait: Duration) {
    let deadline = Instant::now() + wait;
    STDOUT.written_by(deadline);
    STDERR.written_by(deadline);
}

static STDOUT: LazyLock<Output> = LazyLock::new(|| Output::start(io::stdout()));
static STDERR: LazyLock<Output> = LazyLock::new(|| Output::start(io::stderr()));

/// Lines for stdout or stderr, written by a thread of their own. A request
/// never waits for a terminal or a pipe that is not read (`seckill | less`,
/// or Ctrl-S): writing under the stdout lock, every purchase hung until it
/// was. A closed one (`seckill | head -1`) loses the lines, never an answer.
struct Output {
    queue: SyncSender<String>,
    sent: AtomicU64,
    written: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

impl Output {
    fn start(out: impl Write + Send + 'static) -> Output {
        let (queue, lines) = mpsc::sync_channel::<String>(LINES_WAITING);
        let written = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (count, lost) = (Arc::clone(&written), Arc::clone(&dropped));
        let writer = move || {
            let (mut out, mut told) = (BufWriter::new(out), 0);
            // Writes what waits, then flushes: one write for many lines.
            while let Ok(first) = lines.recv() {
                let mut batch = 0;
                for line in std::iter::once(first).chain(lines.try_iter()) {
                    let _ = writeln!(out, "{line}");
                    batch += 1;
                }
                let lost = lost.load(Ordering::SeqCst);
                if lost > told {
                    let _ = writeln!(
                        out,
                        "seckill: {} lines dropped: nothing read them in time",
                        lost - told
                    );
                    told = lost;
                }
                let _ = out.flush();
                count.fetch_add(batch, Ordering::SeqCst);
            }
        };
        let _ = thread::Builder::new().name("output".into()).spawn(writer);
        let sent = AtomicU64::new(0);
        Output {
            queue,
            sent,
            written,
            dropped,
        }
    }

    /// Queues `line`: at once, or waiting for room until `deadline`.
    fn line(&self, mut line: String, deadline: Option<Instant>) {
        loop {
            match self.queue.try_send(line) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if deadline.is_some_and(|at| Instant::now() < at) => {
                    line = back;
                    thread::sleep(Duration::from_millis(1));
                }
                Err(_) => {
                    self.dropped.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
        }
        self.sent.fetch_add(1, Ordering::SeqCst);
    }

    fn written_by(&self, deadline: Instant) {
        while self.written.load(Ordering::SeqCst) < self.sent.load(Ordering::SeqCst)
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// What the server tells of its requests: a line per purchase, as the
/// Python prints; a line on stderr when trouble with Redis begins and when
/// it ends; and the counters of `/seckill/stats` and of the report.
#[derive(Default)]
pub struct Report {
    quiet: bool,
    redis_down: Condition,
    no_sale: Condition,
    unreplicated: Condition,
    counts: Counts,
}

/// A state that lasts from a failure to a success with no failure for a
/// second: logged when it begins and ends, not on each of the thousand
/// requests in between, nor each time failures and successes mix.
#[derive(Default)]
struct Condition {
    on: AtomicBool,
    /// When the last failure was, in ms since `EPOCH`.
    last_failure: AtomicU64,
}

/// What `Condition` counts its time from.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

const QUIET_TO_END: Duration = Duration::from_secs(1);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

/// The time of day, as `07:40:02.371 UTC`.
fn time_of_day() -> String {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ms = since_epoch.as_millis() % (24 * 3600 * 1000);
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
    format!("{h:02}:{m:02}:{s:02}.{:03} UTC", ms % 1000)
}

impl Condition {
    /// True for the failure that begins it.
    fn begins(&self) -> bool {
        self.last_failure.store(now_ms(), Ordering::Relaxed);
        !self.on.swap(true, Ordering::Relaxed)
    }

    /// True for the success that ends it.
    fn ends(&self) -> bool {
        let quiet = now_ms().saturating_sub(self.last_failure.load(Ordering::Relaxed));
        self.on.load(Ordering::Relaxed)
            && quiet >= QUIET_TO_END.as_millis() as u64
            && self.on.swap(false, Ordering::Relaxed)
    }
}

impl Report {
    /// A report, with or without a line per purchase (`--quiet`).
    pub fn new(quiet: bool) -> Report {
        Report {
            quiet,
            ..Report::default()
        }
    }

    /// Counts and tells a purchase, made or not.
    pub fn purchase(&self, user_id: &str, bought: &Result<Outcome, Trouble>) {
        let counts = &self.counts;
        bump(&counts.requests, 1);
        match bought {
            Ok(outcome) => {
                self.redis_worked();
                bump(&counts.conflicts, u64::from(outcome.conflicts));
                match outcome.answer {
                    Answer::Bought { .. } => {
                        bump(&counts.success, 1);
                        if self.unreplicated.ends() {
                            warn_timed("the replicas confirm the sales again");
                        }
                    }
                    Answer::SoldOut => bump(&counts.sold_out, 1),
                    Answer::Repeat => bump(&counts.repeat, 1),
                    // Counted among the conflicts, above.
                    Answer::Conflict => {}
                }
            }
            Err(trouble) => {
                self.trouble(trouble);
                let counter = match trouble {
                    Trouble::MaybeSold(_) => &counts.maybe_sold,
                    Trouble::Unreplicated { .. } => &counts.unreplicated,
                    Trouble::Busy | Trouble::Redis(_) | Trouble::NoSale => &counts.errors,
                };
                bump(counter, 1);
            }
        }
        // The line is made only when printed (not with --quiet): every request comes here.
        if !self.quiet
            && let Some(line) = buyer_line(bought)
        {
            say(format!("user {user_id}: {line}"));
        }
    }

    /// Counts a purchase refused for its form (4xx).
    pub fn refused(&self) {
        bump(&self.counts.requests, 1);
        bump(&self.counts.errors, 1);
    }

    /// Trouble with Redis, told on stderr when it begins. A crowd is not a
    /// failure.
    pub fn trouble(&self, trouble: &Trouble) {
        let (condition, until) = match trouble {
            Trouble::Busy => return,
            Trouble::Redis(_) | Trouble::MaybeSold(_) => {
                (&self.redis_down, "until Redis works again")
            }
            Trouble::NoSale => (&self.no_sale, "until one is"),
            Trouble::Unreplicated { .. } => (&self.unreplicated, "unreplicated until they do"),
        };
        // The words only for the line that begins it, not for each request of an outage.
        if condition.begins() {
            let what = match trouble {
                Trouble::MaybeSold(err) => format!("Redis did not confirm a purchase: {err}"),
                Trouble::Unreplicated { what, .. } => {
                    format!("the replicas do not keep up ({what})")
                }
                _ => trouble.to_string(),
            };
            warn_timed(format!("{what}; answering 503 {until}"));
        }
    }

    /// Redis answered, so it works and holds a sale.
    pub fn redis_worked(&self) {
        if self.redis_down.ends() {
            warn_timed("Redis works again");
        }
        if self.no_sale.ends() {
            warn_timed("a sale is set up in Redis again");
        }
    }

    /// The body of `/seckill/stats`: the sale read from Redis, and this
    /// server's counters.
    pub fn to_json(&self, strategy: &str, sale: &Tally) -> Value {
        let mut stats = json!({
            "strategy": strategy,
            "initial_stock": sale.initial,
            "remaining": sale.remaining,
            "winners": sale.winners,
        });
        for (name, count) in self.counts.read() {
            stats[name] = count.into();
        }
        stats
    }

    /// One line for the report at shutdown.
    pub fn summary(&self) -> String {
        let [
            requests,
            bought,
            sold_out,
            repeat,
            errors,
            maybe,
            unreplicated,
            conflicts,
        ] = self.counts.read().map(|(_, count)| count);
        format!(
            "answered:      {requests} purchases: {bought} bought, {sold_out} sold out, \
             {repeat} repeat, {errors} errors, {maybe} maybe sold, {unreplicated} unreplicated; \
             {conflicts} conflicts"
        )
    }
}

/// The line a purchase prints, as the Python's prints; none for a 503 that
/// sold nothing.
fn buyer_line(bought: &Result<Outcome, Trouble>) -> Option<String> {
    let answer = match bought {
        Ok(outcome) => outcome.answer,
        Err(Trouble::MaybeSold(_)) => {
            return Some("maybe bought; Redis did not confirm in time".into());
        }
        Err(Trouble::Unreplicated { what, .. }) => {
            return Some(format!("bought on the master only; {what}"));
        }
        Err(_) => return None,
    };
    Some(match answer {
        // Python: print(f'user{userid}Successful Secondary Kill!')
        //         print('Current Remaining Merchandise Number:%d' % ...)
        Answer::Bought { remaining } => format!("bought; {remaining} left"),
        // Python: print('The second kill is over')
        Answer::SoldOut => "sold out".into(),
        // Python: print(f'user%{userid}Commodity has been killed in seconds, no repetition!')
        Answer::Repeat => "already bought; one each".into(),
        Answer::Conflict => "lost the race; the stock changed after WATCH".into(),
    })
}

/// Counters of this server's purchases; every request thread bumps them.
/// A final -3 is counted only among the conflicts, which count every
/// aborted EXEC, retried or not.
#[derive(Debug, Default)]
struct Counts {
    requests: AtomicU64,
    success: AtomicU64,
    sold_out: AtomicU64,
    repeat: AtomicU64,
    conflicts: AtomicU64,
    errors: AtomicU64,
    maybe_sold: AtomicU64,
    unreplicated: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Counts {
    fn read(&self) -> [(&'static str, u64); 8] {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        [
            ("requests", read(&self.requests)),
            ("success", read(&self.success)),
            ("sold_out", read(&self.sold_out)),
            ("repeat", read(&self.repeat)),
            ("errors", read(&self.errors)),
            ("maybe_sold", read(&self.maybe_sold)),
            ("unreplicated", read(&self.unreplicated)),
            ("conflicts", read(&self.conflicts)),
        ]
    }
}
