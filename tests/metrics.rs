//! `/metrics`, Prometheus's text format, tells what `/seckill/stats` does:
//! after a known run its counters equal the stats' and Redis's figures.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Redis, Seckill, get, load, wait_for_within};
use redis::Commands;

/// The samples of a text exposition: `name{labels}` to value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').expect(line);
            (name.to_string(), value.parse().expect(line))
        })
        .collect()
}

#[test]
fn metrics_tell_what_the_stats_and_redis_hold() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--strategy", "lua", "--stock", "100", "--quiet"]);
    let replies = load(server.addr, 300, 20, |i| format!("m{i}-"));
    assert!(
        replies
            .iter()
            .all(|reply| reply.as_ref().is_ok_and(|r| r.status == 200))
    );
    wait_for_within("the orders written", Duration::from_secs(10), || {
        get(server.addr, "/seckill/stats").json()["orders_written"] == 100
    });
    let stats = get(server.addr, "/seckill/stats").json();
    let reply = get(server.addr, "/metrics");
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        reply.headers
    );
    let text = reply.text();
    let metrics = samples(&text);
    let metric = |name: &str| {
        *metrics
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    for outcome in common::OUTCOMES {
        let name = format!("seckill_purchases_total{{outcome=\"{outcome}\"}}");
        assert_eq!(metric(&name), stats[outcome].as_f64().unwrap(), "{outcome}");
    }
    assert_eq!(
        metric("seckill_purchases_total{outcome=\"success\"}"),
        100.0
    );
    assert_eq!(
        metric("seckill_purchase_seconds_count"),
        300.0,
        "a time for each purchase"
    );
    assert_eq!(
        metric("seckill_purchase_seconds_bucket{le=\"+Inf\"}"),
        300.0
    );
    let stock: i64 = redis.con().get("commodity:num").unwrap();
    let members: i64 = redis.con().scard("user:id").unwrap();
    assert_eq!(metric("seckill_stock_remaining"), stock as f64);
    assert_eq!(metric("seckill_stock_initial"), 100.0);
    assert_eq!(metric("seckill_winners"), (members - 1) as f64);
    assert_eq!(metric("seckill_orders_written"), 100.0);
    assert_eq!(metric("seckill_orders_waiting"), 0.0);
    assert!(metric("seckill_redis_connections") >= 1.0);
    assert_eq!(metric("seckill_redis_waiting"), 0.0);
    assert!(
        metric("seckill_open_connections") >= 1.0,
        "this request's own"
    );
}
