//! The tutorial's load: 1000 purchases, 100 at a time, against a stock of 500.

mod common;

use std::collections::HashSet;

use common::tools::ab;
use common::{Redis, Seckill, load};
use redis::Commands;

const INITIAL: i64 = 500;

/// Winners and remaining stock as Redis holds them.
fn sale(redis: &Redis) -> (HashSet<String>, i64) {
    let mut con = redis.con();
    let mut winners: HashSet<String> = con.smembers("user:id").unwrap();
    assert!(winners.remove("null"), "the placeholder stays");
    (winners, con.get("commodity:num").unwrap())
}

#[test]
fn a_thousand_buyers_never_oversell_and_no_winner_is_lost() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--quiet"]);
    let replies = load(server.addr, 1000, 100, |i| format!("buyer{i}-"));

    let mut told_bought = HashSet::new();
    for reply in replies {
        let reply = reply.expect("every request is answered");
        assert_eq!(reply.status, 200, "{}", reply.text());
        match reply.code() {
            1 => assert!(told_bought.insert(reply.user_id())),
            -3..=-1 => {}
            code => panic!("unknown response_num {code}"),
        }
    }
    let (winners, remaining) = sale(&redis);
    assert!(remaining >= 0, "oversold: remaining {remaining}");
    assert_eq!(winners.len() as i64 + remaining, INITIAL);
    assert_eq!(told_bought, winners, "answered 1 exactly when in user:id");
}

#[test]
fn the_tutorials_ab_command_completes_without_failures() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--quiet"]);
    let url = format!("http://{}/seckill", server.addr);
    let postfile = concat!(env!("CARGO_MANIFEST_DIR"), "/postfile");
    let args = ["-n", "1000", "-c", "100", "-p", postfile];
    let report = ab(&[&args[..], &["-T", common::FORM, &url]].concat());
    assert_eq!(
        ab_figure(&report, "Complete requests:"),
        Some(1000),
        "{report}"
    );
    // Ids differ in length, which ab counts as "Length" failures; nothing
    // else may fail. ab prints these lines only when a count is not zero.
    for failure in ["Connect:", "Receive:", "Exceptions:", "Write errors:"] {
        assert!(
            ab_figure(&report, failure).unwrap_or(0) == 0,
            "{failure} {report}"
        );
    }
    assert!(!report.contains("Non-2xx responses"), "{report}");

    let (winners, remaining) = sale(&redis);
    assert!(remaining >= 0);
    assert_eq!(winners.len() as i64 + remaining, INITIAL, "{report}");
    assert!(winners.iter().all(|id| id.starts_with("#ABCD")));
}

/// The number after `label` in ab's report, if the report has it.
fn ab_figure(report: &str, label: &str) -> Option<u64> {
    let (_, rest) = report.split_once(label)?;
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
