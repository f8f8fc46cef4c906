//! Counters of what the server answered since it started; `/seckill/stats`
//! shows them beside the sale read from Redis.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::answer::Answer;
use crate::purchase::{Outcome, Strategy};
use crate::sale::Tally;

/// Lock-free counters: every request thread bumps them at once.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    success: AtomicU64,
    sold_out: AtomicU64,
    repeat: AtomicU64,
    conflicts: AtomicU64,
    errors: AtomicU64,
    maybe_sold: AtomicU64,
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

    /// The body of `/seckill/stats`.
    pub fn to_json(&self, strategy: Strategy, sale: &Tally) -> Value {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        json!({
            "strategy": strategy.name(),
            "initial_stock": sale.initial,
            "remaining": sale.remaining,
            "winners": sale.winners,
            "requests": read(&self.requests),
            "success": read(&self.success),
            "sold_out": read(&self.sold_out),
            "repeat": read(&self.repeat),
            "conflicts": read(&self.conflicts),
            "errors": read(&self.errors),
            "maybe_sold": read(&self.maybe_sold),
        })
    }

    /// One line for the report at shutdown.
    pub fn summary(&self) -> String {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        format!(
            "answered:      {} purchases: {} bought, {} sold out, {} repeat, {} errors, {} maybe sold; {} conflicts",
            read(&self.requests),
            read(&self.success),
            read(&self.sold_out),
            read(&self.repeat),
            read(&self.errors),
            read(&self.maybe_sold),
            read(&self.conflicts),
        )
    }
}
