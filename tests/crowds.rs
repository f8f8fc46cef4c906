//! The loads people actually run: ab with a thousand at once, wrk with
//! keep-alive, and what happens when the process runs out of files.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::tools::{ab, assert_ab_clean_at, run};
use common::{FORM, Redis, Seckill, limit_open_files};
use redis::Commands;

/// The loads take the whole machine: one at a time.
static ONE_LOAD_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Winners + remaining = initial, and no oversell.
fn assert_balanced(redis: &Redis) {
    let mut con = redis.con();
    let winners: i64 = con.scard("user:id").unwrap();
    let remaining: i64 = con.get("commodity:num").unwrap();
    assert!(remaining >= 0, "oversold: {remaining}");
    assert_eq!(winners - 1 + remaining, 500);
}

#[test]
fn ab_with_a_thousand_at_once_loses_no_connection() {
    let _alone = ONE_LOAD_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--quiet"]);
    let url = format!("http://{}/seckill", server.addr);
    let postfile = concat!(env!("CARGO_MANIFEST_DIR"), "/postfile");
    let report = ab(&["-n", "5000", "-c", "1000", "-p", postfile, "-T", FORM, &url]);
    assert_ab_clean_at(&report, 5000, &server);
    assert_balanced(&redis);
}

#[test]
fn wrk_with_keep_alive_gets_only_answers() {
    let _alone = ONE_LOAD_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--quiet", "--strategy", "lua"]);
    let url = format!("http://{}/seckill", server.addr);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/wrk-post.lua");
    let report = run("wrk", &["-t2", "-c100", "-d3s", "-s", script, &url], "wrk");
    assert!(!report.contains("Socket errors"), "{report}");
    assert!(!report.contains("Non-2xx"), "{report}");
    assert!(report.contains("requests in"), "{report}");
    let mut con = redis.con();
    assert_eq!(
        con.get::<_, i64>("commodity:num").unwrap(),
        0,
        "lua sells out: {report}"
    );
    assert_balanced(&redis);
}

#[test]
fn the_open_files_limit_is_raised_at_start() {
    let redis = Redis::start();
    let server = Seckill::start_with(&redis, &[], |command| limit_open_files(command, 1024, 4096));
    server.wait_for_stdout("raised the open-files limit from 1024 to 4096");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert!(
        open_files.split_whitespace().any(|word| word == "4096"),
        "{open_files}"
    );
}

#[test]
fn a_crowd_beyond_the_open_files_limit_is_refused_and_served_after() {
    let _alone = ONE_LOAD_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let redis = Redis::start();
    let mut server =
        Seckill::start_with(&redis, &[], |command| limit_open_files(command, 1024, 1024));
    // 1024 - 256 for the pool - 64 more, a descriptor a connection.
    let room = 704;
    server.wait_for_stdout(&format!(
        "room for about {room} connections at once, not --max-connections 2048"
    ));
    let crowd: Vec<TcpStream> = (0..900)
        .map(|_| TcpStream::connect(server.addr).expect("the kernel queues every connection"))
        .collect();
    for stream in &crowd {
        stream.set_nonblocking(true).unwrap();
    }
    // Those over the room are answered 503 and closed at once; the others wait.
    let mut refused = vec![false; crowd.len()];
    let started = Instant::now();
    while refused.iter().filter(|r| **r).count() < crowd.len() - room {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "refused {} of {}",
            refused.iter().filter(|r| **r).count(),
            crowd.len() - room
        );
        for (stream, refused) in crowd.iter().zip(refused.iter_mut()) {
            let mut head = [0; 12];
            if !*refused && matches!((&*stream).read(&mut head), Ok(12)) {
                assert_eq!(&head, b"HTTP/1.1 503");
                *refused = true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(crowd);
    assert!(server.exited().is_none(), "{}", server.stderr());
    common::wait_for("the crowd's connections closed", || {
        common::get(server.addr, "/healthz").status == 200
    });
    assert_eq!(common::buy(server.addr, "after").status, 200);
}

/// The connections Redis counts, less the test's own.
fn redis_clients_but_this(con: &mut redis::Connection) -> usize {
    let info: String = redis::cmd("INFO").arg("clients").query(con).unwrap();
    let count = info
        .lines()
        .find_map(|line| line.strip_prefix("connected_clients:"))
        .expect("INFO clients names connected_clients");
    count.trim().parse::<usize>().unwrap() - 1
}

#[test]
fn the_pool_grows_as_the_load_needs_and_shrinks_when_idle() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--quiet", "--strategy", "lua"]);
    let url = format!("http://{}/seckill", server.addr);
    let postfile = concat!(env!("CARGO_MANIFEST_DIR"), "/postfile");
    {
        let _alone = ONE_LOAD_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let report = ab(&[
            "-k", "-n", "4000", "-c", "50", "-p", postfile, "-T", FORM, &url,
        ]);
        assert_ab_clean_at(&report, 4000, &server);
    }
    // 50 requests in flight need about 50 connections, whatever the
    // pool's maximum (256).
    let mut con = redis.con();
    let after_load = redis_clients_but_this(&mut con);
    assert!(
        after_load <= 60,
        "ab -k -c 50 left {after_load} connections to Redis open:\n{}",
        server.stderr()
    );
    // Idle connections close after 20 s; r2d2 looks every 30 s.
    common::wait_for_within("the idle pool to close", Duration::from_secs(90), || {
        redis_clients_but_this(&mut con) <= 4
    });
}
