//! A sale that opens at a set time (`--opens-in`, `--opens-at`): before it,
//! every purchase, from any server of the sale and from ab, answers -4 and
//! buys nothing; after it, the sale goes on as the tutorial's.

mod common;

use std::time::{Duration, Instant};

use common::tools::{ab, assert_ab_clean};
use common::{FORM, Redis, Seckill, buy, get, wait_for_within};
use redis::Commands;

/// Long enough for a second server and ab to run before the opening, on
/// busy cores and a debug build.
const OPENS_IN_S: u64 = 8;

#[test]
fn before_the_opening_every_purchase_is_minus_4_and_after_it_a_sale() {
    let redis = Redis::start();
    let started = Instant::now();
    let opens_in = OPENS_IN_S.to_string();
    let first = Seckill::start(
        &redis,
        &[
            "--strategy",
            "lua",
            "--suffix-max",
            "0",
            "--opens-in",
            &opens_in,
        ],
    );
    first.wait_for_stdout("the sale opens at");
    // A server joining the sale agrees on the opening, read from Redis.
    let joined = Seckill::start(
        &redis,
        &["--join", "--strategy", "watch", "--suffix-max", "0"],
    );
    joined.wait_for_stdout("the sale opens at");

    for (server, id) in [(&first, "ann"), (&joined, "bob")] {
        let reply = buy(server.addr, id);
        assert_eq!(reply.status, 200, "{}", reply.text());
        let answer = reply.json();
        assert_eq!(answer["response_num"], -4, "{answer}");
        let wait = answer["opens_in_ms"].as_u64().expect("opens_in_ms");
        assert!(wait > 0 && wait <= OPENS_IN_S * 1000, "{answer}");
    }
    let postfile = concat!(env!("CARGO_MANIFEST_DIR"), "/postfile");
    let url = format!("http://{}/seckill", first.addr);
    let report = ab(&["-n", "200", "-c", "20", "-p", postfile, "-T", FORM, &url]);
    let early = started.elapsed() < Duration::from_secs(OPENS_IN_S);
    assert!(early, "ab ran past the opening; give OPENS_IN_S more time");
    assert_ab_clean(&report, 200);
    let members: usize = redis.con().scard("user:id").unwrap();
    assert_eq!(
        members, 1,
        "nothing bought before the opening: only the placeholder"
    );
    let stats = get(first.addr, "/seckill/stats").json();
    assert_eq!(stats["not_open"], 201, "{stats}");
    assert_eq!(stats["success"], 0, "{stats}");
    assert!(
        stats["opens_at"]
            .as_str()
            .is_some_and(|at| at.contains('T')),
        "{stats}"
    );
    assert!(
        stats["opens_in_ms"].as_u64().is_some_and(|ms| ms > 0),
        "{stats}"
    );

    // At the opening, both servers sell.
    wait_for_within("the opening", Duration::from_secs(OPENS_IN_S + 5), || {
        buy(first.addr, "ann").code() == 1
    });
    assert!(started.elapsed() >= Duration::from_secs(OPENS_IN_S) - Duration::from_millis(500));
    assert_eq!(buy(joined.addr, "bob").code(), 1);
    let stats = get(joined.addr, "/seckill/stats").json();
    assert_eq!(stats["opens_in_ms"], 0, "{stats}");
    assert_eq!(stats["winners"], 2, "{stats}");
}

#[test]
fn a_time_of_day_or_rfc3339_sets_the_opening_and_a_past_one_is_refused() {
    let redis = Redis::start();
    let at = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc3339();
    let server = Seckill::start(&redis, &["--opens-at", &at]);
    server.wait_for_stdout("the sale opens at");
    let answer = buy(server.addr, "ann").json();
    assert_eq!(answer["response_num"], -4, "{answer}");
    let wait = answer["opens_in_ms"].as_u64().unwrap();
    assert!((50_000..=61_000).contains(&wait), "{answer}");

    let (out, _) = Seckill::run_to_end(&redis, &["--opens-at", "2000-01-01T00:00:00Z"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("is past; give a time to come"), "{stderr}");
}

/// The opening is kept in Redis: changed there (`redis-cli set
/// commodity:opens MS`) while servers run, it reaches each of them, and a
/// server that joins after, within a second; they all open together.
#[test]
fn an_opening_changed_in_redis_reaches_every_server_within_a_second() {
    let redis = Redis::start();
    let flags = ["--strategy", "lua", "--suffix-max", "0"];
    let first = Seckill::start(&redis, &[&flags[..], &["--opens-in", "600"]].concat());
    let joined = Seckill::start(&redis, &[&flags[..], &["--join"]].concat());
    // Three seconds from now, by Redis's clock.
    let (seconds, micros): (i64, i64) = redis::cmd("TIME").query(&mut redis.con()).unwrap();
    let opens = seconds * 1000 + micros / 1000 + 3000;
    let _: () = redis.con().set("commodity:opens", opens).unwrap();
    let late = Seckill::start(&redis, &[&flags[..], &["--join"]].concat());
    let servers = [&first, &joined, &late];
    wait_for_within(
        "every server to know the new opening",
        Duration::from_secs(2),
        || {
            servers.iter().all(|server| {
                let stats = get(server.addr, "/seckill/stats").json();
                stats["opens_in_ms"].as_u64().is_some_and(|ms| ms <= 3000)
            })
        },
    );
    for (n, server) in servers.iter().enumerate() {
        assert_eq!(buy(server.addr, &format!("early{n}")).code(), -4);
    }
    wait_for_within("the new opening", Duration::from_secs(10), || {
        buy(first.addr, "ann").code() == 1
    });
    // Each server's own clock counts to the same moment, within a second.
    for (n, server) in servers.iter().enumerate().skip(1) {
        wait_for_within("the others to open too", Duration::from_secs(1), || {
            buy(server.addr, &format!("s{n}")).code() == 1
        });
    }
}

#[test]
fn times_the_page_cannot_show_are_refused() {
    let redis = Redis::start();
    for (at, says) in [
        ("23:59:60", "60th second"),
        ("9999-12-31T23:59:59-12:00", "within a week"),
    ] {
        let (out, _) = Seckill::run_to_end(&redis, &["--opens-at", at]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{at}: {stderr}");
        assert!(stderr.contains(says), "{at}: {stderr}");
    }
}
