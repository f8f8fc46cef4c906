//! What the server tells: a line per purchase on stdout, as the Python
//! prints; trouble with Redis on stderr, once per outage; and the counters
//! of `/seckill/stats` and of the report at shutdown.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::output::{say, warn_timed};
use crate::pool::Trouble;
use crate::purchase::{Answer, Outcome};
use crate::sale::Tally;

/// What the server tells of its requests: a line per purchase, as the
/// Python prints; a line on stderr when trouble with Redis begins and when
/// it ends; and the counters of `/seckill/stats` and of the report.
#[derive(Default)]
pub struct Report {
    quiet: bool,
    redis_down: Condition,
    no_sale: Condition,
    bad_stock: Condition,
    /// Begins once, and never ends: a replaced sale does not come back.
    replaced: Condition,
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
                    Trouble::Busy
                    | Trouble::Redis(_)
                    | Trouble::NoSale
                    | Trouble::BadStock(_)
                    | Trouble::Replaced => &counts.errors,
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
            Trouble::BadStock(_) => (&self.bad_stock, "until it is"),
            Trouble::Replaced => (&self.replaced, "from now on"),
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
        if self.bad_stock.ends() {
            warn_timed("the stock in Redis is a whole number again");
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
