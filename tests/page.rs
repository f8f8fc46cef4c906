//! The page and the files around it: `GET /seckill` and static/.

mod common;

use common::{Redis, Seckill, get, request};

#[test]
fn serves_the_tutorial_page() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &[]);
    for path in ["/seckill", "/seckill.html", "/seckill?from=ab"] {
        let page = get(server.addr, path);
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(
            page.header("Content-Type"),
            Some("text/html; charset=utf-8")
        );
        let html = page.text();
        for part in [
            "<title>Redis High Concurrency Testing</title>",
            r#"id="user""#,
            r#"id="submit""#,
            r#"id="rep""#,
            r#"id="res""#,
            r#"src="static/seckill.js""#,
        ] {
            assert!(html.contains(part), "{path} lacks {part}");
        }
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "nothing from elsewhere"
        );
    }
    let mut scripts = String::new();
    for name in ["seckill.js", "buy.js", "crowd.js", "live.js", "chart.js"] {
        let script = get(server.addr, &format!("/static/{name}"));
        assert_eq!(script.status, 200, "{name}");
        assert_eq!(
            script.header("Content-Type"),
            Some("text/javascript; charset=utf-8")
        );
        let text = script.text();
        assert!(!text.contains("innerHTML"), "{name} sets answers as text");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{name} loads nothing from elsewhere"
        );
        scripts += &text;
    }
    // Relative URLs, so the page works from any host name.
    assert!(scripts.contains(r#"fetch("seckill""#), "posts to /seckill");
    assert!(
        scripts.contains(r#"get("seckill/stats")"#),
        "polls the stats"
    );
    let style = get(server.addr, "/static/seckill.css");
    assert_eq!(
        style.header("Content-Type"),
        Some("text/css; charset=utf-8")
    );
}

/// The page may not be framed (clickjacking) nor load anything from
/// elsewhere, no file is taken for another type, and a rebuilt server's new
/// files are fetched again; live answers are never cached.
#[test]
fn the_page_and_its_files_tell_browsers_what_they_may_do() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &[]);
    for path in ["/seckill", "/static/buy.js", "/static/seckill.css"] {
        let reply = get(server.addr, path);
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(reply.header("X-Frame-Options"), Some("DENY"), "{path}");
        assert_eq!(reply.header("Cache-Control"), Some("no-cache"), "{path}");
        let policy = reply.header("Content-Security-Policy").unwrap_or("");
        for part in [
            "frame-ancestors 'none'",
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "img-src 'self' data:",
        ] {
            assert!(policy.contains(part), "{path} lacks {part}: {policy}");
        }
    }
    // The policy allows no inline script or style: the page has none.
    let html = get(server.addr, "/seckill").text();
    assert!(!html.contains("<style") && !html.contains(" style="));
    let (scripts, files) = (
        html.matches("<script").count(),
        html.matches(" src=").count(),
    );
    assert_eq!(scripts, files, "every script is a file");
    for path in ["/seckill/stats", "/healthz", "/nope"] {
        let reply = get(server.addr, path);
        assert_eq!(reply.header("Cache-Control"), Some("no-store"), "{path}");
        assert_eq!(reply.header("X-Content-Type-Options"), Some("nosniff"));
    }
    let purchase = common::buy(server.addr, "ann");
    assert_eq!(purchase.header("Cache-Control"), Some("no-store"));
}

#[test]
fn sends_the_root_to_the_page() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &[]);
    let reply = get(server.addr, "/");
    assert_eq!(reply.status, 302);
    assert_eq!(reply.header("Location"), Some("/seckill"));
}

#[test]
fn head_answers_like_get_without_a_body() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &[]);
    let full = get(server.addr, "/seckill");
    let head = request(server.addr, "HEAD", "/seckill", &[], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("Content-Length"),
        Some(full.body.len().to_string().as_str())
    );
}

#[test]
fn nothing_outside_static_is_served() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &[]);
    for path in [
        "/static/../Cargo.toml",
        "/static/..%2FCargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/%2E%2E%2Fsrc%2Fmain.rs",
        "/static/..%5CCargo.toml",
        "/static/%2Fetc%2Fpasswd",
        "/static//etc/passwd",
        "/static/./seckill.js",
        "/static/",
        "/static",
        "/src/main.rs",
        "/../Cargo.toml",
        "/static/seckill.js%00",
    ] {
        let reply = get(server.addr, path);
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
        assert!(reply.json()["error"].is_string(), "{path}");
        assert!(
            !reply.text().contains("[package]"),
            "{path} leaked Cargo.toml"
        );
    }
}
