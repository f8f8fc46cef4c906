//! The web side: which path goes where, the answers sent, and the files of
//! static/. Python: `@app.route('/seckill', methods=['POST', 'GET'])`,
//! `jsonify(...)` and `render_template('seckill.html')`.

use std::io::Cursor;

use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use tiny_http::{Header, Method, Response, ResponseBox, StatusCode};

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
    /// Its body came too slowly: 408.
    Timeout,
    /// A crowd is ahead and no turn came in time: not a fault of Redis.
    Busy,
    /// Redis cannot be reached, or failed.
    Redis,
    /// Redis holds no sale.
    NoSale,
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
            Cause::Timeout => "timeout",
            Cause::Busy => "busy",
            Cause::Redis => "redis",
            Cause::NoSale => "no_sale",
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
pub fn json(status: u16, value: &Value) -> ResponseBox {
    Response::from_data(value.to_string())
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
        .boxed()
}

/// `{"error": "...", "cause": "..."}` with a 4xx or 5xx status.
pub fn error(status: u16, cause: Cause, message: impl std::fmt::Display) -> ResponseBox {
    let body = json!({ "error": message.to_string(), "cause": cause.name() });
    json(status, &body)
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
    let headers = vec![header("Content-Type", content_type)];
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
