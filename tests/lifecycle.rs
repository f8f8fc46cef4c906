//! Start-up and shutdown: the sale set up in Redis, the winners printed at the end.

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use common::process::{seckill, seckill_output};
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
    assert_eq!(winners, ["null"], "only the tutorial's placeholder");
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
         orders:        2 written for 2 winners\n\
         answered:      2 purchases: 2 bought, 0 sold out, 0 repeat, 0 errors, 0 busy, 0 maybe sold, 0 unreplicated; 0 conflicts\n"
    );
}

/// The stock set by hand to what cannot be counted while the server ran:
/// the report still lists the winners, says why there is no verdict, and
/// the server exits with status 1.
#[test]
fn shutdown_with_a_stock_that_is_not_a_number_lists_the_winners_and_says_why() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--stock", "3", "--suffix-max", "0"]);
    assert_eq!(buy(server.addr, "ann").code(), 1);
    let _: () = redis.con().set("commodity:num", "2.5").unwrap();
    let (status, out) = server.stop();
    assert_eq!(status.code(), Some(1), "{out}");
    let report = out.split_once("Winners (1):\n").expect(&out).1;
    assert!(
        report.starts_with(
            "ann\nverdict:       BAD STOCK: commodity:num holds \"2.5\", not a whole number"
        ),
        "{report}"
    );
}

/// Redis emptied while the server ran (FLUSHALL, or a restart without its
/// data): the stop says there is no sale to report, and what to do, with
/// status 1.
#[test]
fn shutdown_after_redis_lost_the_sale_says_so() {
    let redis = Redis::start();
    let mut server = Seckill::start(&redis, &["--suffix-max", "0"]);
    assert_eq!(buy(server.addr, "ann").code(), 1);
    let _: () = redis::cmd("FLUSHALL").query(&mut redis.con()).unwrap();
    server.terminate();
    let status = server.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1));
    let err = server.stderr();
    let said = format!("no sale in Redis at {}", redis.url());
    assert!(err.contains(&said), "{err}");
    assert!(
        err.contains("commodity:num or commodity:initial is missing"),
        "{err}"
    );
    assert!(
        !server.stdout().contains("Winners ("),
        "{}",
        server.stdout()
    );
}

/// `--master` names the master the sentinels watch: a sale through a
/// sentinel that knows it as `shop`; a name they do not know stops the
/// start with words that name it.
#[test]
fn the_master_of_the_sentinels_is_the_one_master_names() {
    let master = Redis::start();
    let sentinel = Redis::start_sentinel_of(master.port, "shop", 1);
    let at = format!("127.0.0.1:{}", sentinel.port);
    let flags = ["--sentinel", &at, "--master", "shop", "--suffix-max", "0"];
    let server = Seckill::start(&master, &flags);
    assert_eq!(buy(server.addr, "ann").code(), 1);
    let winners: HashSet<String> = master.con().smembers("user:id").unwrap();
    assert!(winners.contains("ann"), "{winners:?}");
    server.wait_for_stdout("the master `shop`");

    let (out, _) = Seckill::run_to_end(&master, &["--sentinel", &at, "--master", "nosuch"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nosuch"), "{err}");
    assert!(err.contains(&at), "{err}");
}

#[test]
fn an_unreachable_redis_is_one_clear_line_and_a_failure() {
    let dead = {
        let redis = Redis::start();
        redis.url()
    };
    let out = seckill_output(&["--bind", "127.0.0.1:0", "--redis", &dead]);
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
fn a_missing_redis_socket_is_named_as_given() {
    let url = "redis+unix:///nonexistent/redis.sock?db=2";
    let out = seckill_output(&["--bind", "127.0.0.1:0", "--redis", url]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot reach Redis at {url}: ")),
        "{err}"
    );
}

#[test]
fn redis_url_comes_from_the_environment_too() {
    let redis = Redis::start();
    let mut server = seckill()
        .args(["--bind", "127.0.0.1:0", "--quiet", "--orders", "off"])
        .env("REDIS_URL", redis.url())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for("the sale set up in the Redis of REDIS_URL", || {
        redis.con().get::<_, Option<i64>>("commodity:num").unwrap() == Some(500)
    });
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_second_seckill_on_a_port_in_use_leaves_the_sale_alone() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--suffix-max", "0"]);
    assert_eq!(buy(server.addr, "ann").code(), 1);
    let bind = server.addr.to_string();
    let out = seckill_output(&["--bind", &bind, "--redis", &redis.url()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("Address already in use"), "{err}");
    assert_eq!(
        buy(server.addr, "ann").code(),
        -2,
        "ann's purchase is still there"
    );
}

#[test]
fn sigterm_under_load_answers_what_is_in_flight_and_the_report_agrees() {
    let redis = Redis::start();
    let flags = ["--quiet", "--strategy", "lua", "--stock", "100000"];
    let mut server = Seckill::start(&redis, &flags);
    let addr = server.addr;
    let crowd = std::thread::spawn(move || common::load(addr, 20000, 100, |i| format!("b{i}-")));
    common::wait_for("300 purchases", || {
        redis.con().scard::<_, i64>("user:id").unwrap() > 300
    });
    server.terminate();
    let status = server.wait(std::time::Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    let replies = crowd.join().unwrap();

    let mut told_bought = HashSet::new();
    let (mut answered, mut refused) = (0, 0);
    for reply in replies {
        match reply {
            Ok(reply) if reply.status == 200 => {
                answered += 1;
                if reply.code() == 1 {
                    told_bought.insert(reply.user_id());
                }
            }
            Ok(reply) => {
                assert_eq!(reply.status, 503, "{}", reply.text());
                assert_eq!(reply.json()["error"], "the sale is closing");
                refused += 1;
            }
            // The listener was closed: refused, or dropped from its queue.
            Err(err) => {
                use std::io::ErrorKind::{BrokenPipe, ConnectionRefused, ConnectionReset};
                let closed = [ConnectionRefused, ConnectionReset, BrokenPipe];
                assert!(closed.contains(&err.kind()), "not an answer: {err}");
                refused += 1;
            }
        }
    }
    assert!(
        answered > 300 && refused > 0,
        "answered {answered}, refused {refused}"
    );

    let mut con = redis.con();
    let mut winners: HashSet<String> = con.smembers("user:id").unwrap();
    winners.remove("null");
    assert_eq!(
        told_bought, winners,
        "every purchase in flight was answered"
    );
    let out = server.stdout(); // all of it: `wait` read it to the end
    let report = out.split_once("Winners (").expect(&out).1;
    let (count, rest) = report.split_once("):\n").unwrap();
    assert_eq!(count.parse::<usize>().unwrap(), winners.len());
    let listed: HashSet<String> = rest.lines().take(winners.len()).map(String::from).collect();
    assert_eq!(listed, winners);
    let remaining: i64 = con.get("commodity:num").unwrap();
    assert!(
        out.contains(&format!("remaining:     {remaining}\n")),
        "{out}"
    );
}

#[test]
fn a_replica_timeout_that_redis_could_not_keep_is_refused() {
    // WAIT 0 would wait forever, and over 300 ms the reply itself times out.
    for ms in ["0", "301"] {
        let out = seckill_output(&["--replica-timeout", ms]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("is not in 1..=300"), "{err}");
    }
}

#[test]
fn a_fresh_start_says_which_sale_it_replaces() {
    let redis = Redis::start();
    let mut first = Seckill::start(&redis, &["--suffix-max", "0"]);
    assert_eq!(buy(first.addr, "ann").code(), 1);
    first.terminate();
    assert!(first.wait(Duration::from_secs(20)).success());
    // All it printed is in: a Redis without a sale had none to replace.
    assert!(!first.stderr().contains("replaced"), "{}", first.stderr());
    // Started again as the tutorial does, it sets the stock afresh, and says
    // so, at once: the first took its mark off the sale as it stopped.
    let second = Seckill::start(&redis, &[]);
    second
        .wait_for_stderr("replaced the sale in Redis (winners 1, left 499 of 500); --join serves");
    assert!(!second.stderr().contains("waiting"), "{}", second.stderr());
}

#[test]
fn limits_that_leave_no_room_for_a_buyer_are_refused() {
    for flag in ["--max-connections", "--max-connections-per-client"] {
        let out = seckill_output(&[flag, "0"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} 0: {err}");
        assert!(
            err.contains("leaves no room for a single buyer"),
            "{flag} 0: {err}"
        );
    }
}
