//! The HTTP answers the server sends.

use std::io::Cursor;

use serde_json::json;
use tiny_http::{Header, Response, ResponseBox, StatusCode};

use crate::static_files::{self, StaticFile};

/// Why a request got an error instead of an answer: the `cause` of every
/// JSON error, which programs (the page among them) test instead of the words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The request itself is wrong: 4xx.
    BadRequest,
    /// The request's body came too slowly: 408.
    Timeout,
    /// A crowd is ahead: no turn came in time. Not a fault of Redis.
    Busy,
    /// Redis cannot be reached, or failed.
    Redis,
    /// Redis holds no sale.
    NoSale,
    /// The server is stopping.
    Closing,
    /// The purchase was sent to Redis but its reply was lost: it may have
    /// gone through.
    MaybeSold,
}

impl Cause {
    pub fn name(self) -> &'static str {
        match self {
            Cause::BadRequest => "bad_request",
            Cause::Timeout => "timeout",
            Cause::Busy => "busy",
            Cause::Redis => "redis",
            Cause::NoSale => "no_sale",
            Cause::Closing => "closing",
            Cause::MaybeSold => "maybe_sold",
        }
    }
}

pub fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name, value).expect("header names and values here are ASCII")
}

/// A JSON answer. Python: jsonify(...)
pub fn json(status: u16, value: &serde_json::Value) -> ResponseBox {
    Response::from_data(value.to_string())
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
        .boxed()
}

/// `{"error": "...", "cause": "..."}` with a 4xx or 5xx status.
pub fn error(status: u16, cause: Cause, message: impl std::fmt::Display) -> ResponseBox {
    json(
        status,
        &json!({ "error": message.to_string(), "cause": cause.name() }),
    )
}

/// A file of static/, sent from the bytes built into the binary.
pub fn file((name, bytes): StaticFile) -> ResponseBox {
    Response::new(
        StatusCode(200),
        vec![header("Content-Type", static_files::content_type(name))],
        Cursor::new(bytes),
        Some(bytes.len()),
        None,
    )
    .boxed()
}

/// A redirect to another path of this server.
pub fn redirect(location: &str) -> ResponseBox {
    Response::empty(StatusCode(302))
        .with_header(header("Location", location))
        .boxed()
}

/// 405 with the methods the path takes.
pub fn wrong_method(allow: &str) -> ResponseBox {
    error(405, Cause::BadRequest, format!("this path takes {allow}"))
        .with_header(header("Allow", allow))
}

/// 503 to a request that arrives while the server stops; it also closes the
/// connection, so keep-alive clients leave.
pub fn closing() -> ResponseBox {
    error(503, Cause::Closing, "the sale is closing").with_header(header("Connection", "close"))
}
