//! What around the requests may go wrong: a stop with a request half sent,
//! a stdout closed or never read, a Redis reply lost.
//!
//! Each attack runs against a fresh server on a real Redis, bounded in count,
//! bytes and time, on loopback. After each, the server lives and answers
//! `/healthz` within a second, its threads, descriptors and memory come
//! back, and the sale is exact. The patches of vendor/tiny_http that these
//! tests show are listed in vendor/tiny_http/PATCHES.md.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use common::attack::{alone, purchase_head};
use common::health::assert_sale_exact;
use common::{Redis, Seckill, buy, connect, get, wait_for};
use redis::Commands;

#[test]
fn sigterm_waits_a_bounded_time_for_a_half_sent_body() {
    let _alone = alone();
    let redis = Redis::start();
    let mut server = Seckill::start(&redis, &["--body-timeout", "60", "--stop-wait", "2"]);
    let mut stream = connect(server.addr);
    // The 100 Continue comes when the handler begins to read the body: the
    // request is in flight.
    let head = purchase_head("Content-Length: 2000\r\nExpect: 100-continue\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut continued = Vec::new();
    while !continued.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        stream.read_exact(&mut byte).unwrap();
        continued.push(byte[0]);
    }
    assert!(continued.starts_with(b"HTTP/1.1 100 Continue\r\n"));
    stream.write_all(b"msg=half").unwrap();
    let started = Instant::now();
    server.terminate();
    let status = server.wait(Duration::from_secs(20));
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_secs(2),
        "stopped after {took:?}, before --stop-wait"
    );
    assert!(took < Duration::from_secs(8), "stopped after {took:?}");
    wait_for("the report", || server.stdout().contains("verdict:"));
    assert!(
        server
            .stderr()
            .contains("1 requests still in flight after 2 s"),
        "{}",
        server.stderr()
    );
    drop(stream);
}

#[test]
fn a_closed_stdout_changes_no_answer() {
    let _alone = alone();
    let redis = Redis::start();
    // As `seckill | head -1`: stdout is closed once the first line is read.
    let mut server = Seckill::start_then_close_stdout(&redis, &["--suffix-max", "0"]);
    let mut told = HashSet::new();
    for id in ["ann", "bob", "cat"] {
        let reply = buy(server.addr, id);
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.code(), 1);
        told.insert(reply.user_id());
    }
    assert_sale_exact(&redis, &told);
    server.terminate();
    assert!(
        server.wait(Duration::from_secs(20)).success(),
        "the report cannot be printed, and is not missed"
    );
}

#[test]
fn a_purchase_whose_reply_is_lost_is_answered_maybe_sold_with_its_id() {
    let _alone = alone();
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--strategy", "lua", "--suffix-max", "0"]);
    // A purchase just before, so the pooled connection is used at once, unchecked.
    assert_eq!(buy(server.addr, "ann").code(), 1);
    redis.freeze();
    let reply = buy(server.addr, "bob");
    assert_eq!(reply.status, 503, "{}", reply.text());
    let answer = reply.json();
    assert_eq!(answer["cause"], "maybe_sold", "{answer}");
    assert_eq!(answer["user_id"], "bob", "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("may have gone through"),
        "{answer}"
    );
    redis.thaw();
    // The script was sent before Redis froze: it runs when Redis wakes.
    wait_for("bob among the winners", || {
        redis
            .con()
            .sismember::<_, _, bool>("user:id", "bob")
            .unwrap()
    });
    let mut stats = get(server.addr, "/seckill/stats");
    for _ in 0..50 {
        if stats.status == 200 {
            break;
        }
        thread::sleep(Duration::from_millis(100));
        stats = get(server.addr, "/seckill/stats");
    }
    let stats = stats.json();
    assert_eq!(stats["maybe_sold"], 1, "{stats}");
    assert_eq!(stats["errors"], 0, "counted apart from errors: {stats}");
    let told = HashSet::from(["ann".to_string()]);
    assert_sale_exact(&redis, &told);
}

#[test]
fn a_stdout_nobody_reads_changes_no_answer() {
    let _alone = alone();
    let redis = Redis::start();
    // Not --quiet: a line per purchase, into a pipe nobody reads (a terminal
    // after Ctrl-S, or `seckill | less`), which fills after some thousand.
    let mut server = Seckill::start_then_stop_reading_stdout(&redis, &["--stock", "100000"]);
    let replies = common::load(server.addr, 5000, 20, |n| format!("log{n}-"));
    let mut told = HashSet::new();
    for reply in replies {
        let reply = reply.expect("every purchase is answered");
        assert_eq!(reply.status, 200, "{}", reply.text());
        if reply.code() == 1 {
            told.insert(reply.user_id());
        }
    }
    let took = Instant::now();
    assert_eq!(get(server.addr, "/healthz").status, 200);
    assert!(took.elapsed() < Duration::from_secs(1));
    assert_sale_exact(&redis, &told);
    // The report cannot be written either: the stop gives up on it in time.
    let started = Instant::now();
    server.terminate();
    assert!(server.wait(Duration::from_secs(20)).success());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped after {:?}",
        started.elapsed()
    );
}
