//! What the server tells: a line per purchase on stdout, as the Python
//! prints; trouble with Redis on stderr, once per outage; and the counters
//! of `/seckill/stats` and of the report at shutdown.

use crate::answer::{Answer, Outcome};
use crate::beyond::outage::Condition;
use crate::beyond::output::print;
use crate::stats::{Count, Counted, Counts};
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
        counts.bump(Count::Requests, 1);
        match bought {
            Ok(outcome) => {
                self.redis_worked();
                counts.bump(Count::Conflicts, u64::from(outcome.conflicts));
                match outcome.answer {
                    Answer::Bought { .. } => {
                        counts.bump(Count::Success, 1);
                        if self.unreplicated.ends() {
                            tracing::info!("the replicas confirm the sales again");
                        }
                    }
                    Answer::SoldOut => counts.bump(Count::SoldOut, 1),
                    Answer::Repeat => counts.bump(Count::Repeat, 1),
                    Answer::NotOpen { .. } => counts.bump(Count::NotOpen, 1),
                    // Counted among the conflicts, above.
                    Answer::Conflict => {}
                }
            }
            Err(trouble) => {
                self.trouble(trouble);
                let counter = match trouble {
                    Trouble::MaybeSold(_) => Count::MaybeSold,
                    Trouble::Unreplicated { .. } => Count::Unreplicated,
                    Trouble::Busy(_) => Count::Busy,
                    Trouble::Redis(_)
                    | Trouble::NoPermission(_)
                    | Trouble::NoSale
                    | Trouble::Evicted { .. }
                    | Trouble::BadStock(_)
                    | Trouble::Replaced => Count::Errors,
                };
                counts.bump(counter, 1);
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
        self.counts.bump(Count::Requests, 1);
        self.counts.bump(Count::Errors, 1);
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
            tracing::warn!("{what}; answering 503 {until}");
        }
    }

    /// Redis answered, so it works and holds a sale.
    pub fn redis_worked(&self) {
        if self.redis_down.ends() {
            tracing::info!("Redis works again");
        }
        if self.no_permission.ends() {
            tracing::info!("the Redis user may do what the sale needs again");
        }
        if self.no_sale.ends() {
            tracing::info!("a sale is set up in Redis again");
        }
        if self.bad_stock.ends() {
            tracing::info!("the stock in Redis is a whole number again");
        }
    }

    /// This server's counters at this moment.
    pub fn counted(&self) -> Counted {
        self.counts.read()
    }

    /// One line for the report at shutdown.
    pub fn summary(&self) -> String {
        let counted = self.counts.read();
        let [
            requests,
            success,
            sold_out,
            repeat,
            errors,
            busy,
            maybe_sold,
            unreplicated,
        ] = [
            Count::Requests,
            Count::Success,
            Count::SoldOut,
            Count::Repeat,
            Count::Errors,
            Count::Busy,
            Count::MaybeSold,
            Count::Unreplicated,
        ]
        .map(|count| counted.get(count));
        let (conflicts, not_open) = (counted.get(Count::Conflicts), counted.get(Count::NotOpen));
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
