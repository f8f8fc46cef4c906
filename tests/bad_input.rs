//! Bad input gets a 4xx with a JSON error that says what was wrong, and the
//! server lives on.

mod common;

use common::{Redis, Seckill, buy, get, request, send, send_whole_or_not};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use redis::Commands;

const FORM: (&str, &str) = ("Content-Type", common::FORM);

#[test]
fn each_bad_purchase_gets_its_own_4xx() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &[]);
    let long_id = format!("msg={}", "x".repeat(65));
    let big_body = format!("msg=ann&pad={}", "x".repeat(5000));
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [u8], u16, &'a str);
    let cases: [Case; 10] = [
        (&[FORM], b"", 400, "no field `msg`"),
        (&[FORM], b"user=ann", 400, "no field `msg`"),
        (&[FORM], b"msg=%20%09", 400, "blank"),
        (
            &[FORM],
            long_id.as_bytes(),
            400,
            "65 bytes long; the most is 64",
        ),
        (&[FORM], big_body.as_bytes(), 413, "larger than 4096 bytes"),
        (&[FORM], b"msg=\xff\xfe", 400, "not valid UTF-8"),
        (&[FORM], b"msg=%C3%28", 400, "not valid UTF-8"),
        (&[FORM], b"msg=a%0Ab", 400, "control character"),
        (
            &[("Content-Type", "text/plain")],
            b"msg=ann",
            415,
            "-T application/x-www-form-urlencoded",
        ),
        (
            &[],
            b"msg=ann",
            415,
            "Content-Type: application/x-www-form-urlencoded",
        ),
    ];
    for (headers, body, status, says) in cases {
        let reply = request(server.addr, "POST", "/seckill", headers, body);
        let shown = String::from_utf8_lossy(body);
        assert_eq!(reply.status, status, "{shown}: {}", reply.text());
        assert_eq!(reply.header("Content-Type"), Some("application/json"));
        let error = reply.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(says), "{shown}: {error}");
    }
    assert_eq!(
        redis.con().scard::<_, i64>("user:id").unwrap(),
        1,
        "nobody bought"
    );
    let stats = get(server.addr, "/seckill/stats").json();
    assert_eq!(stats["errors"], cases.len(), "each counts as an error");
    assert_eq!(get(server.addr, "/healthz").status, 200, "still alive");
}

#[test]
fn ids_with_unseen_characters_are_refused_and_any_script_buys() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--suffix-max", "0"]);
    for (id, code) in [
        ("al\u{200B}ice", "U+200B"),
        ("\u{202E}ecila", "U+202E"),
        ("ann\u{2028}lee", "U+2028"),
        ("al\u{200D}ice", "U+200D"),
        ("\u{FEFF}alice", "U+FEFF"),
        // Shown as nothing: each would be a winner printed as "alice", or blank.
        ("alice\u{034F}", "U+034F"),
        ("alice\u{FE00}", "U+FE00"),
        ("alice\u{180B}", "U+180B"),
        ("alice\u{E0100}", "U+E0100"),
        ("\u{3164}", "U+3164"),
    ] {
        let reply = buy(server.addr, id);
        assert_eq!(reply.status, 400, "{id:?}: {}", reply.text());
        let answer = reply.json();
        assert_eq!(answer["cause"], "bad_request");
        let error = answer["error"].as_str().unwrap();
        let says = format!("invisible or direction-changing character ({code})");
        assert!(error.contains(&says), "{id:?}: {error}");
    }
    let winners: Vec<String> = redis.con().smembers("user:id").unwrap();
    assert_eq!(winners, ["null"], "nobody bought");
    for id in ["张伟", "محمد", "Анна", "José", "🎉"] {
        let reply = buy(server.addr, id);
        assert_eq!(reply.code(), 1, "{id}: {}", reply.text());
        assert_eq!(reply.user_id(), id);
    }
    let winners: i64 = redis.con().scard("user:id").unwrap();
    assert_eq!(winners, 6, "five winners and null");
    let log = server.wait_for_stdout("张伟");
    let unseen = ['\u{200B}', '\u{202E}', '\u{2028}', '\u{200D}', '\u{FEFF}'];
    assert!(!log.contains(unseen), "the log holds none: {log:?}");
}

#[test]
fn a_large_body_is_refused_without_being_read() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &[]);
    // Chunked, with no length to check first: read up to the limit, then 413.
    let mut raw = b"POST /seckill HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
        Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for _ in 0..3 {
        raw.extend_from_slice(b"800\r\n");
        raw.extend_from_slice(&[b'a'; 0x800]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let reply = send(server.addr, &raw).unwrap();
    assert_eq!(reply.status, 413, "{}", reply.text());
    // A declared length over the limit is refused before any of it arrives.
    let reply = send(
        server.addr,
        b"POST /seckill HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 5000\r\n\r\nmsg=ann",
    );
    assert_eq!(reply.unwrap().status, 413);
    assert_eq!(get(server.addr, "/healthz").status, 200);
}

#[test]
fn unknown_paths_and_wrong_methods() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &[]);
    let reply = get(server.addr, "/admin");
    assert_eq!(reply.status, 404);
    assert!(reply.json()["error"].as_str().unwrap().contains("/seckill"));
    for (method, path, allow) in [
        ("DELETE", "/seckill", "GET, HEAD, POST"),
        ("PUT", "/seckill", "GET, HEAD, POST"),
        ("POST", "/seckill.html", "GET, HEAD"),
        ("POST", "/seckill/stats", "GET, HEAD"),
        ("POST", "/healthz", "GET, HEAD"),
        ("PATCH", "/", "GET, HEAD"),
        ("POST", "/static/seckill.js", "GET, HEAD"),
    ] {
        let reply = request(server.addr, method, path, &[], b"");
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.header("Allow"), Some(allow), "{method} {path}");
        assert!(reply.json()["error"].is_string());
    }
    for path in [
        "/healthz",
        "/readyz",
        "/seckill/stats",
        "/static/seckill.js",
    ] {
        let head = request(server.addr, "HEAD", path, &[], b"");
        assert_eq!(head.status, 200, "HEAD {path}");
        assert!(head.body.is_empty(), "HEAD {path}");
    }
}

/// Bytes in the shapes a request's parts take, with the pieces that break parsers.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_string()),
        Just("..".to_string()),
        Just("%2e%2E%2f".to_string()),
        Just("%".to_string()),
        Just("%ff".to_string()),
        Just("?".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ]
}

fn raw_request() -> impl Strategy<Value = Vec<u8>> {
    // Weighted so that purchases come often: about one case in 18 is a POST
    // to /seckill as is, and 300 cases without one are as good as never.
    let method = prop_oneof![
        1 => Just("GET".to_string()),
        3 => Just("POST".to_string()),
        1 => Just("HEAD".to_string()),
        1 => "[A-Z]{1,8}",
    ];
    let start = prop_oneof![
        4 => Just("/seckill"),
        1 => Just("/seckill.html"),
        1 => Just("/seckill/stats"),
        1 => Just("/static/"),
        1 => Just("/"),
        1 => Just(""),
    ];
    let content_type = prop_oneof![
        Just(Some("application/x-www-form-urlencoded")),
        Just(Some("text/plain")),
        Just(Some("application/x-www-form-urlencoded; charset=\u{1}")),
        Just(None),
    ];
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        "msg=[ -~]{0,80}".prop_map(String::into_bytes),
        "msg=(%[0-9A-Fa-f]{2}){0,30}".prop_map(String::into_bytes),
        prop::collection::vec(Just(b'a'), 4000..4200),
    ];
    let pieces = prop::collection::vec(piece(), 0..4);
    (method, start, pieces, content_type, body).prop_map(
        |(method, start, pieces, content_type, body)| {
            let mut head = format!(
                "{method} {start}{} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
                pieces.concat()
            );
            if let Some(content_type) = content_type {
                head += &format!("Content-Type: {content_type}\r\n");
            }
            head += &format!("Content-Length: {}\r\n\r\n", body.len());
            let mut raw = head.into_bytes();
            raw.extend_from_slice(&body);
            raw
        },
    )
}

/// Whatever arrives, the answer is a well-formed HTTP response that is not a
/// server error, and the server answers the next request.
#[test]
fn no_request_breaks_the_server() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--quiet"]);
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&raw_request(), |raw| {
        let shown = String::from_utf8_lossy(&raw);
        let reply = send_whole_or_not(server.addr, &raw);
        prop_assert!(reply.is_ok(), "{reply:?} for {shown}");
        let status = reply.unwrap().status;
        prop_assert!((200..500).contains(&status), "{status} for {shown}");
        prop_assert_eq!(get(server.addr, "/healthz").status, 200);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}\n{}", server.stderr());
    }
    let stats = get(server.addr, "/seckill/stats").json();
    assert!(
        stats["requests"].as_u64().unwrap() > 0,
        "some cases reached the purchase"
    );
}
