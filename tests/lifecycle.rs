//! Start-up and shutdown: the sale set up in Redis, the winners printed at the end.

mod common;

use std::process::Command;

use common::{Redis, Seckill, buy};
use redis::Commands;

#[test]
fn start_up_sets_the_stock_and_empties_the_winners() {
    let redis = Redis::start();
    let mut con = redis.con();
    let _: () = con.set("commodity:num", 3).unwrap();
    let _: () = con.sadd("user:id", &["old-winner", "null"][..]).unwrap();

    let _server = Seckill::start(&redis, &["--stock", "42"]);
    assert_eq!(con.get::<_, i64>("commodity:num").unwrap(), 42);
    assert_eq!(con.get::<_, i64>("commodity:initial").unwrap(), 42);
    let winners: Vec<String> = con.smembers("user:id").unwrap();
    assert_eq!(winners, ["null"], "only the tutorial's sentinel");
}

#[test]
fn shutdown_prints_the_winners_and_the_stock() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--stock", "3", "--suffix-max", "0"]);
    for id in ["ann", "bob"] {
        assert_eq!(buy(server.addr, id).code(), 1);
    }
    let (status, out) = server.stop();
    assert!(status.success(), "{status:?}\n{out}");
    let report = out.split_once("Winners (2):\n").expect(&out).1;
    assert_eq!(
        report,
        "ann\nbob\n\
         initial stock: 3\n\
         winners:       2\n\
         remaining:     1\n\
         verdict:       LEFTOVER: 1 unsold\n\
         answered:      2 purchases: 2 bought, 0 sold out, 0 repeat, 0 errors; 0 conflicts\n"
    );
}

#[test]
fn an_unreachable_redis_is_one_clear_line_and_a_failure() {
    let dead = {
        let redis = Redis::start();
        redis.url()
    };
    let out = Command::new(env!("CARGO_BIN_EXE_seckill"))
        .args(["--bind", "127.0.0.1:0", "--redis", &dead])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("cannot reach Redis at {dead}")),
        "{err}"
    );
    assert!(err.contains("refused"), "{err}");
    assert!(err.contains("redis-server"), "says how to start it: {err}");
}

#[test]
fn redis_url_comes_from_the_environment_too() {
    let redis = Redis::start();
    let out = Command::new(env!("CARGO_BIN_EXE_seckill"))
        .args(["--bind", "not-an-address"])
        .env("REDIS_URL", redis.url())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot listen on not-an-address"), "{err}");
    let stock: i64 = redis.con().get("commodity:num").unwrap();
    assert_eq!(stock, 500, "the sale was set up in the Redis of REDIS_URL");
}
