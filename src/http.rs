//! The web side: which path goes where, the answers sent, and the files of
//! static/. Python: `@app.route('/seckill', methods=['POST', 'GET'])`,
//! `jsonify(...)` and `render_template('seckill.html')`.

use std::io::Cursor;

use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde_json::json;
use tiny_http::{Header, Method, Request, Response, ResponseBox, StatusCode};

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/` sends the browser to the page.
    ToPage,
    /// The GET branch of `fun_send`: `render_template('seckill.html')`.
    Page,
    /// The POST branch of `fun_send`: a purchase.
    Purchase,
    /// The sale and this server's answers so far, as JSON.
    Stats,
    /// The same figures in Prometheus's text format.
    Metrics,
    /// Liveness: answers without asking Redis.
    Health,
    /// Readiness: Redis answers and holds a sale.
    Ready,
    Static(StaticFile),
    NotFound,
    /// The path exists, but not for this method; `allow` lists those it takes.
    WrongMethod {
        allow: &'static str,
    },
}

const READ: &str = "GET, HEAD";
const READ_AND_BUY: &str = "GET, HEAD, POST";

/// The route for a method and a request target: a path and query, or the
/// absolute form `http://host:5000/seckill` a server must take too (RFC
/// 9112 3.2.2).
pub fn route(method: &Method, target: &str) -> Route {
    let absolute = ["http://", "https://"]
        .iter()
        .find_map(|s| target.strip_prefix(s));
    let target = absolute.map_or(target, |rest| rest.find('/').map_or("/", |at| &rest[at..]));
    let path = target.split(['?', '#']).next().unwrap_or("");
    let (route, allow) = match path {
        "/" => (Route::ToPage, READ),
        "/seckill" if *method == Method::Post => return Route::Purchase,
        "/seckill" => (Route::Page, READ_AND_BUY),
        "/seckill.html" => (Route::Page, READ),
        "/seckill/stats" => (Route::Stats, READ),
        "/metrics" => (Route::Metrics, READ),
        "/healthz" => (Route::Health, READ),
        "/readyz" => (Route::Ready, READ),
        _ => match path.strip_prefix("/static/").and_then(find_file) {
            Some(file) => (Route::Static(file), READ),
            None => return Route::NotFound,
        },
    };
    match method {
        Method::Get | Method::Head => route,
        _ => Route::WrongMethod { allow },
    }
}

/// Why a request got an error instead of an answer: the `cause` of every
/// JSON error. Programs, the page among them, test it rather than the words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The request is wrong: 4xx.
    BadRequest,
    /// A purchase sent from a page of another site: 403.
    CrossSite,
    /// A request whose `Host` names another server (DNS rebinding): 421.
    WrongHost,
    /// Its body came too slowly: 408.
    Timeout,
    /// A crowd is ahead and no turn came in time: not a fault of Redis.
    Busy,
    /// Redis cannot be reached, or failed.
    Redis,
    /// The Redis user may not run a command the sale needs.
    NoPermission,
    /// Redis holds no sale.
    NoSale,
    /// The stock in Redis is not a whole number, so Redis cannot take one from it.
    BadStock,
    /// Another seckill started a new sale in Redis in place of this server's.
    Replaced,
    /// The purchase reached Redis but its reply was lost: it may have gone through.
    MaybeSold,
    /// Sold on the master, but not confirmed by `--replicas` in time.
    Unreplicated,
    /// The server is stopping.
    Closing,
}

impl Cause {
    pub fn name(self) -> &'static str {
        match self {
            Cause::BadRequest => "bad_request",
            Cause::CrossSite => "cross_site",
            Cause::WrongHost => "wrong_host",
            Cause::Timeout => "timeout",
            Cause::Busy => "busy",
            Cause::Redis => "redis",
            Cause::NoPermission => "no_permission",
            Cause::NoSale => "no_sale",
            Cause::BadStock => "bad_stock",
            Cause::Replaced => "replaced",
            Cause::MaybeSold => "maybe_sold",
            Cause::Unreplicated => "unreplicated",
            Cause::Closing => "closing",
        }
    }
}

pub fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name, value).expect("header names and values here are ASCII")
}

/// A JSON answer. Python: jsonify(...)
pub fn json(status: u16, value: &impl Serialize) -> ResponseBox {
    let text =
        serde_json::to_string(value).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"));
    Response::from_data(text)
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
        // Live figures and one buyer's answer: no cache may keep them.
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .boxed()
}

/// `{"error": "...", "cause": "..."}` with a 4xx or 5xx status.
pub fn error(status: u16, cause: Cause, message: impl std::fmt::Display) -> ResponseBox {
    let body = json!({ "error": message.to_string(), "cause": cause.name() });
    json(status, &body)
}

/// Whether a purchase was sent by a page of another site, by what the
/// browser says: `Sec-Fetch-Site` first, as no page can forge it and a proxy
/// that rewrites `Host` does not spoil it; else `Origin` against `Host`.
/// Neither header, as from ab and curl, is no sign of another site.
pub fn from_another_site(
    fetch_site: Option<&str>,
    origin: Option<&str>,
    host: Option<&str>,
) -> bool {
    let site = fetch_site.map(|site| site.trim().to_ascii_lowercase());
    match site.as_deref() {
        // same-site is another origin too: a sibling subdomain, another port.
        Some("cross-site" | "same-site") => return true,
        Some("same-origin" | "none") => return false,
        _ => {}
    }
    let Some(origin) = origin else {
        return false;
    };
    // `Origin: null` (a sandboxed frame, a data: URL) names no host, and fails here.
    let same = origin_host_port(origin.trim()).zip(host).is_some_and(
        |((origin_host, origin_port, default_port), host)| {
            split_port(host.trim()).is_some_and(|(host, port)| {
                host.eq_ignore_ascii_case(&origin_host)
                    && port.unwrap_or(default_port) == origin_port
            })
        },
    );
    !same
}

/// The host and port of an `Origin` (`scheme://host[:port]`), and the
/// default port of its scheme, which a `Host` without a port means.
fn origin_host_port(origin: &str) -> Option<(String, u16, u16)> {
    let (scheme, authority) = origin.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = split_port(authority)?;
    Some((host.to_string(), port.unwrap_or(default_port), default_port))
}

/// `host[:port]`, an IPv6 host in brackets; None when the host is empty or
/// the port is not a port.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let colon = authority
        .rfind(':')
        .filter(|&at| !authority[at..].contains(']'));
    let (host, port) = match colon {
        Some(at) => (&authority[..at], Some(authority[at + 1..].parse().ok()?)),
        None => (authority, None),
    };
    (!host.is_empty()).then_some((host, port))
}

/// 403 for a purchase sent by a page of another site (`from_another_site`),
/// judged on its head alone, before its body is read.
pub fn cross_site_refusal(request: &Request) -> Option<ResponseBox> {
    let value = |name: &'static str| {
        let found = request.headers().iter().find(|h| h.field.equiv(name));
        found.map(|h| h.value.as_str())
    };
    let (fetch_site, origin) = (value("Sec-Fetch-Site"), value("Origin"));
    if !from_another_site(fetch_site, origin, value("Host")) {
        return None;
    }
    let sender = origin.map_or(String::new(), |origin| format!(" (Origin: {origin})"));
    let words = format!(
        "this purchase was sent by a page of another site{sender}, not by the sale's own \
         page, so nothing was bought; to buy, open the sale's page at /seckill on this server"
    );
    Some(error(403, Cause::CrossSite, words))
}

/// 405 with the methods the path takes.
pub fn wrong_method(allow: &str) -> ResponseBox {
    let what = format!("this path takes {allow}");
    error(405, Cause::BadRequest, what).with_header(header("Allow", allow))
}

/// 503 to a request that comes while the server stops; it also closes the
/// connection, so keep-alive clients leave.
pub fn closing() -> ResponseBox {
    let closing = error(503, Cause::Closing, "the sale is closing");
    closing.with_header(header("Connection", "close"))
}

/// Prometheus's text format (version 0.0.4).
pub fn metrics(text: String) -> ResponseBox {
    let answer = Response::from_data(text.into_bytes())
        .with_header(header(
            "Content-Type",
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .with_header(header("Cache-Control", "no-store"));
    answer.boxed()
}

pub fn redirect(location: &str) -> ResponseBox {
    let moved = Response::empty(StatusCode(302));
    moved.with_header(header("Location", location)).boxed()
}

/// Every file of static/ by name, built into the binary by build.rs, so
/// seckill serves its page wherever it is started from.
static FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/static_files.rs"));

/// A file of static/: its name and bytes.
pub type StaticFile = (&'static str, &'static [u8]);

/// The page; build.rs refuses to build without it.
pub fn page() -> StaticFile {
    find_file("seckill.html").unwrap_or(("seckill.html", b""))
}

/// The file named by the rest of a `/static/` URL, percent-decoded. Only the
/// exact name of a file in static/ matches, so no path can climb out of it.
fn find_file(encoded_name: &str) -> Option<StaticFile> {
    let name = percent_decode_str(encoded_name).decode_utf8().ok()?;
    FILES.iter().copied().find(|(file, _)| *file == name)
}

/// What the page may load and who may frame it: its own scripts, stylesheet
/// and fetches, and the empty `data:,` icon; no inline script or style, so
/// markup slipped into the page could run nothing; and no page may frame it
/// (a buy button under another site's frame is clickjacking).
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// A file of static/, sent from the bytes built into the binary.
pub fn file((name, bytes): StaticFile) -> ResponseBox {
    let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    let headers = vec![
        header("Content-Type", content_type),
        // Built into the binary: a rebuilt server may send new files, so a
        // browser asks again each time (a 200, as there is no ETag).
        header("Cache-Control", "no-cache"),
        header("X-Content-Type-Options", "nosniff"),
        header("Content-Security-Policy", PAGE_POLICY),
        // frame-ancestors for browsers that predate it: no page may frame this one.
        header("X-Frame-Options", "DENY"),
    ];
    Response::new(
        StatusCode(200),
        headers,
        Cursor::new(bytes),
        Some(bytes.len()),
        None,
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn routes_the_tutorial_paths() {
        assert_eq!(route(&Method::Get, "/seckill"), Route::Page);
        assert_eq!(route(&Method::Head, "/seckill?x=1"), Route::Page);
        assert_eq!(route(&Method::Get, "/seckill.html"), Route::Page);
        assert_eq!(route(&Method::Post, "/seckill"), Route::Purchase);
        assert_eq!(route(&Method::Get, "/"), Route::ToPage);
        assert_eq!(route(&Method::Get, "/seckill/stats"), Route::Stats);
        assert_eq!(route(&Method::Get, "/healthz"), Route::Health);
        assert_eq!(route(&Method::Head, "/readyz"), Route::Ready);
        let absolute = "http://127.0.0.1:5000/seckill?x=1";
        assert_eq!(route(&Method::Post, absolute), Route::Purchase);
        assert_eq!(route(&Method::Get, "http://127.0.0.1:5000"), Route::ToPage);
        assert!(matches!(
            route(&Method::Get, "/static/seckill.html"),
            Route::Static(("seckill.html", _))
        ));
    }

    #[test]
    fn refuses_unknown_paths_and_methods() {
        assert_eq!(route(&Method::Get, "/nope"), Route::NotFound);
        assert_eq!(
            route(&Method::Get, "/static/../Cargo.toml"),
            Route::NotFound
        );
        assert_eq!(route(&Method::Get, "/seckill/"), Route::NotFound);
        let buy = Route::WrongMethod {
            allow: READ_AND_BUY,
        };
        assert_eq!(route(&Method::Delete, "/seckill"), buy);
        let read = Route::WrongMethod { allow: READ };
        assert_eq!(route(&Method::Post, "/seckill.html"), read);
        assert_eq!(route(&Method::Post, "/static/nope.js"), Route::NotFound);
    }

    #[test]
    fn finds_files_by_exact_name_only() {
        assert_eq!(
            find_file("seckill.html").map(|(name, _)| name),
            Some("seckill.html")
        );
        assert_eq!(
            find_file("seckill%2Ehtml").map(|(name, _)| name),
            Some("seckill.html")
        );
        for climb in [
            "../Cargo.toml",
            "..%2FCargo.toml",
            "%2e%2e/Cargo.toml",
            "%2e%2e%2fsrc%2fmain.rs",
            "./seckill.html",
            "/etc/passwd",
            "%2Fetc%2Fpasswd",
            "..\\Cargo.toml",
            "seckill.html%00",
            "%ff",
            "",
        ] {
            assert_eq!(find_file(climb), None, "{climb}");
        }
    }

    #[test]
    fn a_purchase_from_another_site_is_told_by_sec_fetch_site_first() {
        let host = Some("127.0.0.1:5000");
        let page = Some("http://127.0.0.1:5000");
        for site in ["cross-site", "same-site", "Cross-Site"] {
            assert!(from_another_site(Some(site), page, host), "{site}");
            assert!(from_another_site(Some(site), None, host), "{site}");
        }
        for site in ["same-origin", "none", " Same-Origin "] {
            assert!(!from_another_site(Some(site), page, host), "{site}");
        }
        // The browser's word stands when a proxy rewrote Host.
        let proxied = Some("https://shop.example");
        assert!(!from_another_site(Some("same-origin"), proxied, host));
        // A value it does not know leaves the judgement to Origin.
        let evil = Some("http://evil.example");
        assert!(from_another_site(Some("sideways"), evil, host));
        assert!(!from_another_site(Some("sideways"), page, host));
    }

    #[test]
    fn a_purchase_from_another_site_is_told_by_origin_and_host() {
        let same = [
            ("http://127.0.0.1:5000", "127.0.0.1:5000"),
            ("HTTP://Shop.Example:5000", "shop.example:5000"),
            ("http://shop.example", "shop.example"),
            ("http://shop.example", "shop.example:80"),
            ("http://shop.example:80", "shop.example"),
            ("https://shop.example", "shop.example"),
            ("https://shop.example", "Shop.Example:443"),
            ("http://[::1]:5000", "[::1]:5000"),
            ("http://[::1]", "[::1]:80"),
        ];
        for (origin, host) in same {
            assert!(
                !from_another_site(None, Some(origin), Some(host)),
                "{origin} {host}"
            );
        }
        let other = [
            ("http://evil.example", "127.0.0.1:5000"),
            ("http://127.0.0.1:5001", "127.0.0.1:5000"),
            ("http://localhost:5000", "127.0.0.1:5000"),
            ("http://shop.example:8080", "shop.example"),
            ("https://shop.example", "shop.example:80"),
            ("http://shop.example", "shop.example:443"),
            ("http://shop.example.evil.example", "shop.example"),
            ("null", "127.0.0.1:5000"),
            ("ftp://127.0.0.1:5000", "127.0.0.1:5000"),
            ("http://", ""),
            ("http://127.0.0.1:5000", "127.0.0.1:x"),
        ];
        for (origin, host) in other {
            assert!(
                from_another_site(None, Some(origin), Some(host)),
                "{origin} {host}"
            );
        }
        // An Origin with no Host to hold it against cannot be shown the same.
        assert!(from_another_site(None, Some("http://127.0.0.1:5000"), None));
        // ab and curl send neither header.
        assert!(!from_another_site(None, None, Some("127.0.0.1:5000")));
        assert!(!from_another_site(None, None, None));
    }

    proptest! {
        #[test]
        fn only_files_of_static_are_served(target in "(/static/)?(\\.|%2[eEfF]|%5[cC]|/|\\\\|[a-z.]|\\PC){0,30}") {
            if let Route::Static((name, _)) = route(&Method::Get, &target) {
                prop_assert!(!name.contains('/') && !name.contains('\\') && !name.starts_with('.'));
                prop_assert_eq!(find_file(name).map(|(found, _)| found), Some(name));
            }
        }
    }
}
