//! What the server tells: a line per purchase on stdout, as the Python
//! prints; trouble with Redis on stderr, once per outage; and the counters
//! of `/seckill/stats` and of the report at shutdown.

use std::fmt::Display;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::purchase::{Answer, Outcome};
use crate::sale::Tally;

/// Prints a line on stdout. When stdout is closed (`seckill | head -1`) the
/// line is lost, never the answer: `println!` would panic after the sale.
pub fn say(line: impl Display) {
    let _ = writeln!(io::stdout().lock(), "{line}");
}

/// Prints a line on stderr, as `say` does on stdout.
pub fn warn(line: impl Display) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// The server's log.
#[derive(Default)]
pub struct Log {
    quiet: bool,
    redis_down: Condition,
    no_sale: Condition,
    unreplicated: Condition,
}

/// A state that lasts from a failure to the next success: logged when it
/// begins and ends, not on each of the thousand requests in between.
#[derive(Default)]
struct Condition(AtomicBool);

impl Condition {
    /// True for the failure that begins it.
    fn begins(&self) -> bool {
        !self.0.swap(true, Ordering::Relaxed)
    }

    /// True for the success that ends it.
    fn ends(&self) -> bool {
        self.0.load(Ordering::Relaxed) && self.0.swap(false, Ordering::Relaxed)
    }
}

impl Log {
    /// A log, with or without a line per purchase (`--quiet`).
    pub fn new(quiet: bool) -> Log {
        Log {
            quiet,
            ..Log::default()
        }
    }

    /// One line for an answered purchase.
    pub fn answer(&self, user_id: &str, answer: Answer) {
        if self.quiet {
            return;
        }
        say(match answer {
            // Python: print(f'user{userid}Successful Secondary Kill!')
            //         print('Current Remaining Merchandise Number:%d' % ...)
            Answer::Bought { remaining } => format!("user {user_id}: bought; {remaining} left"),
            // Python: print('The second kill is over')
            Answer::SoldOut => format!("user {user_id}: sold out"),
            // Python: print(f'user%{userid}Commodity has been killed in seconds, no repetition!')
            Answer::Repeat => format!("user {user_id}: already bought; one each"),
            Answer::Conflict => {
                format!("user {user_id}: lost the race; the stock changed after WATCH")
            }
        });
    }

    /// One line for a purchase whose reply from Redis was lost.
    pub fn maybe_sold(&self, user_id: &str) {
        if !self.quiet {
            say(format!(
                "user {user_id}: maybe bought; Redis did not confirm in time"
            ));
        }
    }

    /// A sale the replicas did not confirm: a line for the buyer, and one
    /// on stderr when the replicas begin to lag (until they confirm again).
    pub fn unreplicated(&self, user_id: &str, what: &str) {
        if !self.quiet {
            say(format!("user {user_id}: bought on the master only; {what}"));
        }
        if self.unreplicated.begins() {
            warn(format!(
                "seckill: the replicas do not keep up ({what}); answering 503 unreplicated until they do"
            ));
        }
    }

    /// Redis failed; printed once per outage.
    pub fn redis_failed(&self, what: &str) {
        if self.redis_down.begins() {
            warn(format!(
                "seckill: {what}; answering 503 until Redis works again"
            ));
        }
    }

    /// Redis holds no sale; printed once until one is set up again.
    pub fn no_sale(&self, what: &str) {
        if self.no_sale.begins() {
            warn(format!("seckill: {what}; answering 503 until one is"));
        }
    }

    /// A request succeeded on Redis, so Redis works and holds a sale.
    pub fn redis_worked(&self) {
        if self.redis_down.ends() {
            warn("seckill: Redis works again");
        }
        if self.no_sale.ends() {
            warn("seckill: a sale is set up in Redis again");
        }
        if self.unreplicated.ends() {
            warn("seckill: the replicas confirm the sales again");
        }
    }
}

/// Counters of this server's purchases; every request thread bumps them.
#[derive(Debug, Default)]
pub struct Stats {
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

impl Stats {
    /// Counts an answered purchase. A final -3 is counted only among the
    /// conflicts, which count every aborted EXEC, retried or not.
    pub fn answered(&self, outcome: Outcome) {
        bump(&self.requests, 1);
        bump(&self.conflicts, u64::from(outcome.conflicts));
        match outcome.answer {
            Answer::Bought { .. } => bump(&self.success, 1),
            Answer::SoldOut => bump(&self.sold_out, 1),
            Answer::Repeat => bump(&self.repeat, 1),
            Answer::Conflict => {}
        }
    }

    /// Counts a purchase that got a 4xx or 5xx instead of an answer.
    pub fn failed(&self) {
        bump(&self.requests, 1);
        bump(&self.errors, 1);
    }

    /// Counts a purchase Redis may or may not have made: its reply was lost.
    pub fn maybe_sold(&self) {
        bump(&self.requests, 1);
        bump(&self.maybe_sold, 1);
    }

    /// Counts a sale made on the master that the replicas did not confirm.
    pub fn unreplicated(&self) {
        bump(&self.requests, 1);
        bump(&self.unreplicated, 1);
    }

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

    /// The body of `/seckill/stats`: the sale read from Redis, and these counters.
    pub fn to_json(&self, strategy: &str, sale: &Tally) -> Value {
        let mut stats = json!({
            "strategy": strategy,
            "initial_stock": sale.initial,
            "remaining": sale.remaining,
            "winners": sale.winners,
        });
        for (name, count) in self.read() {
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
        ] = self.read().map(|(_, count)| count);
        format!(
            "answered:      {requests} purchases: {bought} bought, {sold_out} sold out, \
             {repeat} repeat, {errors} errors, {maybe} maybe sold, {unreplicated} unreplicated; \
             {conflicts} conflicts"
        )
    }
}
