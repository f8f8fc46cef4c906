//! The loads people actually run: ab with a thousand at once, wrk with
//! keep-alive, and what happens when the process runs out of files.

mod common;

use std::net::TcpStream;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Redis, Seckill, limit_open_files};
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

fn run(program: &str, args: &[&str], package: &str) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run {program} ({err}): install it with `apt-get install {package}`")
        });
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program}: {text}");
    text
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
    let form = "application/x-www-form-urlencoded";
    let report = run(
        "ab",
        &["-n", "5000", "-c", "1000", "-p", postfile, "-T", form, &url],
        "apache2-utils",
    );
    assert!(report.contains("Complete requests:      5000"), "{report}");
    for failure in ["(Connect: ", "Receive: ", "Exceptions: "] {
        let count = report
            .split_once(failure)
            .map(|(_, rest)| rest.split([',', ')']).next().unwrap());
        assert!(
            matches!(count, None | Some("0")),
            "{failure}{count:?}\n{report}"
        );
    }
    assert!(
        !report.contains("Non-2xx"),
        "{report}\nthe server said:\n{}{}",
        server.stdout(),
        server.stderr()
    );
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
    let log = server.stdout();
    assert!(
        log.contains("raised the open-files limit from 1024 to 4096"),
        "{log}"
    );
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
fn a_listener_out_of_files_stops_the_process_with_the_reason() {
    let _alone = ONE_LOAD_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let redis = Redis::start();
    let mut server =
        Seckill::start_with(&redis, &[], |command| limit_open_files(command, 300, 300));
    assert!(
        server.stdout().contains("the open-files limit is 300"),
        "{}",
        server.stdout()
    );
    let mut idle = Vec::new();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.exited() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still running, deaf or not"
        );
        if idle.len() < 400
            && let Ok(stream) = TcpStream::connect(server.addr)
        {
            idle.push(stream);
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    assert!(!status.success());
    std::thread::sleep(Duration::from_millis(100));
    let err = server.stderr();
    assert!(err.contains("the HTTP listener stopped"), "{err}");
    assert!(err.to_lowercase().contains("too many open files"), "{err}");
}
