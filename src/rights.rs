//! The rights a sale needs of the Redis user of `--redis` (Redis ACLs),
//! each a command on the keys it touches: checked at start and by
//! `/readyz`, so that a user without one is told which, and what to grant,
//! before a purchase meets it.

use redis::{Cmd, Connection};

use crate::beyond::rights;
use crate::keys;

/// What this server will ask of Redis: with `watch`, WATCH (the watch
/// strategies); with `orders`, the stream's commands; with `replicas`, WAIT.
/// The Lua scripts' own commands are in the list: Redis checks them as the
/// script runs them.
fn needed(orders: bool, replicas: bool) -> Vec<(String, Cmd)> {
    let command = |name: &str, args: &[&str]| {
        let mut cmd = redis::cmd(name);
        for arg in args {
            cmd.arg(*arg);
        }
        let on = args.first().filter(|key| key.contains(':'));
        let named = on.map_or(name.to_string(), |key| format!("{name} on {key}"));
        (named, cmd)
    };
    let (stock, winners, sellers) = (keys::STOCK, keys::WINNERS, keys::SELLERS);
    let mut needed = vec![
        // The purchase itself: Python's decr and sadd. A write first: it
        // tells a Redis whose writes are paused at once (`rights::refused`).
        command("DECR", &[stock]),
        command("SADD", &[winners, "x"]),
        // Starting, joining and reading the sale; the mark.
        command("GET", &[stock]),
        command("MGET", &[keys::SALE_ID, stock]),
        command("SET", &[keys::SALE_ID, "x", "NX"]),
        command("SET", &[keys::INITIAL_STOCK, "1"]),
        command("SET", &[keys::OPENS_AT, "1"]),
        command("DEL", &[winners]),
        command("SCARD", &[winners]),
        command("SISMEMBER", &[winners, "x"]),
        command("SSCAN", &[winners, "0"]),
        command("ZADD", &[sellers, "0", "x"]),
        command("ZREM", &[sellers, "x"]),
        command("ZRANGE", &[sellers, "0", "-1"]),
        command("ZREMRANGEBYSCORE", &[sellers, "-inf", "0"]),
        command("TIME", &[]),
        command(
            "EVALSHA",
            &["0000000000000000000000000000000000000000", "0"],
        ),
        command("SCRIPT", &["LOAD", "return 1"]),
        command("UNWATCH", &[]),
    ];
    if orders {
        let (stream, group) = (keys::ORDERS, keys::ORDERS_GROUP);
        needed.extend([
            command("XADD", &[stream, "*", "user", "x"]),
            command("XGROUP", &["CREATE", stream, group, "0", "MKSTREAM"]),
            command(
                "XREADGROUP",
                &["GROUP", group, "x", "COUNT", "1", "STREAMS", stream, ">"],
            ),
            command("XACK", &[stream, group, "0-1"]),
            command("XDEL", &[stream, "0-1"]),
            command("XAUTOCLAIM", &[stream, group, "x", "0", "0-0"]),
            command("XCLAIM", &[stream, group, "x", "0", "0-1"]),
            command("XLEN", &[stream]),
            command("XRANGE", &[stream, "-", "+", "COUNT", "1"]),
            command("TYPE", &[stream]),
            command("XADD", &[keys::ORDERS_DEAD, "*", "why", "x"]),
            command("SET", &[keys::ORDERS_DATABASE, "x"]),
        ]);
    }
    if replicas {
        needed.push(command("WAIT", &["0", "0"]));
    }
    needed
}

/// Why the user of `con` cannot sell: the commands it may not run, and
/// what to grant; None when it may run them all.
pub fn missing(
    con: &mut Connection,
    watch: bool,
    orders: bool,
    replicas: bool,
) -> redis::RedisResult<Option<String>> {
    let watched: &[&str] = if watch {
        &[keys::STOCK, keys::SALE_ID]
    } else {
        &[]
    };
    let refused = rights::refused(con, &needed(orders, replicas), watched)?;
    if refused.is_empty() {
        return Ok(None);
    }
    let user: String = redis::cmd("ACL")
        .arg("WHOAMI")
        .query(con)
        .unwrap_or_else(|_| "USER".to_string());
    Ok(Some(format!(
        "the Redis user `{user}` may not run {}: grant the rights the sale needs (as an \
         admin: redis-cli ACL SETUSER {user} +@all ~commodity:* ~user:id ~seckill:*, or \
         just those named), or give --redis a user that has them",
        refused.join(", ")
    )))
}
