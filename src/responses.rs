//! The HTTP answers the server sends.

use std::io::Cursor;

use serde_json::json;
use tiny_http::{Header, Response, ResponseBox, StatusCode};

use crate::static_files::{self, StaticFile};

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

/// `{"error": "..."}` with a 4xx or 5xx status.
pub fn error(status: u16, message: impl std::fmt::Display) -> ResponseBox {
    json(status, &json!({ "error": message.to_string() }))
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
    error(405, format!("this path takes {allow}")).with_header(header("Allow", allow))
}
