//! The server's log: a line per purchase on stdout, as the Python prints,
//! and trouble with Redis on stderr, once per outage.

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
            Answer::Bought { remaining } => println!("user {user_id}: bought; {remaining} left"),
            // Python: print('The second kill is over')
            Answer::SoldOut => println!("user {user_id}: sold out"),
            // Python: print(f'user%{userid}Commodity has been killed in seconds, no repetition!')
            Answer::Repeat => println!("user {user_id}: already bought; one each"),
            Answer::Conflict => {
                println!("user {user_id}: lost the race; the stock changed after WATCH")
            }
        }
    }

    /// A request failed on Redis; printed once per outage.
    pub fn redis_failed(&self, what: &str) {
        if self.redis_down.begins() {
            eprintln!("seckill: {what}; answering 503 until Redis works again");
        }
    }

    /// Redis holds no sale; printed once until one is set up again.
    pub fn no_sale(&self, what: &str) {
        if self.no_sale.begins() {
            eprintln!("seckill: {what}; answering 503 until one is");
        }
    }

    /// A request succeeded on Redis, so Redis works and holds a sale.
    pub fn redis_worked(&self) {
        if self.redis_down.ends() {
            eprintln!("seckill: Redis works again");
        }
        if self.no_sale.ends() {
            eprintln!("seckill: a sale is set up in Redis again");
        }
    }
}
