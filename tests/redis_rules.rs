//! A Redis that cannot hold the sale as configured: a user without the
//! rights the sale needs (ACLs), a Redis that evicts keys, a stream of
//! orders replaced under a running sale. Each is said, with what to do,
//! and nothing is half-written.

mod common;

use std::time::Duration;

use common::orders::{ordered, wait_until_orders_are_winners};
use common::{Redis, Seckill, buy, get, wait_for_within};
use redis::Commands;

/// A user `shop` (password `pw`) with every right but `minus`.
fn user_without(redis: &Redis, minus: &[&str]) {
    let mut setuser = redis::cmd("ACL");
    setuser
        .arg("SETUSER")
        .arg("shop")
        .arg("on")
        .arg(">pw")
        .arg("~*")
        .arg("+@all");
    for command in minus {
        setuser.arg(format!("-{command}"));
    }
    setuser.exec(&mut redis.con()).unwrap();
}

fn as_shop(redis: &Redis) -> String {
    format!("redis://shop:pw@127.0.0.1:{}/0", redis.port)
}

/// A user without XADD (lua, orders on), or WATCH (watch): the start stops
/// before any sale and names what to grant.
#[test]
fn a_user_without_a_right_the_sale_needs_is_refused_at_start() {
    for (strategy, minus, says) in [
        ("lua", "xadd", "XADD on seckill:orders"),
        ("watch", "watch", "WATCH on commodity:num"),
        ("lua", "sadd", "SADD on user:id"),
    ] {
        let redis = Redis::start();
        user_without(&redis, &[minus]);
        let url = as_shop(&redis);
        let (out, _) = Seckill::run_to_end(&redis, &["--redis", &url, "--strategy", strategy]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{strategy} -{minus}: {err}");
        assert!(err.contains(says), "{strategy} -{minus}: {err}");
        assert!(err.contains("ACL SETUSER shop"), "{err}");
        let stock: Option<i64> = redis.con().get("commodity:num").unwrap();
        assert_eq!(stock, None, "{strategy} -{minus}: a sale was started");
    }
}

/// A right taken away while the server sells: /readyz says not ready, with
/// the cause `no_permission` naming it; a purchase gets the same, and a lua
/// purchase without SADD writes nothing (no stock taken, no order).
#[test]
fn a_right_taken_away_is_its_own_cause_and_a_purchase_writes_nothing() {
    let redis = Redis::start();
    user_without(&redis, &[]);
    let url = as_shop(&redis);
    let flags = ["--redis", &url, "--strategy", "lua", "--suffix-max", "0"];
    let server = Seckill::start(&redis, &flags);
    assert_eq!(buy(server.addr, "ann").code(), 1);
    assert_eq!(get(server.addr, "/readyz").status, 200);
    user_without(&redis, &["sadd"]);
    let ready = get(server.addr, "/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["cause"], "no_permission", "{}", ready.text());
    assert!(ready.text().contains("SADD"), "{}", ready.text());
    let reply = buy(server.addr, "bob");
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.json()["cause"], "no_permission", "{}", reply.text());
    let stock: i64 = redis.con().get("commodity:num").unwrap();
    assert_eq!(stock, 499, "the refused purchase took no stock");
    // Once the stream is written, the orders are the winners: only ann's.
    wait_until_orders_are_winners(&redis, Duration::from_secs(10));
    assert_eq!(ordered(&redis), ["ann"], "only ann's order");
    server.wait_for_stderr("answering 503 until it may");
}

/// A Redis that may evict any key is refused at start, with what to set;
/// `--allow-eviction` sells anyway with a warning, and a sale evicted is
/// said to be, not blamed on a restart.
#[test]
fn a_redis_that_evicts_keys_is_refused_and_an_evicted_sale_is_named() {
    let redis = Redis::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let (out, _) = Seckill::run_to_end(&redis, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("maxmemory-policy allkeys-lru"), "{err}");
    assert!(
        err.contains("noeviction") && err.contains("--allow-eviction"),
        "{err}"
    );

    let server = Seckill::start(
        &redis,
        &["--allow-eviction", "--orders", "off", "--suffix-max", "0"],
    );
    server.wait_for_stderr("selling anyway, as --allow-eviction asks");
    assert_eq!(buy(server.addr, "ann").code(), 1);
    // Memory short: Redis evicts keys to make room, the sale's among them.
    let mut con = redis.con();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let _: Result<(), _> = con.set("filler", "x".repeat(1000));
    wait_for_within("the sale evicted", Duration::from_secs(10), || {
        redis.con().exists::<_, bool>("commodity:num") == Ok(false)
    });
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("0")
        .query(&mut con)
        .unwrap();
    let reply = buy(server.addr, "bob");
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.json()["cause"], "no_sale");
    let error = reply.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("evicted") && error.contains("noeviction"),
        "{error}"
    );
    assert!(!error.contains("restarted without its data"), "{error}");
}

/// `seckill:orders` replaced by a string while watch sells: the sale made
/// in the EXEC stands (answered 1, stock and winner), and its order goes to
/// the dead letters with why.
#[test]
fn a_watch_sale_whose_order_redis_refuses_answers_1_and_keeps_the_order() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--strategy", "watch", "--suffix-max", "0"]);
    assert_eq!(buy(server.addr, "ann").code(), 1);
    wait_for_within("ann's order written", Duration::from_secs(10), || {
        redis.con().xlen::<_, usize>("seckill:orders").unwrap_or(1) == 0
    });
    let mut con = redis.con();
    let _: () = con.del("seckill:orders").unwrap();
    let _: () = con.set("seckill:orders", "junk").unwrap();
    let reply = buy(server.addr, "bob");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.code(), 1);
    assert!(con.sismember::<_, _, bool>("user:id", "bob").unwrap());
    let dead: redis::streams::StreamRangeReply = con.xrange_all("seckill:orders:dead").unwrap();
    let entry = dead
        .ids
        .iter()
        .find(|entry| entry.get::<String>("user").as_deref() == Some("bob"))
        .expect("bob's order in the dead letters");
    let why: String = entry.get("why").unwrap();
    assert!(why.contains("WRONGTYPE"), "{why}");
    server.wait_for_stderr("the order of bob was refused by Redis");
}
