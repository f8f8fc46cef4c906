//! The server's log: a line per purchase on stdout, as the Python prints,
//! and trouble with Redis on stderr, once per outage.

use std::fmt::Display;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::answer::Answer;

pub struct Log {
    quiet: bool,
    redis_down: Condition,
    no_sale: Condition,
}

/// A state that lasts from a failure to the next success: it is logged when
/// it begins and ends, not on each of the thousand requests in between.
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

/// Prints a line on stdout. When stdout is closed (`seckill | head -1`) the
/// line is lost, never the answer: `println!` panics, and a purchase made in
/// Redis was answered 500.
pub fn say(line: impl Display) {
    let _ = writeln!(io::stdout().lock(), "{line}");
}

/// Prints a line on stderr, as `say` does on stdout.
pub fn warn(line: impl Display) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

impl Log {
    pub fn new(quiet: bool) -> Log {
        Log {
            quiet,
            redis_down: Condition::default(),
            no_sale: Condition::default(),
        }
    }

    /// One line for an answered purchase.
    pub fn answer(&self, user_id: &str, answer: Answer) {
        if self.quiet {
            return;
        }
        match answer {
            // Python: print(f'user{userid}Successful Secondary Kill!')
            //         print('Current Remaining Merchandise Number:%d' % ...)
            Answer::Bought { remaining } => {
                say(format!("user {user_id}: bought; {remaining} left"))
            }
            // Python: print('The second kill is over')
            Answer::SoldOut => say(format!("user {user_id}: sold out")),
            // Python: print(f'user%{userid}Commodity has been killed in seconds, no repetition!')
            Answer::Repeat => say(format!("user {user_id}: already bought; one each")),
            Answer::Conflict => say(format!(
                "user {user_id}: lost the race; the stock changed after WATCH"
            )),
        }
    }

    /// One line for a purchase whose reply from Redis was lost.
    pub fn maybe_sold(&self, user_id: &str) {
        if !self.quiet {
            say(format!(
                "user {user_id}: maybe bought; Redis did not confirm in time"
            ));
        }
    }

    /// A request failed on Redis; printed once per outage.
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
    }
}
