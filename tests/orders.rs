//! Every winner becomes an order: each sale adds an entry to the stream
//! `seckill:orders` in the same step, and the order writer puts it in the
//! database (SQLite here, beside the test's Redis). After each load and
//! each fault, the orders are the winners, exactly, and none twice.

mod common;

use std::process::Command;
use std::thread;
use std::time::Duration;

use common::orders::{audit, database, ordered, wait_until_orders_are_winners, winners};
use common::postgres::Postgres;
use common::process::{SECKILL_ENDS_WITHIN, output_of, output_within, seckill};
use common::tools::ab;
use common::{FORM, Redis, Seckill, buy, get, wait_for_within};
use redis::Commands;

fn load(server: &Seckill, requests: usize, crowd: usize) {
    let postfile = concat!(env!("CARGO_MANIFEST_DIR"), "/postfile");
    let url = format!("http://{}/seckill", server.addr);
    let (n, c) = (requests.to_string(), crowd.to_string());
    ab(&["-n", &n, "-c", &c, "-p", postfile, "-T", FORM, &url]);
}

#[test]
fn every_winner_becomes_an_order_in_every_strategy() {
    for strategy in ["naive", "watch", "watch-retry", "lua"] {
        let redis = Redis::start();
        let server = Seckill::start(
            &redis,
            &["--strategy", strategy, "--stock", "200", "--quiet"],
        );
        load(&server, 600, 50);
        wait_until_orders_are_winners(&redis, Duration::from_secs(10));
        let stats = get(server.addr, "/seckill/stats").json();
        assert_eq!(
            stats["orders_written"], stats["winners"],
            "{strategy}: {stats}"
        );
        assert_eq!(stats["orders_waiting"], 0, "{strategy}: {stats}");
        let (status, out) = server.stop();
        assert!(status.success(), "{strategy}: {out}");
        let n = winners(&redis).len();
        let line = format!("orders:        {n} written for {n} winners\n");
        assert!(out.contains(&line), "{strategy}: no {line:?} in:\n{out}");
        let (code, audited) = audit(&redis);
        // Only naive may oversell, and the audit says so (exit status 2);
        // its orders still match. The others sell exactly.
        let oversold = audited.contains("verdict:       OVERSOLD");
        if strategy == "naive" && oversold {
            assert_eq!(code, 2, "{strategy}: {audited}");
        } else {
            assert!(!oversold, "{strategy}: {audited}");
            assert_eq!(code, 0, "{strategy}: {audited}");
        }
        assert!(!audited.contains("MISMATCH"), "{strategy}: {audited}");
        assert!(
            audited.contains(&format!(
                "orders:        {n} written for {n} winners; 0 waiting"
            )),
            "{audited}"
        );
    }
}

#[test]
fn a_server_killed_mid_batch_leaves_its_orders_to_the_next_writer() {
    let redis = Redis::start();
    let flags = [
        "--strategy",
        "lua",
        "--stock",
        "100000",
        "--suffix-max",
        "4000000000",
        "--quiet",
    ];
    let first = Seckill::start(&redis, &flags);
    assert_eq!(buy(first.addr, "first").code(), 1);
    wait_until_orders_are_winners(&redis, Duration::from_secs(10));
    // The database held: the writer's batch is read from the stream, and
    // pending, when the server is killed.
    let holder = rusqlite::Connection::open(database(&redis)).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let addr = first.addr;
    let crowd = thread::spawn(move || {
        // ab sees connections reset by the kill: its report is not checked.
        let postfile = concat!(env!("CARGO_MANIFEST_DIR"), "/postfile");
        let url = format!("http://{addr}/seckill");
        let args = [
            "-n", "20000", "-c", "50", "-r", "-p", postfile, "-T", FORM, &url,
        ];
        let _ = output_within(Command::new("ab").args(args), Duration::from_secs(180));
    });
    wait_for_within(
        "a batch pending in the writer",
        Duration::from_secs(20),
        || {
            let pending: redis::streams::StreamPendingReply = redis
                .con()
                .xpending("seckill:orders", "order-writers")
                .unwrap();
            pending.count() > 0 && winners(&redis).len() >= 300
        },
    );
    common::signal(first.pid(), libc::SIGKILL);
    crowd.join().unwrap();
    holder.execute_batch("ROLLBACK").unwrap();
    let sold = winners(&redis).len();
    // The next server's writer claims what the killed one held, once idle.
    let next = Seckill::start(&redis, &["--join", "--strategy", "lua", "--quiet"]);
    wait_until_orders_are_winners(&redis, Duration::from_secs(40));
    assert_eq!(ordered(&redis).len(), sold);
    assert_eq!(audit(&redis).0, 0);
    drop(next);
}

#[test]
fn a_locked_database_holds_the_orders_in_the_stream_until_it_is_free() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--strategy", "watch", "--suffix-max", "0"]);
    assert_eq!(buy(server.addr, "first").code(), 1);
    wait_until_orders_are_winners(&redis, Duration::from_secs(10));
    // Another program holds the SQLite file, as a long report might.
    let holder = rusqlite::Connection::open(database(&redis)).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for n in 0..20 {
        let reply = buy(server.addr, &format!("buyer{n}"));
        assert_eq!(
            reply.code(),
            1,
            "buyers are answered meanwhile: {}",
            reply.text()
        );
    }
    wait_for_within(
        "the writer to say the database fails",
        Duration::from_secs(15),
        || {
            server
                .stderr()
                .contains("cannot write orders to the database")
        },
    );
    let stats = get(server.addr, "/seckill/stats").json();
    assert_eq!(stats["orders_waiting"], 20, "{stats}");
    assert!(stats["oldest_waiting_ms"].as_u64().is_some(), "{stats}");
    holder.execute_batch("ROLLBACK").unwrap();
    wait_until_orders_are_winners(&redis, Duration::from_secs(15));
    server.wait_for_stderr("orders are written to the database again");
}

#[test]
fn an_entry_that_holds_no_order_goes_to_the_dead_letters() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--strategy", "lua", "--suffix-max", "0"]);
    let _: String = redis
        .con()
        .xadd(
            "seckill:orders",
            "*",
            &[("user", "ghost"), ("left", "many")],
        )
        .unwrap();
    assert_eq!(buy(server.addr, "ann").code(), 1);
    wait_until_orders_are_winners(&redis, Duration::from_secs(10));
    let dead: usize = redis.con().xlen("seckill:orders:dead").unwrap();
    assert_eq!(dead, 1);
    let stats = get(server.addr, "/seckill/stats").json();
    assert_eq!(stats["orders_dead"], 1, "counted: {stats}");
    server.wait_for_stderr("holds no order");
}

#[test]
fn the_audit_names_winners_without_an_order() {
    let redis = Redis::start();
    // Orders off: the winners have none.
    let server = Seckill::start(&redis, &["--orders", "off", "--suffix-max", "0"]);
    for id in ["ann", "bob"] {
        assert_eq!(buy(server.addr, id).code(), 1);
    }
    let (code, out) = audit(&redis);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("MISMATCH: 2 winners without an order"),
        "{out}"
    );
    drop(server);
}

#[test]
fn orders_go_to_postgresql_and_wait_while_it_is_down() {
    let redis = Redis::start();
    let postgres = Postgres::start();
    let url = postgres.url();
    let server = Seckill::start(
        &redis,
        &[
            "--strategy",
            "watch-retry",
            "--stock",
            "1000",
            "--orders",
            &url,
            "--quiet",
        ],
    );
    load(&server, 500, 50);
    let count = || {
        postgres
            .query("SELECT COUNT(*) FROM seckill_orders")
            .parse::<usize>()
            .unwrap()
    };
    wait_for_within("the orders in PostgreSQL", Duration::from_secs(10), || {
        count() == winners(&redis).len()
    });
    // PostgreSQL stopped: buyers are still answered, their orders wait.
    postgres.stop_server();
    for n in 0..10 {
        let reply = buy(server.addr, &format!("late{n}-"));
        assert_eq!(reply.code(), 1, "{}", reply.text());
    }
    server.wait_for_stderr("cannot write orders to the database");
    postgres.start_server();
    server.wait_for_stderr("orders are written to the database again");
    wait_for_within("every winner's order", Duration::from_secs(15), || {
        count() == winners(&redis).len()
    });
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    let n = winners(&redis).len();
    assert!(
        out.contains(&format!("orders:        {n} written for {n} winners")),
        "{out}"
    );
}

#[test]
fn seckill_orders_alone_writes_what_a_killed_server_left() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--strategy", "lua", "--suffix-max", "0"]);
    assert_eq!(buy(server.addr, "first").code(), 1);
    wait_until_orders_are_winners(&redis, Duration::from_secs(10));
    let holder = rusqlite::Connection::open(database(&redis)).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for n in 0..10 {
        assert_eq!(buy(server.addr, &format!("b{n}")).code(), 1);
    }
    server.wait_for_stderr("cannot write orders to the database");
    common::signal(server.pid(), libc::SIGKILL);
    holder.execute_batch("ROLLBACK").unwrap();
    // The writer alone, as `seckill orders`, claims and writes them.
    let orders = format!("sqlite:{}", database(&redis).display());
    let writer = seckill()
        .args(["orders", "--redis", &redis.url(), "--orders", &orders])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_orders_are_winners(&redis, Duration::from_secs(40));
    assert_eq!(ordered(&redis).len(), 11);
    common::signal(writer.id(), libc::SIGTERM);
    let out = output_of(writer, SECKILL_ENDS_WITHIN, "seckill orders");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("seckill orders: stopped, all written"),
        "{text}"
    );
}

#[test]
fn a_redis_restarted_with_its_aof_keeps_every_order() {
    let mut redis = Redis::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let server = Seckill::start(&redis, &["--strategy", "watch", "--suffix-max", "0"]);
    for n in 0..20 {
        assert_eq!(buy(server.addr, &format!("a{n}")).code(), 1);
    }
    redis.restart(&["--appendonly", "yes", "--appendfsync", "always"]);
    // The pool and the writer both reconnect; the sale goes on.
    wait_for_within("sales again", Duration::from_secs(10), || {
        common::try_buy(server.addr, "after").is_ok_and(|reply| reply.status == 200)
    });
    for n in 0..20 {
        assert_eq!(buy(server.addr, &format!("b{n}")).code(), 1);
    }
    wait_until_orders_are_winners(&redis, Duration::from_secs(15));
    assert_eq!(ordered(&redis).len(), 41);
    drop(server);
}

#[test]
fn a_key_in_the_way_of_the_orders_stops_the_start_before_any_sale() {
    let redis = Redis::start();
    let () = redis.con().set("seckill:orders", "junk").unwrap();
    let orders = format!("sqlite:{}", database(&redis).display());
    let (out, _) = Seckill::run_to_end(&redis, &["--orders", &orders]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("seckill:orders holds a string, not a stream of orders"),
        "{stderr}"
    );
    let stock: Option<String> = redis.con().get("commodity:num").unwrap();
    assert_eq!(stock, None, "no sale was set up");
}
