//! Hostile clients, what HTTP they may send: other versions, oversized heads,
//! the forms HTTP allows, keep-alive and pipelining.
//!
//! Each attack runs against a fresh server on a real Redis, bounded in count,
//! bytes and time, on loopback. After each, the server lives and answers
//! `/healthz` within a second, its threads, descriptors and memory come
//! back, and the sale is exact. The patches of vendor/tiny_http that these
//! tests show are listed in vendor/tiny_http/PATCHES.md.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::attack::{QUICK, alone, assert_survived, flood, target};
use common::health::{Figures, assert_recovers};
use common::tools::{ab, assert_ab_clean};
use common::{FORM, connect, form_body, get, read_until_closed, status_lines};

#[test]
fn http2_and_other_versions_are_answered_505_and_closed() {
    let _alone = alone();
    let (redis, mut server, before) = target(&[]);
    let attempts: [&[u8]; 5] = [
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET / HTTP/3.0\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET /seckill HTTP/1.2\r\nHost: 127.0.0.1\r\n\r\n",
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
    // request line. Each is cut off at its limit: answered and closed, and
    // the server's memory never held more than a sliver of the 30 MB.
    let tiny_headers = [
        b"GET / HTTP/1.1\r\n".as_slice(),
        &b"a:b\r\n".repeat(2_000_000),
    ]
    .concat();
    let endless_header = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 10_000_000]].concat();
    let endless_line = [b"GET /".as_slice(), &[b'a'; 10_000_000]].concat();
    let floods = [
        (tiny_headers, too_large),
        (endless_header, too_large),
        (endless_line, "HTTP/1.1 414 URI Too Long"),
    ];
    let peak_before = Figures::of(server.pid()).peak_kb;
    for (raw, status) in floods {
        assert_eq!(flood(server.addr, raw), [status]);
    }
    let peak = Figures::of(server.pid()).peak_kb;
    assert!(
        peak <= peak_before + 2048,
        "the floods raised the peak of resident memory from {peak_before} to {peak} kB"
    );
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
    let pipeline = "GET /seckill HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(2000);
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
fn the_forms_http_allows_are_understood() {
    let _alone = alone();
    let (_redis, mut server, before) = target(&[]);
    // Lines ended by a bare LF, as RFC 9112 lets a server accept.
    let bare = "GET /healthz HTTP/1.1\nHost: 127.0.0.1\nConnection: close\n\n";
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
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
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
