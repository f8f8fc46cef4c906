//! What the server tells: a line per purchase on stdout, as the Python
//! prints; trouble with Redis on stderr, once per outage; and the counters
//! of `/seckill/stats` and of the report at shutdown.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::answer::{Answer, Outcome};
use crate::beyond::outage::Condition;
use crate::beyond::output::{print, warn_timed};
use crate::sale::Tally;
use crate::trouble::Trouble;

/// What the server tells of its requests: a line per purchase, as the
/// Python prints; a line on stderr when trouble with Redis begins and when
/// it ends; and the counters of `/seckill/stats` and of the report.
#[derive(Default)]
pub struct Report {
    quiet: bool,
    redis_down: Condition,
    no_permission: Condition,
    no_sale: Condition,
    bad_stock: Condition,
    /// Begins once, and never ends: a replaced sale does not come back.
    replaced: Condition,
    unreplicated: Condition,
    counts: Counts,
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
                    Answer::NotOpen { .. } => bump(&counts.not_open, 1),
                    // Counted among the conflicts, above.
                    Answer::Conflict => {}
                }
            }
            Err(trouble) => {
                self.trouble(trouble);
                let counter = match trouble {
                    Trouble::MaybeSold(_) => &counts.maybe_sold,
                    Trouble::Unreplicated { .. } => &counts.unreplicated,
                    Trouble::Busy(_) => &counts.busy,
                    Trouble::Redis(_)
                    | Trouble::NoPermission(_)
                    | Trouble::NoSale
                    | Trouble::Evicted { .. }
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
            print(format!("user {user_id}: {line}"));
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
            Trouble::Busy(_) => return,
            Trouble::Redis(_) | Trouble::MaybeSold(_) => {
                (&self.redis_down, "until Redis works again")
            }
            Trouble::NoPermission(_) => (&self.no_permission, "until it may"),
            Trouble::NoSale | Trouble::Evicted { .. } => (&self.no_sale, "until one is"),
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
        if self.no_permission.ends() {
            warn_timed("the Redis user may do what the sale needs again");
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
        for (name, count) in self.counts.read().named() {
            stats[name] = count.into();
        }
        stats
    }

    /// One line for the report at shutdown.
    pub fn summary(&self) -> String {
        let Counted {
            requests,
            success,
            sold_out,
            repeat,
            errors,
            busy,
            maybe_sold,
            unreplicated,
            conflicts,
            not_open,
        } = self.counts.read();
        // Said only for a sale that opened late, so the tutorial's line stays as it was.
        let early = if not_open > 0 {
            format!("; {not_open} before the opening")
        } else {
            String::new()
        };
        format!(
            "answered:      {requests} purchases: {success} bought, {sold_out} sold out, \
             {repeat} repeat, {errors} errors, {busy} busy, {maybe_sold} maybe sold, \
             {unreplicated} unreplicated; {conflicts} conflicts{early}"
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
    Some(answer.line())
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
    /// 503 busy: no turn at Redis in time, the server overloaded.
    busy: AtomicU64,
    maybe_sold: AtomicU64,
    unreplicated: AtomicU64,
    not_open: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// The counters at one moment.
struct Counted {
    requests: u64,
    success: u64,
    sold_out: u64,
    repeat: u64,
    errors: u64,
    busy: u64,
    maybe_sold: u64,
    unreplicated: u64,
    conflicts: u64,
    not_open: u64,
}

impl Counts {
    fn read(&self) -> Counted {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Counted {
            requests: read(&self.requests),
            success: read(&self.success),
            sold_out: read(&self.sold_out),
            repeat: read(&self.repeat),
            errors: read(&self.errors),
            busy: read(&self.busy),
            maybe_sold: read(&self.maybe_sold),
            unreplicated: read(&self.unreplicated),
            conflicts: read(&self.conflicts),
            not_open: read(&self.not_open),
        }
    }
}

impl Counted {
    /// Each count with its name in `/seckill/stats`.
    fn named(&self) -> [(&'static str, u64); 10] {
        [
            ("requests", self.requests),
            ("success", self.success),
            ("sold_out", self.sold_out),
            ("repeat", self.repeat),
            ("errors", self.errors),
            ("busy", self.busy),
            ("maybe_sold", self.maybe_sold),
            ("unreplicated", self.unreplicated),
            ("conflicts", self.conflicts),
            ("not_open", self.not_open),
        ]
    }
}
