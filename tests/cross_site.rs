//! A page of another site cannot make a visitor's browser buy: a purchase
//! whose `Origin` or `Sec-Fetch-Site` names another site is a 403
//! `cross_site`, while the page itself, ab and curl buy as before.

mod common;

use common::{FORM, Redis, Seckill, form_body, get, request, send};
use redis::Commands;

/// The headers of a purchase with `extra` after the form's Content-Type.
fn purchase<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![("Content-Type", FORM)];
    headers.extend_from_slice(extra);
    headers
}

#[test]
fn a_purchase_sent_by_another_sites_page_is_refused_and_buys_nothing() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &[]);
    let body = form_body("mallory");
    // What Chromium sends for another site's `fetch(..., {mode: "no-cors"})`,
    // and each sign of another site alone.
    let cases: [&[(&str, &str)]; 6] = [
        &[
            ("Origin", "http://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Sec-Fetch-Mode", "no-cors"),
        ],
        &[("Origin", "http://evil.example")],
        &[("Sec-Fetch-Site", "cross-site")],
        &[("Sec-Fetch-Site", "same-site")],
        &[("Origin", "null")],
        &[("Origin", "HTTP://EVIL.EXAMPLE:80")],
    ];
    for extra in cases {
        let reply = request(
            server.addr,
            "POST",
            "/seckill",
            &purchase(extra),
            body.as_bytes(),
        );
        assert_eq!(reply.status, 403, "{extra:?}: {}", reply.text());
        let answer = reply.json();
        assert_eq!(answer["cause"], "cross_site", "{extra:?}");
        assert!(answer.get("response_num").is_none(), "{extra:?}");
        let error = answer["error"].as_str().unwrap();
        for says in ["another site", "nothing was bought", "/seckill"] {
            assert!(error.contains(says), "{extra:?}: {error}");
        }
    }
    let winners: i64 = redis.con().scard("user:id").unwrap();
    assert_eq!(winners, 1, "nobody bought: only the placeholder");
    let stats = get(server.addr, "/seckill/stats").json();
    assert_eq!(stats["requests"], cases.len());
    assert_eq!(stats["errors"], cases.len(), "each counts as refused");
}

#[test]
fn the_pages_own_purchases_and_ab_and_curl_buy() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--suffix-max", "0"]);
    let page = format!("http://{}", server.addr);
    let same_origin = [
        // Chromium's post from the page itself.
        vec![
            ("Origin", page.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
            ("Sec-Fetch-Mode", "cors"),
        ],
        // A browser that sends Origin only.
        vec![("Origin", page.as_str())],
        // An address typed or bookmarked: no site sent it.
        vec![("Sec-Fetch-Site", "none")],
        // ab and curl send neither.
        vec![],
    ];
    for (i, extra) in same_origin.iter().enumerate() {
        let id = format!("buyer{i}");
        let reply = request(
            server.addr,
            "POST",
            "/seckill",
            &purchase(extra),
            form_body(&id).as_bytes(),
        );
        assert_eq!(reply.status, 200, "{extra:?}: {}", reply.text());
        assert_eq!(reply.code(), 1, "{extra:?}");
    }
    // ab's own request: HTTP/1.0, with no Host.
    let body = form_body("ab");
    let raw = format!(
        "POST /seckill HTTP/1.0\r\nContent-Type: {FORM}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = common::send(server.addr, raw.as_bytes()).unwrap();
    assert_eq!(reply.code(), 1, "{}", reply.text());
    let winners: i64 = redis.con().scard("user:id").unwrap();
    assert_eq!(
        winners as usize,
        same_origin.len() + 2,
        "each bought, and null"
    );
}

/// DNS rebinding: a page whose own name (evil.test) its owner points at
/// this server's address is, to the visitor's browser, the same site; its
/// requests carry that name in `Host`. They are refused (421 `wrong_host`,
/// naming the flag), buy nothing and read nothing; the server's addresses,
/// `localhost` and names given with `--allowed-host` are answered.
#[test]
fn a_page_of_another_name_pointed_at_the_server_is_refused() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--allowed-host", "shop.example"]);
    let body = form_body("mallory");
    let raw = |method: &str, path: &str, host: &str, body: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n\
             Sec-Fetch-Site: same-origin\r\nContent-Type: {FORM}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let port = server.addr.port();
    for host in [format!("evil.test:{port}"), "evil.test".to_string()] {
        for (method, path, body) in [
            ("POST", "/seckill", body.as_str()),
            ("GET", "/seckill/stats", ""),
        ] {
            let reply = send(server.addr, raw(method, path, &host, body).as_bytes()).unwrap();
            assert_eq!(
                reply.status,
                421,
                "{method} {path} as {host}: {}",
                reply.text()
            );
            let answer = reply.json();
            assert_eq!(answer["cause"], "wrong_host");
            let error = answer["error"].as_str().unwrap();
            assert!(error.contains("--allowed-host evil.test"), "{error}");
        }
    }
    let winners: i64 = redis.con().scard("user:id").unwrap();
    assert_eq!(winners, 1, "nobody bought: only the placeholder");
    // The names and addresses of this server buy, as the page, ab and curl do.
    for (n, host) in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("shop.example:{port}"),
        format!("[::1]:{port}"),
    ]
    .iter()
    .enumerate()
    {
        let reply = send(
            server.addr,
            raw("POST", "/seckill", host, &form_body(&format!("b{n}"))).as_bytes(),
        )
        .unwrap();
        assert_eq!(reply.status, 200, "{host}: {}", reply.text());
    }
}
