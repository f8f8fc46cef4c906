//! No lie and no wipe: a purchase writes all of itself or nothing, a sale
//! is only ever replaced on purpose, and a start that fails changes nothing
//! in Redis. Each on real processes: a private redis-server, and seckill
//! servers started and stopped as a user would.

mod common;

use std::collections::HashSet;
use std::net::TcpStream;
use std::process::Output;
use std::time::{Duration, Instant};

use common::health::sale_in;
use common::process::seckill_output;
use common::{Redis, Seckill, buy, get, wait_for_within};
use redis::Commands;

const STRATEGIES: [&str; 4] = ["naive", "watch", "watch-retry", "lua"];

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Buys as `first` .. `count` ids; the ids answered 1.
fn buyers(server: &Seckill, prefix: &str, count: usize) -> HashSet<String> {
    let mut bought = HashSet::new();
    for n in 0..count {
        let reply = buy(server.addr, &format!("{prefix}{n}"));
        assert_eq!(reply.status, 200, "{}", reply.text());
        if reply.code() == 1 {
            bought.insert(reply.user_id());
        }
    }
    bought
}

/// A stock an operator "restocked" by hand to a number DECR refuses: every
/// purchase is a 503 `bad_stock` naming the value, and none adds a winner
/// (Lua's tonumber took 7.5, and the script added the buyer before the DECR
/// failed: 23 winners for 10 items). `/readyz` and `--audit` say the same.
#[test]
fn a_stock_that_is_not_a_whole_number_sells_nothing_in_any_strategy() {
    for strategy in STRATEGIES {
        let redis = Redis::start();
        let flags = ["--strategy", strategy, "--stock", "10", "--suffix-max", "0"];
        let server = Seckill::start(&redis, &flags);
        assert_eq!(buyers(&server, "early", 3).len(), 3, "{strategy}");
        let _: f64 = redis.con().incr("commodity:num", 0.5).unwrap();
        for n in 0..20 {
            let reply = buy(server.addr, &format!("late{n}"));
            assert_eq!(reply.status, 503, "{strategy}: {}", reply.text());
            assert_eq!(reply.json()["cause"], "bad_stock", "{strategy}");
            let error = reply.json()["error"].as_str().unwrap().to_string();
            assert!(error.contains(r#"commodity:num holds "7.5""#), "{error}");
        }
        let mut con = redis.con();
        let winners: HashSet<String> = con.smembers("user:id").unwrap();
        assert_eq!(
            winners.len(),
            3 + 1,
            "{strategy}: only the early three and null"
        );
        assert_eq!(con.get::<_, String>("commodity:num").unwrap(), "7.5");
        let ready = get(server.addr, "/readyz");
        assert_eq!(ready.json()["cause"], "bad_stock", "{strategy}");

        let audit = seckill_output(&["--audit", "--redis", &redis.url()]);
        let said = String::from_utf8_lossy(&audit.stdout);
        assert_eq!(audit.status.code(), Some(2), "{said}");
        assert!(
            said.contains(r#"BAD STOCK: commodity:num holds "7.5""#),
            "{said}"
        );

        // Set right by hand, the sale goes on.
        let _: () = con.set("commodity:num", 7).unwrap();
        assert_eq!(buy(server.addr, "after").code(), 1, "{strategy}");
    }
}

/// The other forms DECR refuses, in the one step of lua.
#[test]
fn lua_refuses_every_stock_decr_refuses() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--strategy", "lua", "--suffix-max", "0"]);
    for stock in ["1e3", " 100", "007", "+5", "ten", "99999999999999999999"] {
        let _: () = redis.con().set("commodity:num", stock).unwrap();
        let reply = buy(server.addr, "ann");
        assert_eq!(reply.status, 503, "{stock:?}: {}", reply.text());
        assert_eq!(reply.json()["cause"], "bad_stock", "{stock:?}");
    }
    let winners: Vec<String> = redis.con().smembers("user:id").unwrap();
    assert_eq!(winners, ["null"], "nobody bought");
}

/// A second server started without `--join` while another sells: it stops
/// and says what to do, and the first server's sale and winners stay.
/// (Before, it replaced the sale: 55 buyers told 1 for 50 items, and none of
/// the first 28 winners left in Redis.)
#[test]
fn a_second_server_without_join_leaves_a_running_sale_alone() {
    let redis = Redis::start();
    let first = Seckill::start(&redis, &["--stock", "50", "--suffix-max", "0"]);
    let early = buyers(&first, "a", 28);
    assert_eq!(early.len(), 28);

    let (out, took) = Seckill::run_to_end(&redis, &[]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("other seckills sell the sale"), "{err}");
    assert!(err.contains("--join") && err.contains("--replace"), "{err}");
    // A running server renews its mark every second.
    assert!(took < Duration::from_secs(4), "decided after {took:?}");

    let late = buyers(&first, "b", 40);
    assert_eq!(late.len(), 22, "the first server sells its own 50");
    let (winners, remaining, initial) = sale_in(&mut redis.con());
    assert_eq!((remaining, initial), (0, 50));
    let told: HashSet<String> = early.union(&late).cloned().collect();
    assert_eq!(winners, told, "every buyer told 1 is a winner");
}

/// `--replace` replaces the sale on purpose; the server whose sale it was
/// answers 503 `replaced` from then on, says so in its log, and its report
/// at the end says its winners are gone (exit status 1).
#[test]
fn a_replaced_sale_is_told_by_the_server_that_sold_it() {
    let redis = Redis::start();
    let mut first = Seckill::start(&redis, &["--stock", "5", "--suffix-max", "0"]);
    assert_eq!(buy(first.addr, "ann").code(), 1);
    let second = Seckill::start(&redis, &["--replace", "--stock", "3", "--suffix-max", "0"]);
    second.wait_for_stderr("replaced the sale in Redis (winners 1, left 4 of 5)");

    let reply = buy(first.addr, "bob");
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.json()["cause"], "replaced");
    assert_eq!(get(first.addr, "/readyz").json()["cause"], "replaced");
    first.wait_for_stderr("another seckill started a new sale in Redis in place of this server's");
    assert_eq!(buy(second.addr, "bob").code(), 1, "the new sale sells");
    let (winners, remaining, initial) = sale_in(&mut redis.con());
    assert_eq!((remaining, initial), (2, 3));
    assert_eq!(winners, HashSet::from(["bob".to_string()]));

    first.terminate();
    let status = first.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{}", first.stderr());
    let err = first.stderr();
    assert!(err.contains("was replaced in Redis by another"), "{err}");
    assert!(!first.stdout().contains("Winners"), "{}", first.stdout());
}

/// A server killed with SIGKILL leaves its mark, which lapses: a fresh
/// start says it waits, and starts once the mark has lapsed.
#[test]
fn a_killed_servers_mark_is_waited_out() {
    let redis = Redis::start();
    let mut first = Seckill::start(&redis, &["--suffix-max", "0"]);
    assert_eq!(buy(first.addr, "ann").code(), 1);
    common::signal(first.pid(), libc::SIGKILL);
    first.wait(Duration::from_secs(20));

    let started = Instant::now();
    let second = Seckill::start(&redis, &["--stock", "7"]);
    let took = started.elapsed();
    let err = second.wait_for_stderr("waiting up to");
    assert!(err.contains("to see whether it still does"), "{err}");
    assert!(took < Duration::from_secs(10), "started after {took:?}");
    let (winners, remaining, _) = sale_in(&mut redis.con());
    assert!(winners.is_empty() && remaining == 7, "a fresh sale");
}

/// A start that cannot get what it needs from Redis (here, connections:
/// Redis is at its maxclients) stops before it changes anything, and says
/// why. Before, it replaced the sale, then failed to open its pool.
#[test]
fn a_start_that_fails_leaves_the_sale_alone() {
    let redis = Redis::start_with(&["--maxclients", "40"]);
    let first = Seckill::start(&redis, &["--stock", "9", "--suffix-max", "0"]);
    assert_eq!(buyers(&first, "w", 2).len(), 2);
    first.stop();
    let before = sale_in(&mut redis.con());

    // Once the first server's connections are gone, hold enough of the
    // clients Redis allows that fewer are left than seckill needs to start.
    wait_for_within(
        "the first server's connections closed",
        Duration::from_secs(10),
        || {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query(&mut redis.con())
                .unwrap();
            info.contains("connected_clients:1\r\n")
        },
    );
    let needed = seckill::pool::POOL_AT_START as usize + 1;
    let held: Vec<redis::Connection> = (0..40 - needed + 2).map(|_| redis.con()).collect();
    let (out, took) = Seckill::run_to_end(&redis, &[]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("Redis refuses more connections"), "{err}");
    assert!(
        err.contains(&format!("seckill needs {needed} to start")),
        "{err}"
    );
    assert!(err.contains("allows 40 clients in all"), "{err}");
    assert!(took < Duration::from_secs(5), "failed after {took:?}");
    drop(held);
    assert_eq!(sale_in(&mut redis.con()), before, "the sale is as it was");
}

/// A Redis with few free clients still takes a server (it opens 32
/// connections at start and more as the load needs them, not 256), serves
/// a crowd on what it has, and says that Redis refuses more.
#[test]
fn a_redis_with_few_free_clients_serves_a_crowd() {
    let redis = Redis::start_with(&["--maxclients", "40"]);
    // Opened first: the server takes every client Redis has left.
    let mut con = redis.con();
    let server = Seckill::start(&redis, &["--quiet", "--strategy", "lua"]);
    let replies = common::load(server.addr, 1000, 100, |i| format!("b{i}-"));
    let mut told = HashSet::new();
    for reply in replies {
        let reply = reply.expect("every request is answered");
        assert_eq!(reply.status, 200, "{}", reply.text());
        if reply.code() == 1 {
            told.insert(reply.user_id());
        }
    }
    let (winners, remaining, _) = sale_in(&mut con);
    assert_eq!((winners.len(), remaining), (500, 0));
    assert_eq!(told, winners);
    let log = server.wait_for_stderr("Redis refuses more connections");
    assert!(log.contains("and its maxclients is 40"), "{log}");
}

/// A "Redis" that takes connections and never answers (something else on
/// the port, or a hung server): every use of Redis at start, `--join` and
/// `--audit` included, fails in a few seconds and says it did not answer,
/// not "start it with redis-server".
#[test]
fn a_silent_redis_at_start_is_a_clear_failure_in_time() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/0", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        // Accepts and holds, until the test ends.
        let held: Vec<TcpStream> = silent.incoming().take(8).filter_map(Result::ok).collect();
        held
    });
    for flags in [&[][..], &["--join"], &["--audit"]] {
        let started = Instant::now();
        let out = seckill_output(&[&["--bind", "127.0.0.1:0", "--redis", &url], flags].concat());
        let took = started.elapsed();
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{flags:?}: {err}");
        assert!(err.contains("did not answer in time"), "{flags:?}: {err}");
        assert!(!err.contains("redis-server"), "{flags:?}: {err}");
        assert!(took < Duration::from_secs(10), "{flags:?}: after {took:?}");
    }
    drop(held);
}

/// A Redis whose writes are paused (CLIENT PAUSE WRITE) at start: the start
/// fails within a second and says why, and when the pause ends the sale
/// that was there is still there. Before, the server listened and said
/// nothing for the whole pause.
#[test]
fn a_redis_paused_for_writes_at_start_is_a_clear_failure_and_no_wipe() {
    let redis = Redis::start();
    let first = Seckill::start(&redis, &["--stock", "9", "--suffix-max", "0"]);
    assert_eq!(buyers(&first, "w", 2).len(), 2);
    first.stop();
    let before = sale_in(&mut redis.con());

    let paused = redis.hold_writes();
    let (out, took) = Seckill::run_to_end(&redis, &[]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("did not answer in time"), "{err}");
    assert!(err.contains("CLIENT PAUSE"), "{err}");
    assert!(took < Duration::from_secs(5), "failed after {took:?}");
    drop(paused);
    wait_for_within("the pause to end", Duration::from_secs(10), || {
        redis::cmd("SET")
            .arg("probe")
            .arg(1)
            .exec(&mut redis.con())
            .is_ok()
    });
    assert_eq!(sale_in(&mut redis.con()), before, "the sale is as it was");
}
