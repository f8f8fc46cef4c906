//! The four purchase strategies under load, alone and several servers to one
//! Redis, and the stats that report them.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::thread;

use common::health::sale_in;
use common::process::seckill_output;
use common::relay::Relay;
use common::{Redis, Reply, Seckill, buy, get, load};
use redis::Commands;

const STOCK: i64 = 500;

/// Winners and remaining stock as Redis holds them.
fn sale(redis: &Redis) -> (HashSet<String>, i64) {
    let mut con = redis.con();
    let mut winners: HashSet<String> = con.smembers("user:id").unwrap();
    assert!(winners.remove("null"), "the placeholder stays");
    (winners, con.get("commodity:num").unwrap())
}

/// The ids answered 1, checking that every request got an answer.
fn bought(replies: Vec<std::io::Result<Reply>>) -> HashSet<String> {
    let mut ids = HashSet::new();
    for reply in replies {
        let reply = reply.expect("every request is answered");
        assert_eq!(reply.status, 200, "{}", reply.text());
        if reply.code() == 1 {
            assert!(ids.insert(reply.user_id()), "one answer 1 per id");
        }
    }
    ids
}

/// 3000 buyers with distinct ids, 100 at a time, on one server.
fn crowd(addr: SocketAddr) -> HashSet<String> {
    bought(load(addr, 3000, 100, |i| format!("buyer{i}-")))
}

/// Nothing lost: every id answered 1 is in user:id and every member of
/// user:id was answered 1, whatever the strategy.
#[test]
fn every_strategy_tells_exactly_its_winners() {
    for strategy in ["naive", "watch", "watch-retry", "lua"] {
        let redis = Redis::start();
        let server = Seckill::start(&redis, &["--quiet", "--strategy", strategy]);
        let told_bought = crowd(server.addr);
        let (winners, remaining) = sale(&redis);
        assert_eq!(
            told_bought, winners,
            "{strategy}: answered 1 exactly when in user:id"
        );
        // Each winner took one item, oversold or not.
        assert_eq!(winners.len() as i64 + remaining, STOCK, "{strategy}");
        match strategy {
            "lua" | "watch-retry" => assert_eq!(remaining, 0, "{strategy} sells exactly the stock"),
            "watch" => assert!(remaining >= 0, "watch oversold: remaining {remaining}"),
            _ => {} // naive may oversell; the next test makes it
        }
    }
}

#[test]
fn naive_oversells_and_the_audit_says_so() {
    let redis = Redis::start();
    let server = Seckill::start(
        &redis,
        // No order writer: its blocking read would count among the held clients.
        &[
            "--strategy",
            "naive",
            "--stock",
            "1",
            "--suffix-max",
            "0",
            "--orders",
            "off",
        ],
    );
    // Both buyers read a stock of 1 while writes are held; then both decrement.
    let held = redis.hold_writes();
    let buyers: Vec<_> = ["ann", "bob"]
        .map(|id| thread::spawn(move || buy(server.addr, id).code()))
        .into_iter()
        .collect();
    redis.wait_for_held_clients(2);
    drop(held);
    for buyer in buyers {
        assert_eq!(
            buyer.join().unwrap(),
            1,
            "both were told they bought the one item"
        );
    }
    let audit = seckill_output(&["--audit", "--redis", &redis.url(), "--orders", "off"]);
    let report = String::from_utf8_lossy(&audit.stdout);
    assert_eq!(audit.status.code(), Some(2), "{report}");
    assert_eq!(
        report,
        "initial stock: 1\nwinners:       2\nremaining:     -1\nverdict:       OVERSOLD by 1\n"
    );
    let (_, out) = server.stop();
    assert!(out.contains("verdict:       OVERSOLD by 1"), "{out}");
}

#[test]
fn watch_retry_wins_the_race_it_lost_and_counts_it() {
    for (retries, code, remaining) in [("5", 1, 3), ("0", -3, 4)] {
        let redis = Redis::start();
        // The relay holds the purchase's first EXEC while the stock changes.
        let relay = Relay::start(redis.port);
        let flags = [
            "--strategy",
            "watch-retry",
            "--retries",
            retries,
            "--orders",
            "off",
            "--redis",
            &relay.url(),
        ];
        let server = Seckill::start(
            &redis,
            &[&flags[..], &["--stock", "5", "--suffix-max", "0"]].concat(),
        );
        relay.hold_next(b"$4\r\nEXEC\r\n");
        let buyer = thread::spawn(move || buy(server.addr, "ann").code());
        relay.wait_held();
        let _: () = redis.con().set("commodity:num", 4).unwrap();
        relay.release();
        assert_eq!(buyer.join().unwrap(), code, "--retries {retries}");
        let stats = get(server.addr, "/seckill/stats").json();
        assert_eq!(stats["conflicts"], 1, "--retries {retries}");
        assert_eq!(stats["remaining"], remaining, "--retries {retries}");
    }
}

#[test]
fn stats_agree_with_redis_after_a_load() {
    for strategy in ["naive", "watch", "watch-retry", "lua"] {
        let redis = Redis::start();
        let server = Seckill::start(&redis, &["--quiet", "--strategy", strategy]);
        // Distinct ids: with naive, two buyers drawing the same random id at
        // once would both be told 1 for one member of user:id.
        let replies = load(server.addr, 1000, 100, |i| format!("b{i}-"));
        let mut codes = [0_u64; 4];
        for reply in replies {
            let code = reply.expect("answered").code();
            codes[(-code).max(0) as usize] += 1; // 1 -> [0], -1 -> [1], -2 -> [2], -3 -> [3]
        }
        let [success, sold_out, repeat, lost] = codes;

        let stats = get(server.addr, "/seckill/stats").json();
        let fields: HashSet<&str> = stats
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let sale_fields = ["strategy", "initial_stock", "remaining", "winners"];
        let more = [
            "opens_at",
            "opens_in_ms",
            "orders_written",
            "orders_counted_ms_ago",
            "orders_waiting",
            "oldest_waiting_ms",
            "orders_dead",
            "waiting_for_redis",
            "longest_wait_ms",
        ];
        let expected: HashSet<&str> = [&sale_fields[..], &common::OUTCOMES, &more]
            .concat()
            .into_iter()
            .collect();
        assert_eq!(fields, expected, "{strategy}");
        let (winners, remaining) = sale(&redis);
        assert_eq!(stats["strategy"], strategy);
        assert!(stats["opens_at"].is_null(), "open from its start: {stats}");
        assert_eq!(stats["not_open"], 0, "{stats}");
        assert_eq!(stats["initial_stock"], STOCK);
        assert_eq!(stats["remaining"], remaining, "{strategy}");
        assert_eq!(stats["winners"], winners.len(), "{strategy}");
        assert_eq!(stats["requests"], 1000, "{strategy}");
        assert_eq!(stats["success"], success, "{strategy}");
        assert_eq!(stats["success"], winners.len(), "{strategy}");
        assert_eq!(stats["sold_out"], sold_out, "{strategy}");
        assert_eq!(stats["repeat"], repeat, "{strategy}");
        assert_eq!(stats["errors"], 0, "{strategy}");
        assert_eq!(stats["busy"], 0, "{strategy}");
        assert_eq!(stats["waiting_for_redis"], 0, "{strategy}");
        let conflicts = stats["conflicts"].as_u64().unwrap();
        assert!(conflicts >= lost, "{strategy}: every -3 is a conflict");
        if matches!(strategy, "naive" | "lua") {
            assert_eq!(conflicts, 0, "{strategy} has no WATCH to abort");
        }
        if strategy == "watch" {
            assert_eq!(conflicts, lost, "watch answers -3 for each conflict");
        }
    }
}

/// `--join` serves the sale in Redis as it is: a sale begun by one server
/// goes on through a second that joins it, the first winners stay (a
/// repeat on the joined server too), and the stock counts down from where
/// it was, through both.
#[test]
fn a_joined_server_keeps_the_sale_and_its_winners() {
    let redis = Redis::start();
    let first = Seckill::start(&redis, &["--stock", "10", "--suffix-max", "0"]);
    let early = ["a1", "a2", "a3", "a4"];
    for id in early {
        assert_eq!(buy(first.addr, id).code(), 1, "{id}");
    }
    let before = sale_in(&mut redis.con());
    let joined = Seckill::start(&redis, &["--join", "--suffix-max", "0"]);
    assert_eq!(
        sale_in(&mut redis.con()),
        before,
        "joining changed the sale"
    );
    for id in early {
        assert_eq!(
            buy(joined.addr, id).code(),
            -2,
            "{id} bought before the join"
        );
    }
    for id in ["b1", "b2", "b3"] {
        assert_eq!(buy(joined.addr, id).code(), 1, "{id}");
    }
    assert_eq!(buy(first.addr, "c1").code(), 1);
    let (winners, remaining, initial) = sale_in(&mut redis.con());
    let all = ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "c1"];
    assert_eq!(winners, all.map(String::from).into_iter().collect());
    assert_eq!((remaining, initial), (2, 10));
    let stats = get(joined.addr, "/seckill/stats").json();
    assert_eq!(
        (stats["winners"].clone(), stats["remaining"].clone()),
        (8.into(), 2.into())
    );
}

#[test]
fn several_servers_on_one_redis_never_oversell() {
    for strategy in ["watch", "watch-retry", "lua"] {
        let redis = Redis::start();
        let flags = ["--quiet", "--strategy", strategy];
        let first = Seckill::start(&redis, &flags);
        let joined = [&flags[..], &["--join"]].concat();
        let others = [
            Seckill::start(&redis, &joined),
            Seckill::start(&redis, &joined),
        ];
        let addrs = [first.addr, others[0].addr, others[1].addr];
        let told_bought: HashSet<String> = thread::scope(|scope| {
            let loads: Vec<_> = addrs
                .iter()
                .enumerate()
                .map(|(n, &addr)| {
                    scope.spawn(move || bought(load(addr, 1000, 34, |i| format!("s{n}b{i}-"))))
                })
                .collect();
            loads
                .into_iter()
                .flat_map(|load| load.join().unwrap())
                .collect()
        });
        let (winners, remaining) = sale(&redis);
        assert!(
            remaining >= 0,
            "{strategy}: oversold, remaining {remaining}"
        );
        assert_eq!(winners.len() as i64 + remaining, STOCK, "{strategy}");
        assert_eq!(told_bought, winners, "{strategy}");
        if strategy != "watch" {
            assert_eq!(remaining, 0, "{strategy} sells out");
        }
    }
}

#[test]
fn join_needs_a_sale_to_join() {
    let redis = Redis::start();
    let out = seckill_output(&["--join", "--bind", "127.0.0.1:0", "--redis", &redis.url()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no sale in Redis") && err.contains("without --join"),
        "{err}"
    );
}

#[test]
fn lua_loads_its_script_again_after_redis_forgets_it() {
    let redis = Redis::start();
    let server = Seckill::start(
        &redis,
        &["--strategy", "lua", "--stock", "3", "--suffix-max", "0"],
    );
    assert_eq!(buy(server.addr, "ann").code(), 1);
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .exec(&mut redis.con())
        .unwrap();
    assert_eq!(
        buy(server.addr, "bob").code(),
        1,
        "NOSCRIPT, then loaded again"
    );
    assert_eq!(buy(server.addr, "bob").code(), -2);
    let mut con = redis.con();
    assert_eq!(con.get::<_, i64>("commodity:num").unwrap(), 1);
    let calls: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut con)
        .unwrap();
    // Scripts are called by SHA1 (seckill's others too: its start and the
    // renewal of its mark), never sent whole.
    assert!(calls.contains("cmdstat_evalsha:"), "{calls}");
    assert!(
        !calls.contains("cmdstat_eval:"),
        "never sent whole: {calls}"
    );
    let sha: String = redis::cmd("EVAL")
        .arg("return redis.sha1hex(ARGV[1])")
        .arg(0)
        .arg(include_str!("../src/purchase/purchase.lua"))
        .query(&mut con)
        .unwrap();
    let loaded: Vec<bool> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&sha)
        .query(&mut con)
        .unwrap();
    assert_eq!(loaded, [true], "loaded again after the flush");
}
