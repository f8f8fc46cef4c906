//! Hostile clients: what a class of students tries against a server on the
//! LAN. Each attack runs against a fresh server on a real Redis, bounded in
//! count, bytes and time, on loopback. After each, the server lives and
//! answers `/healthz` within a second, its threads, descriptors and memory
//! come back, and the sale is exact. The patches of vendor/tiny_http that
//! these tests show are listed in vendor/tiny_http/PATCHES.md.

mod common;

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::health::{Figures, SPARE_THREADS, assert_recovers, assert_sale_exact};
use common::tools::{ab, assert_ab_clean};
use common::{
    FORM, NOBODY, Redis, Seckill, buy, connect, connect_from, form_body, get,
    get_as_another_client, read_until_closed, send, status_lines, try_buy_from, wait_for,
    wait_for_within,
};
use redis::Commands;

/// The attacks take the machine's two cores: one at a time, so the timing
/// checks of one are not the load of another.
static ONE_ATTACK_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_ATTACK_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Short limits, so that the attacks that wait for them end soon.
const QUICK: [&str; 8] = [
    "--head-timeout",
    "1",
    "--idle-timeout",
    "1",
    "--body-timeout",
    "1",
    "--send-timeout",
    "1",
];

/// A server with `flags` on a fresh Redis, and its figures before the attack.
fn target(flags: &[&str]) -> (Redis, Seckill, Figures) {
    let redis = Redis::start();
    let mut all = vec!["--quiet"];
    all.extend_from_slice(flags);
    let server = Seckill::start(&redis, &all);
    // One purchase first, so the figures include a request thread's traces.
    assert_eq!(buy(server.addr, "first").status, 200);
    let before = Figures::of(server.pid());
    (redis, server, before)
}

/// Purchases after the attack, each answered; the ids told 1.
fn buyers_after(addr: SocketAddr, count: usize) -> HashSet<String> {
    let mut bought = HashSet::new();
    for n in 0..count {
        let reply = buy(addr, &format!("after{n}-"));
        assert_eq!(reply.status, 200, "{}", reply.text());
        if reply.code() == 1 {
            bought.insert(reply.user_id());
        }
    }
    bought
}

/// After an attack: the server recovers (`assert_recovers`, memory grown by
/// less than `memory_mb`), three more buyers are served, and the sale is exact.
fn assert_survived(redis: &Redis, server: &mut Seckill, before: Figures, memory_mb: usize) {
    assert_recovers(server, before, memory_mb);
    assert_sale_exact(redis, &buyers_after(server.addr, 3));
}

/// Nobody bought during the attack: `user:id` holds the sentinel and the
/// buyer of `target`.
fn assert_only_first_bought(redis: &Redis) {
    let members: i64 = redis.con().scard("user:id").unwrap();
    assert_eq!(members, 2, "only `first` bought");
}

/// A purchase request with a body of its own choosing.
fn purchase_head(extra: &str) -> String {
    format!("POST /seckill HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n{extra}\r\n")
}

#[test]
fn a_huge_declared_body_is_answered_and_the_connection_closed() {
    let _alone = alone();
    let (redis, mut server, before) = target(&[]);
    for (method, path, status) in [
        ("GET", "/healthz", 200),
        ("POST", "/seckill", 413),
        ("PUT", "/seckill", 405),
        ("GET", "/nowhere", 404),
    ] {
        for _ in 0..20 {
            let raw = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n\
                 Content-Length: 1000000000000\r\n\r\nmsg=ann"
            );
            let reply = send(server.addr, raw.as_bytes()).expect("an answer");
            assert_eq!(reply.status, status, "{method} {path}: {}", reply.text());
            assert_eq!(reply.header("Connection"), Some("close"), "{method} {path}");
        }
    }
    assert_survived(&redis, &mut server, before, 16);
}

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
fn http2_and_other_versions_are_answered_505_and_closed() {
    let _alone = alone();
    let (redis, mut server, before) = target(&[]);
    let attempts: [&[u8]; 5] = [
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        b"GET / HTTP/3.0\r\nHost: x\r\n\r\n",
        b"GET /seckill HTTP/1.2\r\nHost: x\r\n\r\n",
        b"GET / HTTP/0.9\r\n\r\n",
    ];
    for raw in attempts {
        for _ in 0..200 {
            let mut stream = connect(server.addr);
            stream.write_all(raw).unwrap();
            let (bytes, took) = read_until_closed(&mut stream);
            let shown = String::from_utf8_lossy(raw);
            assert_eq!(
                status_lines(&bytes),
                ["HTTP/1.1 505 HTTP Version Not Supported"],
                "{shown}"
            );
            assert!(
                took < Duration::from_secs(2),
                "{shown}: closed after {took:?}"
            );
        }
    }
    assert_survived(&redis, &mut server, before, 16);
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

/// Sends `raw` while reading the answer: the server may answer and close
/// before all of it is sent. The status lines received, if any.
fn flood(addr: SocketAddr, raw: Vec<u8>) -> Vec<String> {
    let mut stream = connect(addr);
    let mut reading = stream.try_clone().unwrap();
    let reader = thread::spawn(move || read_until_closed(&mut reading).0);
    let _ = stream.write_all(&raw); // fails once the server has closed
    let _ = stream.shutdown(Shutdown::Write);
    status_lines(&reader.join().unwrap())
}

#[test]
fn oversized_heads_are_refused_and_memory_stays_flat() {
    let _alone = alone();
    let (redis, mut server, before) = target(&[]);
    let too_large = "HTTP/1.1 431 Request Header Fields Too Large";
    // Just over each limit, small enough to arrive whole: the status is certain.
    let cases = [
        (
            format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(9000)),
            "HTTP/1.1 414 URI Too Long",
        ),
        (
            format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000)),
            too_large,
        ),
        (
            format!("GET / HTTP/1.1\r\n{}\r\n", "a:b\r\n".repeat(101)),
            too_large,
        ),
        (
            format!(
                "GET / HTTP/1.1\r\n{}\r\n",
                format!("x: {}\r\n", "a".repeat(400)).repeat(90)
            ),
            too_large,
        ),
        // Within every limit: 100 headers of 300 bytes.
        (
            format!(
                "GET /healthz HTTP/1.1\r\n{}\r\n",
                format!("x: {}\r\n", "a".repeat(300)).repeat(100)
            ),
            "HTTP/1.1 200 OK",
        ),
    ];
    for (raw, status) in cases {
        assert_eq!(flood(server.addr, raw.into_bytes()), [status]);
    }
    // A byte that is not ASCII, control characters, a request line of
    // four parts or with two spaces in a row.
    for bad in [
        "GET /healthz HTTP/1.1\r\nX-Name: José\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nX-Name: a\0b\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nX-Name: a\rb\r\n\r\n",
        "GET /healthz HTTP/1.1 extra\r\n\r\n",
        "GET  /healthz HTTP/1.1\r\n\r\n",
    ] {
        let answer = flood(server.addr, bad.into());
        assert_eq!(answer, ["HTTP/1.1 400 Bad Request"], "{bad:?}");
    }
    // Floods: 10 MB of tiny headers, an endless header line, an endless
    // request line. Each is cut off at its limit, whatever came of the answer.
    let tiny_headers = [
        b"GET / HTTP/1.1\r\n".as_slice(),
        &b"a:b\r\n".repeat(2_000_000),
    ]
    .concat();
    let endless_header = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 10_000_000]].concat();
    let endless_line = [b"GET /".as_slice(), &[b'a'; 10_000_000]].concat();
    for raw in [tiny_headers, endless_header, endless_line] {
        flood(server.addr, raw);
    }
    assert_survived(&redis, &mut server, before, 16);
}

#[test]
fn slow_and_silent_clients_are_timed_out() {
    let _alone = alone();
    let (redis, mut server, before) = target(&QUICK);
    let within = |took: Duration, what: &str| {
        assert!(
            took < Duration::from_secs(3),
            "{what}: closed after {took:?}"
        );
    };
    // A head sent a byte at a time: 408 once --head-timeout (1 s) is up.
    let mut slow = connect(server.addr);
    let mut reading = slow.try_clone().unwrap();
    let reader = thread::spawn(move || read_until_closed(&mut reading));
    for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: yes\r\n" {
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let (bytes, took) = reader.join().unwrap();
    assert_eq!(status_lines(&bytes), ["HTTP/1.1 408 Request Timeout"]);
    within(took, "a slow head");

    // A connection that says nothing is closed without a word.
    let (bytes, took) = read_until_closed(&mut connect(server.addr));
    assert!(bytes.is_empty(), "{}", String::from_utf8_lossy(&bytes));
    within(took, "a silent connection");

    // A body that stops coming: 408 at --body-timeout, nothing bought.
    for declared in [20, 2000] {
        let mut stream = connect(server.addr);
        let head = purchase_head(&format!("Content-Length: {declared}\r\n"));
        stream
            .write_all(format!("{head}msg=slow").as_bytes())
            .unwrap();
        let (bytes, took) = read_until_closed(&mut stream);
        assert_eq!(
            status_lines(&bytes),
            ["HTTP/1.1 408 Request Timeout"],
            "{declared}"
        );
        within(took, "a slow body");
    }

    // A kept-alive connection is closed after --idle-timeout.
    let mut kept = connect(server.addr);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (bytes, took) = read_until_closed(&mut kept);
    assert_eq!(status_lines(&bytes), ["HTTP/1.1 200 OK"]);
    within(took, "an idle kept-alive connection");

    assert_only_first_bought(&redis);
    assert_survived(&redis, &mut server, before, 16);
}

#[test]
fn ab_with_keep_alive_completes() {
    let _alone = alone();
    let (redis, mut server, before) = target(&[]);
    let health = format!("http://{}/healthz", server.addr);
    let report = ab(&["-k", "-n", "2000", "-c", "50", &health]);
    assert_ab_clean(&report, 2000);
    assert!(
        report.contains("Keep-Alive requests:    2000\n"),
        "{report}"
    );
    let postfile = concat!(env!("CARGO_MANIFEST_DIR"), "/postfile");
    let sale = format!("http://{}/seckill", server.addr);
    let report = ab(&[
        "-k", "-n", "2000", "-c", "50", "-p", postfile, "-T", FORM, &sale,
    ]);
    assert_ab_clean(&report, 2000);
    assert!(
        report.contains("Keep-Alive requests:    2000\n"),
        "{report}"
    );
    assert_survived(&redis, &mut server, before, 32);
}

#[test]
fn pipelined_requests_never_read_hold_one_thread_per_connection() {
    let _alone = alone();
    let (redis, mut server, before) = target(&QUICK);
    let pipeline = "GET /seckill HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
    let clients: Vec<TcpStream> = (0..100)
        .map(|_| {
            let stream = connect(server.addr);
            stream.set_nonblocking(true).unwrap();
            let _ = (&stream).write(pipeline.as_bytes()); // as much as fits
            stream
        })
        .collect();
    // The answers pile up unread; each connection has one request in flight,
    // and its thread gives up after --send-timeout. A connection holds a
    // thread that reads and one that answers, and for a moment one more that
    // is ending; unbounded, it was thousands.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let now = Figures::of(server.pid());
        assert!(now.threads <= before.threads + 3 * 100 + 16, "{now:?}");
        thread::sleep(Duration::from_millis(100));
    }
    let took = Instant::now();
    assert_eq!(get(server.addr, "/healthz").status, 200);
    assert!(
        took.elapsed() < Duration::from_secs(1),
        "/healthz took {:?}",
        took.elapsed()
    );
    drop(clients);
    assert_survived(&redis, &mut server, before, 32);
}

#[test]
fn a_body_that_ends_early_is_refused_not_bought() {
    let _alone = alone();
    let (redis, mut server, before) = target(&[]);
    let chunked_unfinished = purchase_head("Transfer-Encoding: chunked\r\n") + "7\r\nmsg=ann\r\n";
    for raw in [
        // Read with the head (up to 1 KiB declared) and after it.
        purchase_head("Content-Length: 20\r\n") + "msg=ann",
        purchase_head("Content-Length: 2000\r\n") + "msg=ann",
        chunked_unfinished,
    ] {
        let mut stream = connect(server.addr);
        stream.write_all(raw.as_bytes()).unwrap();
        stream.shutdown(Shutdown::Write).unwrap(); // the client half-closes
        let (bytes, _) = read_until_closed(&mut stream);
        let answer = String::from_utf8_lossy(&bytes);
        assert_eq!(status_lines(&bytes), ["HTTP/1.1 400 Bad Request"], "{raw}");
        assert!(answer.contains("ended before"), "{answer}");
    }
    assert_only_first_bought(&redis);
    assert_survived(&redis, &mut server, before, 16);
}

#[test]
fn a_refused_body_closes_its_connection() {
    let _alone = alone();
    let (redis, mut server, before) = target(&[]);
    // A chunked body over the limit, with a request hidden after it: one
    // answer, then the connection closes; the hidden one is never read.
    let chunk = format!("800\r\n{}\r\n", "a".repeat(0x800));
    let hidden = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let chunked =
        purchase_head("Transfer-Encoding: chunked\r\n") + &chunk.repeat(3) + "0\r\n\r\n" + hidden;
    // A declared length over the limit, with a request hidden in the body.
    let body = format!("msg=ann&pad={}{hidden}", "x".repeat(100_000));
    let declared = purchase_head(&format!("Content-Length: {}\r\n", body.len())) + &body;
    for raw in [chunked, declared] {
        let lines = flood(server.addr, raw.into_bytes());
        assert_eq!(lines, ["HTTP/1.1 413 Payload Too Large"]);
    }
    assert_survived(&redis, &mut server, before, 16);
}

#[test]
fn a_body_of_unclear_length_is_refused() {
    let _alone = alone();
    let (redis, mut server, before) = target(&[]);
    for (extra, status) in [
        ("Content-Length: seven\r\n", "HTTP/1.1 400 Bad Request"),
        (
            "Content-Length: 7\r\nContent-Length: 9\r\n",
            "HTTP/1.1 400 Bad Request",
        ),
        ("Content-Length: -7\r\n", "HTTP/1.1 400 Bad Request"),
        (
            "Content-Length: 7\r\nTransfer-Encoding: chunked\r\n",
            "HTTP/1.1 400 Bad Request",
        ),
        ("Content-Length: +7\r\n", "HTTP/1.1 400 Bad Request"),
        (
            "Transfer-Encoding: gzip\r\n",
            "HTTP/1.1 501 Not Implemented",
        ),
        (
            "Transfer-Encoding: gzip, chunked\r\n",
            "HTTP/1.1 501 Not Implemented",
        ),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            "HTTP/1.1 501 Not Implemented",
        ),
        // An upgrade does not take the socket from a request with a body:
        // the bytes after its Content-Length are not its body.
        (
            "Connection: Upgrade\r\nContent-Length: 3\r\n",
            "HTTP/1.1 400 Bad Request",
        ),
    ] {
        // The body hides a second request: it must not be read as one.
        let raw = purchase_head(extra) + "msg=ann" + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(flood(server.addr, raw.into_bytes()), [status], "{extra}");
    }
    assert_only_first_bought(&redis);
    assert_survived(&redis, &mut server, before, 16);
}

#[test]
fn the_forms_http_allows_are_understood() {
    let _alone = alone();
    let (_redis, mut server, before) = target(&[]);
    // Lines ended by a bare LF, as RFC 9112 lets a server accept.
    let bare = "GET /healthz HTTP/1.1\nHost: x\nConnection: close\n\n";
    assert_eq!(flood(server.addr, bare.into()), ["HTTP/1.1 200 OK"]);
    // Empty lines before the request line (an old client's CRLF after a
    // body), and the absolute form of a target, which a server must take.
    let blank_first = "\r\n\r\nGET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n";
    assert_eq!(flood(server.addr, blank_first.into()), ["HTTP/1.1 200 OK"]);
    let absolute = "GET http://127.0.0.1/healthz HTTP/1.1\r\nConnection: close\r\n\r\n";
    assert_eq!(flood(server.addr, absolute.into()), ["HTTP/1.1 200 OK"]);
    // Expect: 100-continue: a 100 first for HTTP/1.1, never for HTTP/1.0.
    let body = form_body("expecting");
    for (version, lines) in [
        ("1.1", vec!["HTTP/1.1 100 Continue", "HTTP/1.1 200 OK"]),
        ("1.0", vec!["HTTP/1.0 200 OK"]),
    ] {
        let head = format!(
            "POST /seckill HTTP/{version}\r\nContent-Type: {FORM}\r\nExpect: 100-continue\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let mut stream = connect(server.addr);
        stream.write_all(head.as_bytes()).unwrap();
        if version == "1.1" {
            let mut continued = Vec::new();
            while !continued.ends_with(b"\r\n\r\n") {
                let mut byte = [0; 1];
                stream.read_exact(&mut byte).unwrap();
                continued.push(byte[0]);
            }
            assert_eq!(status_lines(&continued), lines[..1]);
            stream.write_all(body.as_bytes()).unwrap();
            let (rest, _) = read_until_closed(&mut stream);
            assert_eq!(status_lines(&rest), lines[1..]);
        } else {
            stream.write_all(body.as_bytes()).unwrap();
            let (bytes, _) = read_until_closed(&mut stream);
            assert_eq!(status_lines(&bytes), lines);
        }
    }
    assert_recovers(&mut server, before, 16);
}

#[test]
fn keep_alive_is_said_and_connection_close_is_honoured() {
    let _alone = alone();
    let (_redis, mut server, before) = target(&[]);
    // HTTP/1.0 asking for keep-alive: told so, and served twice on one connection.
    let mut stream = connect(server.addr);
    let ask = "GET /healthz HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    stream.write_all(format!("{ask}{ask}").as_bytes()).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let (bytes, _) = read_until_closed(&mut stream);
    let answers = String::from_utf8_lossy(&bytes);
    assert_eq!(status_lines(&bytes).len(), 2, "{answers}");
    assert!(answers.contains("Connection: keep-alive"), "{answers}");
    // HTTP/1.1 with Connection: close, and HTTP/1.0 without keep-alive: one answer each.
    for first in [
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /healthz HTTP/1.0\r\n\r\n",
    ] {
        let mut stream = connect(server.addr);
        stream
            .write_all(format!("{first}{ask}").as_bytes())
            .unwrap();
        let (bytes, _) = read_until_closed(&mut stream);
        let answer = String::from_utf8_lossy(&bytes);
        assert_eq!(status_lines(&bytes).len(), 1, "{answer}");
        assert!(answer.contains("Connection: close"), "{answer}");
    }
    assert_recovers(&mut server, before, 16);
}

#[test]
fn sigterm_waits_a_bounded_time_for_a_half_sent_body() {
    let _alone = alone();
    let redis = Redis::start();
    let mut server = Seckill::start(&redis, &["--body-timeout", "60"]);
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
    assert!(took < Duration::from_secs(13), "stopped after {took:?}");
    wait_for("the report", || server.stdout().contains("verdict:"));
    assert!(
        server
            .stderr()
            .contains("1 requests still in flight after 10 s"),
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

/// Keeps both cores busy until dropped.
struct BusyCores(Vec<thread::JoinHandle<()>>, &'static AtomicBool);

impl BusyCores {
    fn start() -> BusyCores {
        static STOP: AtomicBool = AtomicBool::new(false);
        STOP.store(false, Ordering::SeqCst);
        let spin = || {
            thread::spawn(|| {
                while !STOP.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        };
        BusyCores(vec![spin(), spin()], &STOP)
    }
}

impl Drop for BusyCores {
    fn drop(&mut self) {
        self.1.store(true, Ordering::SeqCst);
        for spinner in self.0.drain(..) {
            let _ = spinner.join();
        }
    }
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
    assert_ab_clean(&report, 5000);
    // A thread per connection at most: a thread started counts as waiting
    // for the next connection before it runs, or every busy thread starts
    // one more while the new ones wait for a core (2000 for this crowd).
    let most = before.threads + 1000 + SPARE_THREADS;
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
    let out = command
        .output()
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

/// Half a head: a slowloris's connection, which never sends the rest.
const HALF_HEAD: &[u8] = b"POST /seckill HTTP/1.1\r\nHost: x\r\n";

/// A slowloris from `source`: `connections` at once, each sending
/// `HALF_HEAD` and opened again once the server answers or closes it (10
/// every 10 ms at most), until `stop`, 30 s or 5000 openings. The openings
/// it made.
fn slowloris(addr: SocketAddr, source: IpAddr, connections: usize, stop: &AtomicBool) -> usize {
    let half_sent = || {
        let mut stream = connect_from(addr, source).ok()?;
        stream.write_all(HALF_HEAD).ok()?;
        stream.set_nonblocking(true).ok()?;
        Some(stream)
    };
    // Anything read (a 408 or a 503) comes before a close.
    let waiting = |stream: &TcpStream| {
        let read = (&*stream).read(&mut [0; 512]);
        matches!(read, Err(err) if err.kind() == ErrorKind::WouldBlock)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut held: Vec<Option<TcpStream>> = (0..connections).map(|_| None).collect();
    let mut opened = 0;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && opened < 5000 {
        let closed = held
            .iter_mut()
            .filter(|slot| !slot.as_ref().is_some_and(waiting));
        for slot in closed.take(10) {
            *slot = half_sent();
            opened += 1;
        }
        thread::sleep(Duration::from_millis(10));
    }
    opened
}

/// `tries` purchases from `buyer`, each on a connection of its own, a
/// twentieth of a second apart: how many were answered 200 within a
/// second. The ids told 1 go into `bought`.
fn buy_from(addr: SocketAddr, buyer: IpAddr, tries: usize, bought: &mut HashSet<String>) -> usize {
    let mut served = 0;
    for n in 0..tries {
        let started = Instant::now();
        let reply = try_buy_from(addr, buyer, &format!("b{n}-"), Duration::from_secs(2));
        if let Ok(reply) = reply
            && reply.status == 200
        {
            served += usize::from(started.elapsed() < Duration::from_secs(1));
            if reply.code() == 1 {
                bought.insert(reply.user_id());
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    served
}

#[test]
fn a_slowloris_from_a_few_addresses_leaves_room_for_other_buyers() {
    let _alone = alone();
    // The defaults' ratio: one client may hold three quarters of all.
    let flags = [
        "--max-connections",
        "200",
        "--max-connections-per-client",
        "150",
        "--head-timeout",
        "1",
    ];
    let (redis, mut server, before) = target(&flags);
    let (addr, pid) = (server.addr, server.pid());
    let buyer = IpAddr::from(Ipv4Addr::new(127, 0, 0, 200));
    let mut bought = HashSet::new();
    let tries = 30;
    // Two addresses holding three quarters each locked every buyer out; 4 and
    // 16 addresses of 127.0.0.x, each holding as many as it may, half-sent.
    let served: Vec<(u8, usize)> = [(10, 4), (30, 16)]
        .into_iter()
        .map(|(first, addresses)| {
            let stop = &AtomicBool::new(false);
            let (served, opened) = thread::scope(|scope| {
                let attackers: Vec<_> = (first..first + addresses)
                    .map(|n| IpAddr::from(Ipv4Addr::new(127, 0, 0, n)))
                    .map(|source| scope.spawn(move || slowloris(addr, source, 150, stop)))
                    .collect();
                // A thread for each connection held: the server is (nearly) full.
                let full = || Figures::of(pid).threads >= before.threads + 190;
                let filled = Duration::from_secs(20);
                wait_for_within("the slowloris to fill the server", filled, full);
                let served = buy_from(addr, buyer, tries, &mut bought);
                stop.store(true, Ordering::SeqCst);
                let opened: usize = attackers.into_iter().map(|a| a.join().unwrap()).sum();
                (served, opened)
            });
            eprintln!(
                "slowloris from {addresses} addresses ({opened} connections opened): \
                 {served} of {tries} purchases from another address served within 1 s"
            );
            (addresses, served)
        })
        .collect();
    for (addresses, served) in served {
        assert!(
            served * 10 >= tries * 9,
            "{addresses} addresses: {served} of {tries} served"
        );
    }
    assert_survived(&redis, &mut server, before, 32);
    assert_sale_exact(&redis, &bought);
}

#[test]
fn a_slow_answer_leaves_the_client_its_whole_idle_timeout() {
    let _alone = alone();
    let flags = [
        "--strategy",
        "lua",
        "--suffix-max",
        "0",
        "--idle-timeout",
        "1",
    ];
    let (redis, mut server, before) = target(&flags);
    let mut stream = connect(server.addr);
    let ask = |id: &str| {
        let body = form_body(id);
        let length = body.len();
        format!(
            "POST /seckill HTTP/1.1\r\nContent-Type: {FORM}\r\nContent-Length: {length}\r\n\r\n{body}"
        )
    };
    // A frozen Redis makes this answer take 400 ms (503, maybe sold).
    redis.freeze();
    stream.write_all(ask("slow").as_bytes()).unwrap();
    let mut first = [0; 12];
    stream.read_exact(&mut first).unwrap();
    redis.thaw();
    assert_eq!(&first, b"HTTP/1.1 503");
    // 0.8 s after that answer, within the second of --idle-timeout: served.
    thread::sleep(Duration::from_millis(800));
    stream.write_all(ask("after-a-pause").as_bytes()).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let (bytes, _) = read_until_closed(&mut stream);
    assert_eq!(
        status_lines(&bytes),
        ["HTTP/1.1 200 OK"],
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_recovers(&mut server, before, 16);
}
