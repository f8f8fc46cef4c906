//! The Redis side of the orders: each sale adds an entry to the stream
//! `seckill:orders` in the same atomic step as the sale; writers read it
//! as a consumer group, and acknowledge (and delete) an entry only once its
//! order is committed to the database.

use redis::streams::{
    StreamAutoClaimReply, StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply,
};
use redis::{Connection, Pipeline, RedisResult, Value};

use super::Order;
use crate::keys::{self, ORDERS_GROUP as GROUP};

/// The fields of an order's entry, in the order they are written: the
/// user, the sale, the stock left after it and the server that sold it.
/// src/purchase/purchase.lua writes the same (tests/orders_kept.rs holds the
/// two side by side).
pub const FIELDS: [&str; 4] = ["user", "sale", "left", "seller"];

/// Entries read at most at once: one database transaction.
pub const BATCH: usize = 500;

/// Adds the order of `user` to `pipe`: XADD with what an order needs. Its
/// reply, the entry's id, comes with the pipeline's.
pub fn add(pipe: &mut Pipeline, sale: &str, seller: &str, user: &str, left: i64) {
    add_to(pipe, keys::ORDERS, sale, seller, user, left);
}

fn add_to(pipe: &mut Pipeline, stream: &str, sale: &str, seller: &str, user: &str, left: i64) {
    let [user_field, sale_field, left_field, seller_field] = FIELDS;
    pipe.cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg(user_field)
        .arg(user)
        .arg(sale_field)
        .arg(sale)
        .arg(left_field)
        .arg(left)
        .arg(seller_field)
        .arg(seller);
}

/// Puts the order of a sale made whose entry Redis refused (`why`) in the
/// dead letters, so that it is not lost without a trace.
pub fn bury_order(
    con: &mut Connection,
    (sale, seller): (&str, &str),
    user: &str,
    left: i64,
    why: &str,
) -> RedisResult<()> {
    let mut pipe = redis::pipe();
    add_to(&mut pipe, keys::ORDERS_DEAD, sale, seller, user, left);
    pipe.arg("why").arg(why);
    pipe.exec(con)
}

/// Creates the group if missing, reading the stream from its start.
pub fn create_group(con: &mut Connection) -> RedisResult<()> {
    let created = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(keys::ORDERS)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .exec(con);
    match created {
        Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// Entries this consumer was given and has not acknowledged (after a
/// database failure); else new ones, waiting up to `block_ms` for some.
pub fn read(con: &mut Connection, consumer: &str, block_ms: usize) -> RedisResult<Vec<StreamId>> {
    let own = StreamReadOptions::default()
        .group(GROUP, consumer)
        .count(BATCH);
    let pending = read_pending(con, consumer)?;
    if !pending.is_empty() {
        return Ok(pending);
    }
    let new = own.block(block_ms);
    Ok(entries(con_read(con, &[">"], &new)?))
}

/// New entries only, waiting up to `block_ms` for some: while nothing this
/// consumer was given is left unacknowledged, a round trip less a batch.
pub fn read_new(
    con: &mut Connection,
    consumer: &str,
    block_ms: usize,
) -> RedisResult<Vec<StreamId>> {
    let new = StreamReadOptions::default()
        .group(GROUP, consumer)
        .count(BATCH)
        .block(block_ms);
    Ok(entries(con_read(con, &[">"], &new)?))
}

/// Entries this consumer was given and has not acknowledged.
fn read_pending(con: &mut Connection, consumer: &str) -> RedisResult<Vec<StreamId>> {
    let own = StreamReadOptions::default()
        .group(GROUP, consumer)
        .count(BATCH);
    Ok(entries(con_read(con, &["0"], &own)?))
}

fn con_read(
    con: &mut Connection,
    ids: &[&str],
    options: &StreamReadOptions,
) -> RedisResult<StreamReadReply> {
    use redis::Commands;
    con.xread_options(&[keys::ORDERS], ids, options)
}

fn entries(reply: StreamReadReply) -> Vec<StreamId> {
    reply.keys.into_iter().flat_map(|key| key.ids).collect()
}

/// Takes over the entries another writer was given and left for
/// `idle_ms` (it crashed, or was killed): they become this consumer's. Each
/// call scans on from `cursor` (where the last one stopped, `0-0` at first
/// and after a full pass), so every pending entry is reached in turn.
pub fn claim(
    con: &mut Connection,
    consumer: &str,
    idle_ms: u64,
    cursor: &mut String,
) -> RedisResult<Vec<StreamId>> {
    let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
        .arg(keys::ORDERS)
        .arg(GROUP)
        .arg(consumer)
        .arg(idle_ms)
        .arg(cursor.as_str())
        .arg("COUNT")
        .arg(BATCH)
        .query(con)?;
    *cursor = reply.next_stream_id;
    Ok(reply.claimed)
}

/// Claims this consumer's own entries again: a write Redis replicates,
/// so a WAIT after it covers the entries' XADDs even on a connection that
/// has written nothing else yet.
pub fn touch(con: &mut Connection, consumer: &str, ids: &[&str]) -> RedisResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    redis::cmd("XCLAIM")
        .arg(keys::ORDERS)
        .arg(GROUP)
        .arg(consumer)
        .arg(0)
        .arg(ids)
        .arg("JUSTID")
        .exec(con)
}

/// Refuses a `seckill:orders` that is not a stream: every sale's XADD would
/// fail after the sale was made.
pub fn check_key(con: &mut Connection) -> Result<(), String> {
    let kind: String = redis::cmd("TYPE")
        .arg(keys::ORDERS)
        .query(con)
        .map_err(|err| err.to_string())?;
    match kind.as_str() {
        "stream" | "none" => Ok(()),
        other => Err(format!(
            "{} holds a {other}, not a stream of orders: remove it (redis-cli del {}) or give \
             --orders off",
            keys::ORDERS,
            keys::ORDERS
        )),
    }
}

/// The order an entry holds, or why it holds none.
pub fn order_of(entry: &StreamId) -> Result<Order, String> {
    let field = |name: &str| -> Result<String, String> {
        match entry.map.get(name) {
            Some(Value::BulkString(bytes)) => {
                String::from_utf8(bytes.clone()).map_err(|_| format!("its {name} is not UTF-8"))
            }
            _ => Err(format!("it has no {name}")),
        }
    };
    let [user, sale, left, seller] = FIELDS;
    let left_value = field(left)?;
    Ok(Order {
        entry: entry.id.clone(),
        user: field(user)?,
        sale: field(sale)?,
        left: left_value
            .parse()
            .map_err(|_| format!("its {left}, {left_value:?}, is not a number"))?,
        seller: field(seller)?,
    })
}

/// Moves an entry that holds no order to the dead-letter stream, with why.
pub fn bury(con: &mut Connection, entry: &StreamId, why: &str) -> RedisResult<()> {
    let mut fields: Vec<(String, Vec<u8>)> = vec![
        ("entry".into(), entry.id.clone().into_bytes()),
        ("why".into(), why.as_bytes().to_vec()),
    ];
    for (name, value) in &entry.map {
        if let Value::BulkString(bytes) = value {
            fields.push((format!("field:{name}"), bytes.clone()));
        }
    }
    let mut add = redis::cmd("XADD");
    add.arg(keys::ORDERS_DEAD).arg("*");
    for (name, value) in fields {
        add.arg(name).arg(value);
    }
    add.exec(con)?;
    done(con, &[entry.id.as_str()])
}

/// Acknowledges entries and deletes them, in one step (an entry
/// acknowledged but not deleted would count as waiting for ever): written,
/// they are not needed again, and the stream does not grow across sales.
pub fn done(con: &mut Connection, ids: &[&str]) -> RedisResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    redis::pipe()
        .atomic()
        .cmd("XACK")
        .arg(keys::ORDERS)
        .arg(GROUP)
        .arg(ids)
        .ignore()
        .cmd("XDEL")
        .arg(keys::ORDERS)
        .arg(ids)
        .ignore()
        .exec(con)
}

/// The orders in the stream: how many wait (read or not, unwritten), the
/// age in ms of the oldest (by Redis's clock), and how many dead letters.
pub struct Waiting {
    pub count: u64,
    pub oldest_ms: Option<u64>,
    pub dead: u64,
}

/// What waits in the stream now.
pub fn waiting(con: &mut Connection) -> RedisResult<Waiting> {
    type Reply = (u64, Vec<(String, Value)>, (u64, u64), u64);
    let (count, first, (seconds, micros), dead): Reply = redis::pipe()
        .cmd("XLEN")
        .arg(keys::ORDERS)
        .cmd("XRANGE")
        .arg(keys::ORDERS)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .cmd("TIME")
        .cmd("XLEN")
        .arg(keys::ORDERS_DEAD)
        .query(con)?;
    let now = seconds * 1000 + micros / 1000;
    let oldest_ms = first
        .first()
        .and_then(|(id, _)| Some(now.saturating_sub(entry_ms(id)?)));
    Ok(Waiting {
        count,
        oldest_ms,
        dead,
    })
}

/// When an entry was added, in ms since 1970 by Redis's clock: the first
/// part of its id (`1764000000000-0`).
pub fn entry_ms(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

/// The buyers whose orders wait in the stream, read a page at a time.
pub fn waiting_buyers(con: &mut Connection) -> RedisResult<Vec<String>> {
    let mut buyers = Vec::new();
    let mut from = "-".to_string();
    loop {
        let page: StreamRangeReply = redis::cmd("XRANGE")
            .arg(keys::ORDERS)
            .arg(&from)
            .arg("+")
            .arg("COUNT")
            .arg(BATCH)
            .query(con)?;
        let Some(last) = page.ids.last() else {
            return Ok(buyers);
        };
        from = format!("({}", last.id);
        buyers.extend(page.ids.iter().filter_map(|entry| entry.get(FIELDS[0])));
    }
}
