//! Hostile clients, the bodies they may send: huge, cut short, of unclear
//! length, or refused.
//!
//! Each attack runs against a fresh server on a real Redis, bounded in count,
//! bytes and time, on loopback. After each, the server lives and answers
//! `/healthz` within a second, its threads, descriptors and memory come
//! back, and the sale is exact. The patches of vendor/tiny_http that these
//! tests show are listed in vendor/tiny_http/PATCHES.md.

mod common;

use std::io::Write;
use std::net::Shutdown;

use common::attack::{
    alone, assert_only_first_bought, assert_survived, flood, purchase_head, target,
};
use common::{FORM, connect, read_until_closed, send, status_lines};

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
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {FORM}\r\n\
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
    let hidden = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
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
        let raw =
            purchase_head(extra) + "msg=ann" + "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        assert_eq!(flood(server.addr, raw.into_bytes()), [status], "{extra}");
    }
    assert_only_first_bought(&redis);
    assert_survived(&redis, &mut server, before, 16);
}
