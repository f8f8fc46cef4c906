//! Redis going away while the server runs: quick 503s, one log line per
//! outage, readiness that tells, and recovery without a restart of seckill.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Redis, Seckill, buy, get};
use redis::Commands;

const WITHIN: Duration = Duration::from_secs(2);

/// A purchase that must fail fast with a JSON 503.
fn buy_fails_fast(server: &Seckill, id: &str) -> String {
    buy_fails_within(server.addr, id, WITHIN)
}

/// A purchase that must fail with a JSON 503 within `limit`; its error.
fn buy_fails_within(addr: SocketAddr, id: &str, limit: Duration) -> String {
    let started = Instant::now();
    let reply = buy(addr, id);
    let took = started.elapsed();
    assert!(
        took < limit,
        "{id}: answered after {took:?}: {}",
        reply.text()
    );
    assert_eq!(reply.status, 503, "{id}: {}", reply.text());
    reply.json()["error"].as_str().unwrap().to_string()
}

/// Lines that begin with `line`: each log line ends with the time of day.
fn lines(text: &str, line: &str) -> usize {
    text.lines().filter(|l| l.starts_with(line)).count()
}

#[test]
fn redis_down_is_a_503_and_a_restart_is_survived() {
    let persistent = ["--appendonly", "yes"];
    let mut redis = Redis::start_with(&persistent);
    let server = Seckill::start(&redis, &["--suffix-max", "0"]);
    assert_eq!(buy(server.addr, "ann").code(), 1);
    assert_eq!(get(server.addr, "/readyz").status, 200);

    redis.kill();
    for id in ["bob", "cat", "dan", "eve"] {
        let error = buy_fails_fast(&server, id);
        assert!(error.contains("Redis"), "{error}");
    }
    assert_eq!(get(server.addr, "/readyz").status, 503);
    assert_eq!(get(server.addr, "/seckill/stats").status, 503);
    assert_eq!(
        get(server.addr, "/healthz").status,
        200,
        "alive without Redis"
    );
    assert_eq!(
        get(server.addr, "/seckill").status,
        200,
        "the page needs no Redis"
    );

    // Back with its append-only file: no buyer pays for the restart.
    redis.restart(&persistent);
    assert_eq!(
        buy(server.addr, "fay").code(),
        1,
        "the first purchase after the restart"
    );
    assert_eq!(
        buy(server.addr, "ann").code(),
        -2,
        "the sale survived the restart"
    );
    assert_eq!(get(server.addr, "/readyz").status, 200);
    // Said once Redis has worked for a second with no failure.
    common::wait_for("the log to say Redis works again", || {
        get(server.addr, "/readyz");
        server.stderr().contains("seckill: Redis works again")
    });

    let log = server.stderr();
    let down = log
        .lines()
        .filter(|l| l.contains("answering 503 until Redis works again"));
    assert_eq!(down.count(), 1, "one line per outage:\n{log}");
    assert_eq!(lines(&log, "seckill: Redis works again"), 1, "{log}");
}

#[test]
fn redis_restarted_empty_means_no_sale_not_a_guess() {
    let mut redis = Redis::start();
    let server = Seckill::start(&redis, &["--suffix-max", "0"]);
    assert_eq!(buy(server.addr, "ann").code(), 1);
    redis.restart(&[]);
    // The first buyer may find the connection the old Redis dropped; that
    // failure makes every other connection PING first.
    buy_fails_fast(&server, "bob");
    for id in ["cat", "dan"] {
        let error = buy_fails_fast(&server, id);
        assert!(error.contains("no sale is set up"), "{error}");
    }
    assert_eq!(get(server.addr, "/readyz").status, 503);
    server.wait_for_stderr("no sale is set up");
}

/// A server that sold once, on a Redis then frozen (SIGSTOP).
fn sold_once_then_frozen(flags: &[&str]) -> (Redis, Seckill) {
    let redis = Redis::start();
    let server = Seckill::start(&redis, flags);
    assert_eq!(buy(server.addr, "ann").code(), 1);
    redis.freeze();
    (redis, server)
}

/// A buyer of watch-retry may wait for a racer ahead of it to fail first.
const WITHIN_WITH_TURNS: Duration = Duration::from_secs(3);

#[test]
fn a_frozen_redis_is_a_503_within_three_seconds_for_a_queue_of_racers() {
    let (redis, server) = sold_once_then_frozen(&["--strategy", "watch-retry"]);
    // Three times as many buyers as turns to race: those in the queue hear
    // that Redis failed as soon as one ahead of them does, without waiting
    // out --turn-wait, and none is told the server is busy.
    let buyers: Vec<_> = (0..12)
        .map(|n| {
            let addr = server.addr;
            std::thread::spawn(move || buy_fails_within(addr, &format!("b{n}-"), WITHIN_WITH_TURNS))
        })
        .collect();
    for buyer in buyers {
        let error = buyer.join().unwrap();
        assert!(error.contains("Redis did not answer in time"), "{error}");
    }
    let log = server.stderr();
    assert!(!log.contains("busy"), "{log}");
    redis.thaw();
}

#[test]
fn a_frozen_redis_is_a_503_within_two_seconds() {
    let (redis, server) = sold_once_then_frozen(&["--suffix-max", "0"]);
    for id in ["bob", "cat", "dan"] {
        let error = buy_fails_fast(&server, id);
        assert!(error.contains("Redis did not answer in time"), "{error}");
    }
    redis.thaw();
    let started = Instant::now();
    loop {
        let reply = buy(server.addr, "eve");
        if reply.status == 200 {
            assert_eq!(reply.code(), 1);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no recovery: {}",
            reply.text()
        );
    }
}

/// A Redis that answers but refuses the write: a master with too few
/// replicas for its `min-replicas-to-write`, and a master demoted to a
/// replica (as after a failover, seen from a connection kept open). Each
/// 503 says which, in every strategy (watch's EXEC hides the replica's
/// READONLY inside an EXECABORT), `/readyz` says not ready meanwhile, and the
/// sale goes on once Redis takes writes again.
#[test]
fn a_redis_that_refuses_writes_is_a_503_that_says_why() {
    for strategy in ["lua", "watch", "naive"] {
        let redis = Redis::start();
        let server = Seckill::start(&redis, &["--strategy", strategy, "--suffix-max", "0"]);
        assert_eq!(buy(server.addr, "ann").code(), 1);
        let config_set = |key: &str, value: &str| {
            let set = redis::cmd("CONFIG").arg("SET").arg(key).arg(value).clone();
            set.exec(&mut redis.con()).unwrap();
        };
        let not_ready = |says: &str| {
            let ready = get(server.addr, "/readyz");
            assert_eq!(ready.status, 503, "{strategy}: {}", ready.text());
            let error = ready.json()["error"].as_str().unwrap().to_string();
            assert!(error.contains(says), "{strategy}: {error}");
        };

        config_set("min-replicas-to-write", "1");
        let error = buy_fails_fast(&server, "bob");
        assert!(
            error.contains("too few replicas are in touch"),
            "{strategy}: {error}"
        );
        not_ready("too few replicas are in touch");
        config_set("min-replicas-to-write", "0");
        assert_eq!(buy(server.addr, "bob").code(), 1, "{strategy}");

        // A master holding this sale, for ours to become a replica of.
        let master = Redis::start_with(&["--repl-diskless-sync-delay", "0"]);
        let sale_id: String = redis.con().get("commodity:sale").unwrap();
        let sale = redis::cmd("MSET")
            .arg("commodity:num")
            .arg(10)
            .arg("commodity:sale")
            .arg(&sale_id)
            .clone();
        sale.exec(&mut master.con()).unwrap();
        let replicaof = redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg(master.port)
            .clone();
        replicaof.exec(&mut redis.con()).unwrap();
        common::wait_for("the replica's first sync", || {
            let stock: Option<i64> = redis.con().get("commodity:num").unwrap();
            stock == Some(10)
        });
        let error = buy_fails_fast(&server, "cat");
        assert!(
            error.contains("the server is a replica now"),
            "{strategy}: {error}"
        );
        not_ready("the server is a replica now");
        let promote = redis::cmd("REPLICAOF").arg("NO").arg("ONE").clone();
        promote.exec(&mut redis.con()).unwrap();
        assert_eq!(buy(server.addr, "cat").code(), 1, "{strategy}");
        assert_eq!(get(server.addr, "/readyz").status, 200, "{strategy}");
    }
}

/// `--replicas 1` on a Redis with no replica: every sale is made, and
/// answered `unreplicated` with its id. WAIT answered, so the connection is
/// sound and is kept: no new connection per sale. (Redis checks WAIT's
/// timeout ten times a second, so each sale waits about 100 ms.)
#[test]
fn a_sale_no_replica_confirms_is_unreplicated_and_its_connection_kept() {
    let redis = Redis::start();
    let flags = [
        "--strategy",
        "lua",
        "--replicas",
        "1",
        "--replica-timeout",
        "10",
    ];
    let server = Seckill::start(&redis, &flags);
    let connections = || {
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query(&mut redis.con())
            .unwrap();
        let line = info
            .lines()
            .find(|l| l.starts_with("total_connections_received:"));
        line.unwrap()
            .split(':')
            .nth(1)
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let before = connections();
    let mut told = std::collections::HashSet::new();
    for n in 0..20 {
        let reply = buy(server.addr, &format!("b{n}-"));
        assert_eq!(reply.status, 503, "{}", reply.text());
        assert_eq!(reply.json()["cause"], "unreplicated", "{}", reply.text());
        told.insert(reply.user_id());
    }
    // Each `connections()` opens one, and the pool may open a few.
    assert!(
        connections() - before <= 5,
        "{} new connections",
        connections() - before
    );
    let (winners, _, _) = common::health::sale_in(&mut redis.con());
    assert_eq!(
        winners, told,
        "every unreplicated sale was made on the master"
    );
    let stats = get(server.addr, "/seckill/stats").json();
    assert_eq!(stats["unreplicated"], 20);
    let log = server.wait_for_stderr("the replicas do not keep up");
    assert!(
        log.contains("--replicas 1 but Redis has 0 replicas connected"),
        "{log}"
    );
    assert_eq!(
        log.matches("the replicas do not keep up").count(),
        1,
        "{log}"
    );
    // Not ready while every sale is answered 503; and requests that work on
    // Redis confirm no sale: the log stays.
    let quiet = std::time::Instant::now() + Duration::from_millis(1100);
    while std::time::Instant::now() < quiet {
        let ready = get(server.addr, "/readyz");
        assert_eq!(ready.status, 503, "{}", ready.text());
        assert_eq!(ready.json()["cause"], "unreplicated", "{}", ready.text());
        assert_eq!(get(server.addr, "/seckill/stats").status, 200);
    }
    let log = server.stderr();
    assert!(!log.contains("confirm the sales again"), "{log}");
    assert_eq!(
        log.matches("the replicas do not keep up").count(),
        1,
        "{log}"
    );
}

/// A stop while Redis is down says what is true: no winners can be read
/// now, and how to read them once Redis answers; not that the sale goes on.
#[test]
fn a_stop_during_an_outage_says_the_winners_cannot_be_read_now() {
    let mut redis = Redis::start();
    let mut server = Seckill::start(&redis, &["--suffix-max", "0"]);
    assert_eq!(buy(server.addr, "ann").code(), 1);
    redis.kill();
    server.terminate();
    let status = server.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    let (out, err) = (server.stdout(), server.stderr());
    assert!(!out.contains("Winners ("), "{out}");
    assert!(!out.contains("the winners follow"), "{out}");
    let last = err
        .lines()
        .find(|line| line.contains("no winners are printed"));
    let last = last.unwrap_or_else(|| panic!("no word of the winners:\n{err}"));
    assert!(last.contains("seckill --audit"), "{last}");
    assert!(!last.contains("the sale goes on"), "{last}");
}
