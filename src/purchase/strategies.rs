//! The purchase: the POST branch of the Python `fun_send`, four ways, each
//! one short function on one pooled connection. Read them in order: the
//! first oversells, the tutorial's second does not but leaves stock unsold,
//! the third sells out at the price of retries, the fourth in one step.

use std::sync::LazyLock;

use redis::{Connection, RedisError, RedisResult, Script, Value};

use crate::answer::{Answer, Outcome};
use crate::keys;
use crate::orders::stream;
use crate::sale::whole_number;
use crate::trouble::Trouble;

/// The sale a purchase is made in: its id, this server's name, and
/// whether each sale adds its order to the stream (`--orders`).
pub struct Selling {
    pub id: String,
    pub seller: String,
    pub orders: bool,
}

impl Selling {
    /// Adds the order of `user_id` to `pipe`, unless orders are off.
    fn add_order(&self, pipe: &mut redis::Pipeline, user_id: &str, left: i64) {
        if self.orders {
            stream::add(pipe, &self.id, &self.seller, user_id, left);
        }
    }

    /// A sale made whose order Redis refused (`seckill:orders` replaced by
    /// another type, say): its order goes to the dead letters, and the log
    /// says so; the buyer did buy.
    fn order_refused(&self, con: &mut Connection, user_id: &str, left: i64, why: &RedisError) {
        let why = why.to_string();
        let buried = stream::bury_order(con, (&self.id, &self.seller), user_id, left, &why);
        let to = if buried.is_ok() {
            keys::ORDERS_DEAD
        } else {
            "nowhere"
        };
        tracing::warn!(
            "the order of {user_id} was refused by Redis ({why}); the sale stands, and the \
             order went to {to}"
        );
    }
}

/// The stock of the sale `sale`, from what a strategy read of it: no stock
/// is no sale, another sale's id means ours was replaced, and a stock must
/// be a whole number for DECR to take one from it.
pub fn stock_of(sale: &str, id: Option<String>, stock: Option<String>) -> Result<i64, Trouble> {
    let stock = stock.ok_or(Trouble::NoSale)?;
    if id.as_deref() != Some(sale) {
        return Err(Trouble::Replaced);
    }
    Ok(whole_number(keys::STOCK, &stock)?)
}

/// What the tutorial warns against: read the stock, and if some is left,
/// take one. Between the GET and the DECR other buyers read the same stock,
/// so the last item is sold many times over (and another server's fresh
/// sale could come in between too: naive is the broken one).
pub fn naive(con: &mut Connection, sale: &Selling, user_id: &str) -> Result<Answer, Trouble> {
    let ((id, stock), bought): ((Option<String>, Option<String>), bool) = redis::pipe()
        .mget(&[keys::SALE_ID, keys::STOCK])
        .sismember(keys::WINNERS, user_id)
        .query(con)?;
    if stock_of(&sale.id, id, stock)? < 1 {
        return Ok(Answer::SoldOut);
    }
    if bought {
        return Ok(Answer::Repeat);
    }
    // The buyer is added only after a DECR that worked: a DECR Redis refuses
    // (the stock set to 7.5 meanwhile) must add no winner. Its order follows,
    // after: a crash in between leaves a winner without an order.
    let remaining: i64 = redis::cmd("DECR")
        .arg(keys::STOCK)
        .query(con)
        .map_err(Trouble::after_sending)?;
    let mut add = redis::pipe();
    add.sadd(keys::WINNERS, user_id).ignore();
    sale.add_order(&mut add, user_id, remaining);
    add.exec(con).map_err(Trouble::after_sending)?;
    Ok(Answer::Bought { remaining })
}

/// The tutorial's optimistic lock: WATCH the stock, check it and the buyer,
/// then MULTI/DECR/SADD/EXEC. Redis refuses the EXEC (nil) when anyone changed
/// the stock after our WATCH, so two buyers can never take the last item.
pub fn watch(con: &mut Connection, sale: &Selling, user_id: &str) -> Result<Answer, Trouble> {
    // Python: rpipe.watch('commodity:num')
    //         if int(rpipe.get('commodity:num')) < 1: ...
    //         elif rpipe.sismember('user:id', userid): ...
    // In one write, behind an UNWATCH: an early answer below leaves its
    // pooled connection watching, as the Python does, and a stale WATCH must
    // not abort this purchase's EXEC. The sale's id is watched too: a fresh
    // sale started meanwhile aborts the EXEC.
    let ((id, stock), bought): ((Option<String>, Option<String>), bool) = redis::pipe()
        .cmd("UNWATCH")
        .ignore()
        .cmd("WATCH")
        .arg(keys::STOCK)
        .arg(keys::SALE_ID)
        .ignore()
        .mget(&[keys::SALE_ID, keys::STOCK])
        .sismember(keys::WINNERS, user_id)
        .query(con)?;
    let stock = stock_of(&sale.id, id, stock)?;
    if stock < 1 {
        return Ok(Answer::SoldOut);
    }
    if bought {
        return Ok(Answer::Repeat);
    }
    // Python: rpipe.multi(); rpipe.decr('commodity:num', amount=1);
    //         rpipe.sadd('user:id', userid); reslist = rpipe.execute()
    // The order goes in the same transaction; under WATCH, the stock left is
    // the one read, less one.
    let mut tx = redis::pipe();
    tx.atomic()
        .decr(keys::STOCK, 1)
        .sadd(keys::WINNERS, user_id);
    sale.add_order(&mut tx, user_id, stock - 1);
    // Each reply on its own: Redis runs the rest of an EXEC when one
    // command of it fails, and a sale made is a sale, whatever its order.
    let exec: Option<Vec<RedisResult<Value>>> = tx
        .ignore_errors()
        .query(con)
        .map_err(Trouble::after_sending)?;
    let Some(replies) = exec else {
        return Ok(Answer::Conflict);
    };
    let mut replies = replies.into_iter();
    let (decr, sadd) = (replies.next(), replies.next());
    let remaining = match decr {
        Some(Ok(Value::Int(remaining))) => remaining,
        Some(Err(err)) => return Err(err.into()),
        other => return Err(Trouble::Redis(format!("EXEC answered {other:?} to DECR"))),
    };
    if let Some(Err(err)) = sadd {
        return Err(err.into());
    }
    if let Some(Err(refused)) = replies.next() {
        sale.order_refused(con, user_id, stock - 1, &refused);
    }
    Ok(Answer::Bought { remaining })
}

/// The tutorial's transaction, made again after each lost race, at most
/// `retries` more times. Every lost race means another buyer got an item,
/// so retrying makes progress and the stock sells out.
pub fn watch_retry(
    con: &mut Connection,
    sale: &Selling,
    user_id: &str,
    retries: u32,
) -> Result<Outcome, Trouble> {
    let mut conflicts = 0;
    loop {
        let answer = watch(con, sale, user_id)?;
        if answer == Answer::Conflict {
            conflicts += 1;
            if conflicts <= retries {
                continue;
            }
        }
        return Ok(Outcome { answer, conflicts });
    }
}

/// The script of `lua`, hashed once; the redis crate calls it by its SHA1
/// with EVALSHA and loads it again when Redis answers NOSCRIPT (a restart).
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("purchase.lua")));

/// Loads the script of `lua` into Redis, at start.
pub fn load_script(con: &mut Connection) -> redis::RedisResult<()> {
    SCRIPT.load(con).map(drop)
}

/// The whole purchase as one Lua script that Redis runs without letting any
/// other command in: one round trip, no lock, no lost race.
pub fn lua(con: &mut Connection, sale: &Selling, user_id: &str) -> Result<Answer, Trouble> {
    let reply: Option<Vec<i64>> = SCRIPT
        .key(keys::STOCK)
        .key(keys::WINNERS)
        .key(keys::SALE_ID)
        .key(keys::ORDERS)
        .arg(user_id)
        .arg(&sale.id)
        .arg(&sale.seller)
        .arg(if sale.orders { "orders" } else { "" })
        .invoke(con)
        .map_err(Trouble::after_sending)?;
    match reply.ok_or(Trouble::NoSale)?.as_slice() {
        [1, remaining] => Ok(Answer::Bought {
            remaining: *remaining,
        }),
        [-1] => Ok(Answer::SoldOut),
        [-2] => Ok(Answer::Repeat),
        other => Err(Trouble::Redis(format!(
            "the purchase script answered {other:?}"
        ))),
    }
}
