//! The sale kept in Redis: its keys, starting or joining it, and reading it
//! back.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Connection, RedisError, Script};

use crate::keys;
use crate::opening::{Opening, Opens, Schedule};

/// A figure Redis cannot count with: `commodity:num` set by hand to `7.5`,
/// `1e3` or ` 100`. Redis's DECR refuses it, so no purchase can be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadStock {
    pub key: &'static str,
    pub value: String,
}

impl fmt::Display for BadStock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let BadStock { key, value } = self;
        // Debug quotes and escapes it: it is what someone typed into Redis.
        if *key == keys::OPENS_AT {
            return write!(
                f,
                "{key} holds {value:?}, not a time in ms since 1970; remove it \
                 (`redis-cli del {key}`) for a sale open now, or start a fresh sale with \
                 --opens-in or --opens-at"
            );
        }
        write!(
            f,
            "{key} holds {value:?}, not a whole number, so Redis cannot take one from it; \
             set a whole number, as in `redis-cli set {key} 10`"
        )
    }
}

/// A whole number as Redis's DECR reads one: an optional minus and digits,
/// no sign, space or leading zero, within 64 bits.
pub fn whole_number(key: &'static str, raw: &str) -> Result<i64, BadStock> {
    let bad = || BadStock {
        key,
        value: raw.to_string(),
    };
    let number: i64 = raw.parse().map_err(|_| bad())?;
    // `+5`, `007` and `-0` parse, but DECR refuses them.
    (number.to_string() == raw)
        .then_some(number)
        .ok_or_else(bad)
}

/// What reading a sale can meet: Redis failing, or a figure it cannot count with.
#[derive(Debug)]
pub enum ReadError {
    Redis(RedisError),
    BadStock(BadStock),
}

/// Reads a key holding a whole number, such as `commodity:opens`.
fn number_in(key: &'static str, raw: Option<String>) -> Result<Option<i64>, BadStock> {
    raw.map(|raw| whole_number(key, &raw)).transpose()
}

impl From<RedisError> for ReadError {
    fn from(err: RedisError) -> ReadError {
        ReadError::Redis(err)
    }
}

impl From<BadStock> for ReadError {
    fn from(bad: BadStock) -> ReadError {
        ReadError::BadStock(bad)
    }
}

/// A sale this server sells: its id, this server's name in the marks, and
/// when it opens, if not at once.
#[derive(Debug, Clone)]
pub struct Sale {
    pub id: String,
    pub seller: String,
    pub opening: Arc<Schedule>,
}

/// What a fresh start met.
#[derive(Debug)]
pub enum Start {
    /// The sale is set up; it replaced the one described, if any.
    Started {
        sale: Sale,
        replaced: Option<String>,
    },
    /// Other servers sell the sale in Redis: their names, each with how
    /// long its mark has to run.
    OthersSell(Vec<(String, Duration)>),
}

/// The script of a fresh start: the tutorial's two lines, done only when no
/// other server's mark is live (or `replace` is asked), in one step.
static START: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("start.lua")));

/// How to begin: `--join`, else a fresh sale of `stock` (`--stock`),
/// open at `opens` (`--opens-in`, `--opens-at`), that replaces one others
/// still sell only with `replace` (`--replace`).
pub struct Begin {
    pub join: bool,
    pub stock: u32,
    pub opens: Opens,
    pub replace: bool,
    /// Whether a Redis that evicts any key under memory pressure is taken
    /// (`--allow-eviction`), with a warning, rather than refused.
    pub allow_eviction: bool,
}

/// A fresh sale as asked: its stock (`--stock`), its opening, whether it
/// replaces one others still sell (`--replace`), and where its orders go
/// (`orders`, as `Location` names it), recorded with it; and how this
/// server's mark on it lasts and is renewed (`seller`).
pub struct Fresh<'a> {
    pub stock: u32,
    pub opens: Opens,
    pub replace: bool,
    pub orders: &'a str,
    pub mark_lasts: Duration,
    pub mark_every: Duration,
}

/// Starts a fresh sale, as the Python does at import time:
/// `pyredis.set(name='commodity:num', value=500)` and `pyredis.sadd('user:id', 'null')`.
/// It also empties `user:id`, so winners of an earlier run do not count as
/// repeats. Unless `replace`, it does nothing while another server's mark is
/// live: a killed server's mark is waited out (and that said), a running
/// server's is not.
pub fn start(con: &mut Connection, fresh: &Fresh, seller: &str) -> Result<Start, RedisError> {
    let Fresh {
        stock,
        opens,
        replace,
        orders,
        mark_lasts,
        mark_every,
    } = *fresh;
    let sale = Sale {
        id: new_sale_id(),
        seller: seller.to_string(),
        opening: Arc::default(),
    };
    let opens = match opens {
        Opens::Now => String::new(),
        Opens::In(ms) => format!("in:{ms}"),
        Opens::At(ms) => format!("at:{ms}"),
    };
    // When each mark seen first would lapse, to tell a renewed one.
    let mut first_seen: Vec<(String, Instant)> = Vec::new();
    loop {
        let (started, names, lefts, initial, remaining, winners, opening, redis_now): StartReply =
            START
                .key(keys::STOCK)
                .key(keys::INITIAL_STOCK)
                .key(keys::WINNERS)
                .key(keys::SALE_ID)
                .key(keys::SELLERS)
                .key(keys::OPENS_AT)
                .key(keys::ORDERS_DATABASE)
                .arg(stock)
                .arg(&sale.id)
                .arg(&sale.seller)
                .arg(mark_lasts.as_millis() as u64)
                .arg(if replace { "replace" } else { "" })
                .arg(keys::PLACEHOLDER)
                .arg(&opens)
                .arg(orders)
                .invoke(con)?;
        if started {
            sale.opening
                .set(opening.map(|at| Opening::new(at, redis_now)));
            let replaced = remaining.map(|remaining| {
                let of = initial.as_deref().unwrap_or("?");
                format!("winners {winners}, left {remaining} of {of}")
            });
            return Ok(Start::Started { sale, replaced });
        }
        let now = Instant::now();
        let others: Vec<(String, Duration)> = names
            .into_iter()
            .zip(
                lefts
                    .into_iter()
                    .map(|ms| Duration::from_millis(ms.max(0) as u64)),
            )
            .collect();
        if let (true, Some((name, left))) = (first_seen.is_empty(), others.first()) {
            tracing::warn!(
                "another seckill sells the sale in Redis ({name}); waiting up to \
                 {:.1} s to see whether it still does",
                left.as_secs_f64()
            );
            first_seen = others
                .iter()
                .map(|(n, left)| (n.clone(), now + *left))
                .collect();
        }
        // A mark that lapses later than it first would was renewed: that
        // server runs. Renewals come every `mark_every`; a third of it is
        // room for the round trips.
        let renewed = others.iter().any(|(name, left)| {
            let lapses = now + *left;
            let first = first_seen.iter().find(|(seen, _)| seen == name);
            first.is_none_or(|(_, at)| lapses > *at + mark_every / 3)
        });
        if renewed {
            return Ok(Start::OthersSell(others));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a fresh start set up the sale, the others' names and the marks'
/// times left (ms), the sale it replaced (initial stock, stock left,
/// winners), the opening and Redis's clock (ms since 1970).
type StartReply = (
    bool,
    Vec<String>,
    Vec<i64>,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    i64,
);

/// A new sale's id: the start's time in seconds and a random part.
fn new_sale_id() -> String {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{:04x}", since_epoch.as_secs(), fastrand::u16(..))
}

/// Joins the sale in Redis (`--join`), once its figures read right. A sale
/// set up without an id, or without where its orders go (by hand, or by
/// an older seckill), gets this server's.
pub fn join(con: &mut Connection, seller: &str, orders: &str) -> Result<Option<Sale>, ReadError> {
    if Tally::read(con)?.is_none() {
        return Ok(None);
    }
    let (id, opens, (seconds, micros)): (String, Option<String>, (i64, i64)) = redis::pipe()
        .cmd("SET")
        .arg(keys::SALE_ID)
        .arg(new_sale_id())
        .arg("NX")
        .ignore()
        .cmd("SET")
        .arg(keys::ORDERS_DATABASE)
        .arg(orders)
        .arg("NX")
        .ignore()
        .get(keys::SALE_ID)
        .get(keys::OPENS_AT)
        .cmd("TIME")
        .query(con)?;
    let redis_now = seconds * 1000 + micros / 1000;
    let opens = number_in(keys::OPENS_AT, opens)?;
    let opening = Arc::new(Schedule::new(opens.map(|at| Opening::new(at, redis_now))));
    let seller = seller.to_string();
    Ok(Some(Sale {
        id,
        seller,
        opening,
    }))
}

/// Takes this server's mark off the sale, as it stops.
pub fn leave(con: &mut Connection, sale: &Sale) -> Result<(), RedisError> {
    redis::cmd("ZREM")
        .arg(keys::SELLERS)
        .arg(&sale.seller)
        .exec(con)
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
/// whether the placeholder is one of them, and the sale's id.
type Figures = (Option<String>, Option<String>, i64, bool, Option<String>);

/// The commands that read a sale's figures, in one transaction.
fn figures() -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic()
        .get(keys::INITIAL_STOCK)
        .get(keys::STOCK)
        .scard(keys::WINNERS)
        .sismember(keys::WINNERS, keys::PLACEHOLDER)
        .get(keys::SALE_ID);
    pipe
}

/// Runs a transaction of `figures()`, after an UNWATCH: a pooled
/// connection may still WATCH the stock for a purchase that answered early,
/// and a sale made since would abort this EXEC.
fn read<T: redis::FromRedisValue>(
    con: &mut Connection,
    pipe: &redis::Pipeline,
) -> redis::RedisResult<T> {
    redis::cmd("UNWATCH").exec(con)?;
    pipe.query(con)
}

impl Tally {
    /// Reads the sale; `Ok(None)` when Redis holds none.
    pub fn read(con: &mut Connection) -> Result<Option<Tally>, ReadError> {
        let figures: Figures = read(con, &figures())?;
        Ok(Tally::from_figures(figures)?)
    }

    fn from_figures(
        (initial, remaining, members, placeholder, _): Figures,
    ) -> Result<Option<Tally>, BadStock> {
        let (Some(initial), Some(remaining)) = (initial, remaining) else {
            return Ok(None);
        };
        Ok(Some(Tally {
            initial: whole_number(keys::INITIAL_STOCK, &initial)?,
            remaining: whole_number(keys::STOCK, &remaining)?,
            winners: members - i64::from(placeholder),
        }))
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

/// How the sale in Redis ended, read in one transaction: the report at
/// shutdown.
pub enum Ended {
    /// The sale this server sold, and the sorted names of its winners.
    Sold(Tally, Vec<String>),
    /// The same, but a figure cannot be counted with.
    Uncounted(BadStock, Vec<String>),
    /// Another sale replaced it; its id.
    Replaced(Option<String>),
    /// Redis holds no sale.
    Gone,
}

/// Reads how the sale `sale` ended: its figures in one transaction, then
/// its winners a page at a time (a winner another server makes meanwhile
/// may be listed, and not counted).
pub fn ended(con: &mut Connection, sale: &Sale) -> Result<Ended, RedisError> {
    let figures: Figures = read(con, &figures())?;
    let (_, remaining, _, _, id) = &figures;
    if id.as_deref() != Some(sale.id.as_str()) && remaining.is_some() {
        return Ok(Ended::Replaced(id.clone()));
    }
    let names = winners(con)?;
    Ok(match Tally::from_figures(figures) {
        Ok(Some(tally)) => Ended::Sold(tally, names),
        Ok(None) => Ended::Gone,
        Err(bad) => Ended::Uncounted(bad, names),
    })
}

/// Winners read in one reply at most: a big sale's whole set in one
/// SMEMBERS took longer than a reply may (`IO_TIMEOUT`).
const WINNERS_A_PAGE: usize = 1000;

/// The winners of the sale in Redis, the placeholder left out, read a page
/// at a time (SSCAN): each page's reply is small, however big the sale.
pub fn winners(con: &mut Connection) -> Result<Vec<String>, RedisError> {
    let mut names = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg(keys::WINNERS)
            .arg(cursor)
            .arg("COUNT")
            .arg(WINNERS_A_PAGE)
            .query(con)?;
        names.extend(page.into_iter().filter(|id| id != keys::PLACEHOLDER));
        if next == 0 {
            // SSCAN may return a member twice when the set grows meanwhile.
            names.sort_unstable();
            names.dedup();
            return Ok(names);
        }
        cursor = next;
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

    #[test]
    fn whole_numbers_are_what_decr_takes() {
        for (raw, number) in [("0", 0), ("7", 7), ("-3", -3), ("500", 500)] {
            assert_eq!(whole_number(keys::STOCK, raw), Ok(number), "{raw}");
        }
        let max = i64::MAX.to_string();
        assert_eq!(whole_number(keys::STOCK, &max), Ok(i64::MAX));
        for raw in [
            "7.5",
            "1e3",
            " 100",
            "100 ",
            "+5",
            "007",
            "-0",
            "",
            "ten",
            "9223372036854775808",
        ] {
            let bad = whole_number(keys::STOCK, raw).unwrap_err();
            assert_eq!(bad.value, raw);
        }
        let said = whole_number(keys::STOCK, "7.5").unwrap_err().to_string();
        assert!(said.starts_with("commodity:num holds \"7.5\", not a whole number"));
    }
}
