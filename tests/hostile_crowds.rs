//! Hostile crowds: connections over the caps, resets, a thousand at once on
//! busy cores, no thread to start, one client taking every connection.
//!
//! Each attack runs against a fresh server on a real Redis, bounded in count,
//! bytes and time, on loopback. After each, the server lives and answers
//! `/healthz` within a second, its threads, descriptors and memory come
//! back, and the sale is exact. The patches of vendor/tiny_http that these
//! tests show are listed in vendor/tiny_http/PATCHES.md.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::attack::{BusyCores, QUICK, alone, assert_survived, purchase_head, target};
use common::health::{Figures, SPARE_THREADS};
use common::process::output_within;
use common::tools::{ab, assert_ab_clean};
use common::{
    FORM, NOBODY, Redis, Seckill, buy, connect, form_body, get_as_another_client,
    read_until_closed, status_lines,
};
use redis::Commands;

#[test]
fn clients_that_reset_after_each_request_do_not_stop_the_server() {
    let _alone = alone();
    let (redis, mut server, before) = target(&[]);
    for n in 0..2000 {
        let mut stream = connect(server.addr);
        let body = form_body(&format!("reset{n}-"));
        let raw = purchase_head(&format!("Content-Length: {}\r\n", body.len())) + &body;
        stream.write_all(raw.as_bytes()).unwrap();
        // SO_LINGER 0: closing sends a reset instead of a FIN.
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    assert_survived(&redis, &mut server, before, 32);
}

#[test]
fn connections_over_the_cap_are_refused_at_once_and_idle_ones_time_out() {
    let _alone = alone();
    let mut flags = vec!["--max-connections", "100"];
    flags.extend_from_slice(&QUICK);
    let (redis, mut server, before) = target(&flags);
    let idle: Vec<TcpStream> = (0..150).map(|_| connect(server.addr)).collect();
    let readers: Vec<_> = idle
        .into_iter()
        .map(|mut stream| thread::spawn(move || read_until_closed(&mut stream)))
        .collect();
    let (mut refused, mut timed_out) = (0, 0);
    for reader in readers {
        let (bytes, took) = reader.join().unwrap();
        match status_lines(&bytes).as_slice() {
            [busy] if busy == "HTTP/1.1 503 Service Unavailable" => {
                assert!(took < Duration::from_secs(1), "refused after {took:?}");
                assert!(String::from_utf8_lossy(&bytes).contains(r#""cause":"busy""#));
                refused += 1;
            }
            // A silent connection is closed without a word at --head-timeout.
            [] => {
                assert!(took < Duration::from_secs(4), "closed after {took:?}");
                timed_out += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(refused >= 40, "refused {refused}, closed {timed_out}");
    assert!(timed_out >= 90, "refused {refused}, closed {timed_out}");
    assert_survived(&redis, &mut server, before, 32);
}

#[test]
fn a_crowd_of_a_thousand_on_busy_cores_gets_only_answers() {
    let _alone = alone();
    let (redis, mut server, before) = target(&[]);
    let postfile = concat!(env!("CARGO_MANIFEST_DIR"), "/postfile");
    let url = format!("http://{}/seckill", server.addr);
    let busy = BusyCores::start();
    let pid = server.pid();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(Ordering::Relaxed) {
                peak = peak.max(Figures::of(pid).threads);
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let report = ab(&["-n", "5000", "-c", "1000", "-p", postfile, "-T", FORM, &url]);
    sampling.store(false, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    drop(busy);
    // What the server saw, should ab count answers that were not 2xx.
    let stats = common::get(server.addr, "/seckill/stats").text();
    assert!(
        !report.contains("Non-2xx"),
        "{report}\nstats: {stats}\nstderr: {}",
        server.stderr()
    );
    assert_ab_clean(&report, 5000);
    // About a thread per connection: a thread started counts as waiting for
    // the next connection before it runs, or every busy thread starts one
    // more while the new ones wait for a core (2000 for this crowd). A tenth
    // more is allowed: ab opens its next connection as soon as it has an
    // answer, before the thread that answered has closed the last one (1027
    // seen for 1000, on busy cores).
    let most = before.threads + 1100 + SPARE_THREADS;
    assert!(
        peak <= most,
        "{peak} threads for a crowd of 1000 (at most {most})"
    );
    assert!(
        !server.stderr().contains("Redis"),
        "a crowd is not a Redis failure:\n{}",
        server.stderr()
    );
    assert_survived(&redis, &mut server, before, 64);
}

/// A crowd of 500 at a server of 4 Redis connections, on busy cores: a
/// healthy Redis behind a crowd far bigger than the pool. Every buyer waits
/// its turn and gets an answer of the sale; nothing is counted busy or an
/// error, and nothing says Redis failed. Then Redis stops, and the next
/// buyer hears so at once, as does the log.
#[test]
fn a_crowd_far_bigger_than_the_pool_waits_its_turn_and_redis_is_not_blamed() {
    let _alone = alone();
    let (mut redis, server, _) = target(&["--redis-connections", "4", "--strategy", "lua"]);
    let postfile = concat!(env!("CARGO_MANIFEST_DIR"), "/postfile");
    let url = format!("http://{}/seckill", server.addr);
    let busy = BusyCores::start();
    let report = ab(&["-n", "3000", "-c", "500", "-p", postfile, "-T", FORM, &url]);
    drop(busy);
    let stats = common::get(server.addr, "/seckill/stats").json();
    let said = format!("{report}\nstats: {stats}\nstderr: {}", server.stderr());
    assert_ab_clean(&report, 3000);
    assert_eq!(stats["busy"], 0, "{said}");
    assert_eq!(stats["errors"], 0, "{said}");
    assert_eq!(stats["success"], 500, "lua sells out: {said}");
    assert_eq!(stats["waiting_for_redis"], 0, "{said}");
    let longest = stats["longest_wait_ms"].as_u64().unwrap();
    assert!(longest > 0, "500 buyers at 4 connections queued: {said}");
    assert!(!server.stderr().contains("Redis"), "{said}");

    redis.kill();
    let started = Instant::now();
    let reply = buy(server.addr, "after-the-stop");
    let took = started.elapsed();
    assert_eq!(reply.status, 503, "{}", reply.text());
    let cause = reply.json()["cause"].clone();
    assert!(
        cause == "redis" || cause == "maybe_sold",
        "{}",
        reply.text()
    );
    assert!(took < Duration::from_secs(1), "told after {took:?}");
    let reply = buy(server.addr, "and-again");
    assert_eq!(reply.json()["cause"], "redis", "{}", reply.text());
    let error = reply.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("start Redis again"), "{error}");
    server.wait_for_stderr("answering 503 until Redis works again");
}

/// With no room to wait (`--turn-wait 0.01`, one connection), a crowd is
/// refused for load: 503 busy, words that say the server is overloaded,
/// counted busy and not as errors, and not a word of Redis in the log.
#[test]
fn a_crowd_refused_for_load_hears_busy_and_redis_is_not_blamed() {
    let _alone = alone();
    let flags = ["--redis-connections", "1", "--turn-wait", "0.01"];
    let (_redis, server, _) = target(&flags);
    let postfile = concat!(env!("CARGO_MANIFEST_DIR"), "/postfile");
    let url = format!("http://{}/seckill", server.addr);
    let report = ab(&["-n", "2000", "-c", "200", "-p", postfile, "-T", FORM, &url]);
    let stats = common::get(server.addr, "/seckill/stats").json();
    let said = format!("{report}\nstats: {stats}\nstderr: {}", server.stderr());
    let busy = stats["busy"].as_u64().unwrap();
    assert!(busy > 0, "200 at once for one connection in 10 ms: {said}");
    assert!(
        report.contains(&format!("Non-2xx responses:      {busy}\n")),
        "{said}"
    );
    assert_eq!(stats["errors"], 0, "{said}");
    assert!(stats["longest_wait_ms"].as_u64().unwrap() >= 10, "{said}");
    assert!(!server.stderr().contains("Redis"), "{said}");
    // What a refused buyer reads: crowds of 100 let go at once, until one
    // of them meets a refusal (on busy cores a crowd can arrive spread out).
    let mut refusals = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for round in 0.. {
        assert!(
            Instant::now() < deadline,
            "{round} crowds of 100, none refused"
        );
        let at_once = Arc::new(Barrier::new(100));
        let crowd: Vec<_> = (0..100)
            .map(|n| {
                let (addr, at_once) = (server.addr, Arc::clone(&at_once));
                thread::spawn(move || {
                    at_once.wait();
                    buy(addr, &format!("c{round}-{n}-"))
                })
            })
            .collect();
        let replies = crowd.into_iter().map(|buyer| buyer.join().unwrap());
        let refused = replies.filter(|reply| reply.status == 503);
        refusals.extend(refused.map(|reply| reply.text()));
        if !refusals.is_empty() {
            break;
        }
    }
    for refusal in &refusals {
        assert!(refusal.contains(r#""cause":"busy""#), "{refusal}");
        assert!(refusal.contains("the server is overloaded"), "{refusal}");
        assert!(refusal.contains("try again"), "{refusal}");
    }
}

/// Sets the soft limit of threads of process `pid` (RLIMIT_NPROC) with
/// util-linux's prlimit, run as the process's own user: a root without
/// CAP_SYS_RESOURCE (in a container) may not change another user's limits.
fn limit_threads(pid: u32, soft: &str, as_nobody: bool) {
    let mut command = Command::new("prlimit");
    command.args(["--pid", &pid.to_string(), &format!("--nproc={soft}:")]);
    if as_nobody {
        use std::os::unix::process::CommandExt;
        command.uid(NOBODY).gid(NOBODY);
    }
    let out = output_within(&mut command, Duration::from_secs(10))
        .expect("cannot run prlimit: install util-linux");
    assert!(
        out.status.success(),
        "prlimit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The soft limit of threads of process `pid`, as /proc shows it.
fn thread_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max processes"))
        .unwrap();
    line.split_whitespace().nth(2).unwrap().to_string()
}

#[test]
fn a_thread_that_cannot_start_is_a_busy_503_not_a_stop() {
    let _alone = alone();
    let redis = Redis::start();
    // The limit of threads does not bind root: the server runs as nobody then.
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut server = if root {
        Seckill::start_as_nobody(&redis, &["--quiet"])
    } else {
        Seckill::start(&redis, &["--quiet"])
    };
    assert_eq!(buy(server.addr, "ann").status, 200);
    let pid = server.pid();
    let unlimited = thread_limit(pid);
    limit_threads(pid, "1", root);
    // The connection threads waiting in accept serve one buyer after another.
    for n in 0..5 {
        let reply = buy(server.addr, &format!("b{n}-"));
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    // More connections at once than threads wait, each holding its thread
    // with a head that never ends: the one that finds no other thread
    // waiting cannot start one, and is answered 503 busy, as are those after
    // it; a thread is always left accepting.
    let holders: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut stream = connect(server.addr);
            stream.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            stream
        })
        .collect();
    let waits: Vec<_> = holders
        .into_iter()
        .map(|mut stream| thread::spawn(move || read_until_closed(&mut stream).0))
        .collect();
    let mut busy = 0;
    for wait in waits {
        let answer = String::from_utf8_lossy(&wait.join().unwrap()).into_owned();
        if answer.starts_with("HTTP/1.1 503") {
            assert!(answer.contains(r#""cause":"busy""#), "{answer}");
            assert!(answer.contains("could not start a thread"), "{answer}");
            busy += 1;
        }
    }
    assert!(busy > 0, "every connection got a thread");
    limit_threads(pid, &unlimited, root);
    assert!(server.exited().is_none(), "{}", server.stderr());
    assert_eq!(buy(server.addr, "bob").status, 200, "served again");
    let winners: i64 = redis.con().scard("user:id").unwrap();
    assert_eq!(winners, 1 + 1 + 5 + 1, "null, ann, the five and bob");
}

#[test]
fn no_one_client_can_take_every_connection() {
    let _alone = alone();
    let flags = [
        "--max-connections",
        "100",
        "--max-connections-per-client",
        "50",
    ];
    let (redis, mut server, before) = target(&flags);
    // One client (127.0.0.1) opens 80: the 30 over its share are refused.
    let hogged: Vec<TcpStream> = (0..80).map(|_| connect(server.addr)).collect();
    let refused = hogged
        .iter()
        .filter(|stream| {
            stream
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut head = [0; 12];
            matches!((&**stream).read(&mut head), Ok(12) if &head == b"HTTP/1.1 503")
        })
        .count();
    assert_eq!(refused, 30, "refused beyond the client's share");
    // Another client (127.0.0.2, loopback too) is served meanwhile.
    let other = get_as_another_client(server.addr, "/healthz");
    assert_eq!(other.status, 200, "{}", other.text());
    drop(hogged);
    assert_survived(&redis, &mut server, before, 16);
}

#[test]
fn a_crowd_over_its_share_gets_503_after_sending_its_request() {
    let _alone = alone();
    let (redis, mut server, before) = target(&["--max-connections-per-client", "20"]);
    // A client over its share that sends its purchase at once reads a
    // whole 503 that says why.
    let held: Vec<TcpStream> = (0..20).map(|_| connect(server.addr)).collect();
    let body = form_body("over");
    let raw = purchase_head(&format!("Content-Length: {}\r\n", body.len())) + &body;
    for _ in 0..10 {
        let mut stream = connect(server.addr);
        stream.write_all(raw.as_bytes()).unwrap();
        let (bytes, took) = read_until_closed(&mut stream);
        let answer = String::from_utf8_lossy(&bytes);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains(r#""cause":"busy""#), "{answer}");
        assert!(took < Duration::from_secs(1), "answered after {took:?}");
    }
    // 500 silent ones over the share at once are answered within a moment:
    // the wait for a request is counted from the refusal, not one by one.
    let started = Instant::now();
    let silent: Vec<TcpStream> = (0..500).map(|_| connect(server.addr)).collect();
    for mut stream in silent {
        let (bytes, _) = read_until_closed(&mut stream);
        assert!(bytes.starts_with(b"HTTP/1.1 503"), "{bytes:?}");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "500 refusals took {took:?}");
    drop(held);
    // ab counts those answers as Non-2xx and goes on, with 80 over its share
    // at once; answered before it had sent its request, it lost track of the
    // request and stopped at its timeout.
    let postfile = concat!(env!("CARGO_MANIFEST_DIR"), "/postfile");
    let url = format!("http://{}/seckill", server.addr);
    let args = [
        "-s", "10", "-n", "2000", "-c", "100", "-p", postfile, "-T", FORM,
    ];
    let report = ab(&[&args[..], &[url.as_str()]].concat());
    assert!(
        report.contains("Complete requests:      2000\n"),
        "{report}"
    );
    assert!(
        report.contains("Non-2xx responses"),
        "none over the share:\n{report}"
    );
    assert_survived(&redis, &mut server, before, 16);
}
