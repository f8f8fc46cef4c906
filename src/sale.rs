//! The sale kept in Redis: starting it, and reading it back for an audit.

use std::fmt;

use redis::{Connection, RedisResult};

use crate::keys;

/// Starts a fresh sale, as the Python does at import time:
/// `pyredis.set(name='commodity:num', value=500)` and `pyredis.sadd('user:id', 'null')`.
/// It also empties `user:id`, so winners of an earlier run do not count as repeats.
pub fn start(con: &mut Connection, stock: u32) -> RedisResult<()> {
    redis::pipe()
        .atomic()
        .set(keys::STOCK, stock)
        .set(keys::INITIAL_STOCK, stock)
        .del(keys::WINNERS)
        .sadd(keys::WINNERS, keys::SENTINEL)
        .exec(con)
}

/// The state of a sale, read in one transaction so the figures agree.
#[derive(Debug)]
pub struct Audit {
    pub initial: i64,
    pub remaining: i64,
    /// Members of `user:id` but the sentinel, sorted.
    pub winners: Vec<String>,
}

impl Audit {
    /// Reads the sale; `Ok(None)` when Redis holds none.
    pub fn read(con: &mut Connection) -> RedisResult<Option<Audit>> {
        let (initial, remaining, mut winners): (Option<i64>, Option<i64>, Vec<String>) =
            redis::pipe()
                .atomic()
                .get(keys::INITIAL_STOCK)
                .get(keys::STOCK)
                .smembers(keys::WINNERS)
                .query(con)?;
        let (Some(initial), Some(remaining)) = (initial, remaining) else {
            return Ok(None);
        };
        winners.retain(|id| id != keys::SENTINEL);
        winners.sort_unstable();
        Ok(Some(Audit {
            initial,
            remaining,
            winners,
        }))
    }

    /// Whether the sale went right, and if not, how.
    pub fn verdict(&self) -> Verdict {
        let winners = self.winners.len() as i64;
        if winners > self.initial || self.remaining < 0 {
            Verdict::Oversold((winners - self.initial).max(-self.remaining))
        } else if winners + self.remaining != self.initial {
            Verdict::Mismatch(winners + self.remaining)
        } else if self.remaining > 0 {
            Verdict::Leftover(self.remaining)
        } else {
            Verdict::SoldOut
        }
    }
}

/// How a sale ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every item went to exactly one winner.
    SoldOut,
    /// Items left unsold: what the WATCH lock leaves under load.
    Leftover(i64),
    /// More winners than items: what a sale without a lock suffers.
    Oversold(i64),
    /// Winners plus remaining is this, not the initial stock: an item was
    /// taken with no winner recorded, or the other way round.
    Mismatch(i64),
}

impl Verdict {
    /// True for the two ways a sale must never end.
    pub fn went_wrong(&self) -> bool {
        matches!(self, Verdict::Oversold(_) | Verdict::Mismatch(_))
    }
}

/// The audit in a few lines; the last says whether the sale went right.
impl fmt::Display for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "initial stock: {}", self.initial)?;
        writeln!(f, "winners:       {}", self.winners.len())?;
        writeln!(f, "remaining:     {}", self.remaining)?;
        write!(f, "verdict:       ")?;
        match self.verdict() {
            Verdict::SoldOut => write!(f, "SOLD OUT exactly"),
            Verdict::Leftover(unsold) => write!(f, "LEFTOVER: {unsold} unsold"),
            Verdict::Oversold(over) => write!(f, "OVERSOLD by {over}"),
            Verdict::Mismatch(total) => write!(
                f,
                "MISMATCH: winners + remaining = {total}, not {}",
                self.initial
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit(initial: i64, remaining: i64, winners: usize) -> Audit {
        let winners = (0..winners).map(|i| format!("w{i}")).collect();
        Audit {
            initial,
            remaining,
            winners,
        }
    }

    #[test]
    fn tells_each_ending() {
        assert_eq!(audit(5, 0, 5).verdict(), Verdict::SoldOut);
        assert_eq!(audit(5, 2, 3).verdict(), Verdict::Leftover(2));
        assert_eq!(audit(5, -2, 7).verdict(), Verdict::Oversold(2));
        assert_eq!(audit(5, -1, 5).verdict(), Verdict::Oversold(1));
        assert_eq!(audit(5, 0, 6).verdict(), Verdict::Oversold(1));
        assert_eq!(audit(5, 1, 3).verdict(), Verdict::Mismatch(4));
        assert!(audit(5, -2, 7).verdict().went_wrong());
        assert!(!audit(5, 2, 3).verdict().went_wrong());
        assert!(
            audit(5, -2, 7)
                .to_string()
                .ends_with("verdict:       OVERSOLD by 2")
        );
    }
}
