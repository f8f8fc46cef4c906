//! The sale kept in Redis: its keys, starting it, and reading it back.

use std::fmt;

use redis::{Connection, RedisResult};

/// The Redis keys of a sale: the only place their names are written.
pub mod keys {
    /// The stock left. Python: `pyredis.set(name='commodity:num', value=500)`.
    pub const STOCK: &str = "commodity:num";

    /// The set of user ids that bought. Python: `pyredis.sadd('user:id', 'null')`.
    pub const WINNERS: &str = "user:id";

    /// The member the tutorial puts in `user:id` at start; it is not a winner.
    pub const PLACEHOLDER: &str = "null";

    /// The stock the sale started with, so an audit can tell sold from
    /// oversold after the server is gone. The Python only printed it.
    pub const INITIAL_STOCK: &str = "commodity:initial";
}

/// Starts a fresh sale, as the Python does at import time:
/// `pyredis.set(name='commodity:num', value=500)` and `pyredis.sadd('user:id', 'null')`.
/// It also empties `user:id`, so winners of an earlier run do not count as
/// repeats. Returns the sale it replaced, if any.
pub fn start(con: &mut Connection, stock: u32) -> RedisResult<Option<Tally>> {
    let replaced = Tally::read(con)?;
    redis::pipe()
        .atomic()
        .set(keys::STOCK, stock)
        .set(keys::INITIAL_STOCK, stock)
        .del(keys::WINNERS)
        .sadd(keys::WINNERS, keys::PLACEHOLDER)
        .exec(con)?;
    Ok(replaced)
}

/// The figures of a sale, read in one transaction so they agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub initial: i64,
    pub remaining: i64,
    /// Members of `user:id` but the placeholder.
    pub winners: i64,
}

/// The replies of `figures()`: initial stock, stock, members of `user:id`,
/// and whether the placeholder is one of them.
type Figures = (Option<i64>, Option<i64>, i64, bool);

/// The commands that read a sale's figures, in one transaction.
fn figures() -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic()
        .get(keys::INITIAL_STOCK)
        .get(keys::STOCK)
        .scard(keys::WINNERS)
        .sismember(keys::WINNERS, keys::PLACEHOLDER);
    pipe
}

impl Tally {
    /// Reads the sale; `Ok(None)` when Redis holds none.
    pub fn read(con: &mut Connection) -> RedisResult<Option<Tally>> {
        let figures: Figures = figures().query(con)?;
        Ok(Tally::from_figures(figures))
    }

    fn from_figures((initial, remaining, members, placeholder): Figures) -> Option<Tally> {
        Some(Tally {
            initial: initial?,
            remaining: remaining?,
            winners: members - i64::from(placeholder),
        })
    }

    /// Whether the sale went right, and if not, how.
    pub fn verdict(&self) -> Verdict {
        let Tally {
            initial,
            remaining,
            winners,
        } = *self;
        if winners > initial || remaining < 0 {
            Verdict::Oversold((winners - initial).max(-remaining))
        } else if winners + remaining != initial {
            Verdict::Mismatch(winners + remaining)
        } else if remaining > 0 {
            Verdict::Leftover(remaining)
        } else {
            Verdict::SoldOut
        }
    }
}

/// The sale and the sorted names of its winners, read in one transaction:
/// the report at shutdown. `Ok(None)` when Redis holds no sale.
pub fn report(con: &mut Connection) -> RedisResult<Option<(Tally, Vec<String>)>> {
    let (initial, remaining, members, placeholder, mut names): (_, _, _, _, Vec<String>) =
        figures().smembers(keys::WINNERS).query(con)?;
    let Some(tally) = Tally::from_figures((initial, remaining, members, placeholder)) else {
        return Ok(None);
    };
    names.retain(|id| id != keys::PLACEHOLDER);
    names.sort_unstable();
    Ok(Some((tally, names)))
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

/// The figures in a few lines; the last says whether the sale went right.
impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "initial stock: {}", self.initial)?;
        writeln!(f, "winners:       {}", self.winners)?;
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

    fn tally(initial: i64, remaining: i64, winners: i64) -> Tally {
        Tally {
            initial,
            remaining,
            winners,
        }
    }

    #[test]
    fn tells_each_ending() {
        assert_eq!(tally(5, 0, 5).verdict(), Verdict::SoldOut);
        assert_eq!(tally(5, 2, 3).verdict(), Verdict::Leftover(2));
        assert_eq!(tally(5, -2, 7).verdict(), Verdict::Oversold(2));
        assert_eq!(tally(5, -1, 5).verdict(), Verdict::Oversold(1));
        assert_eq!(tally(5, 0, 6).verdict(), Verdict::Oversold(1));
        assert_eq!(tally(5, 1, 3).verdict(), Verdict::Mismatch(4));
        assert!(tally(5, -2, 7).verdict().went_wrong());
        assert!(!tally(5, 2, 3).verdict().went_wrong());
        assert!(
            tally(5, -2, 7)
                .to_string()
                .ends_with("verdict:       OVERSOLD by 2")
        );
    }
}
