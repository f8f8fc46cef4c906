//! seckill patch: limits and timeouts, so that no client can hold the server.
//! tiny_http 0.12.0 had none: a head could grow without end, and a silent
//! client kept its thread forever. See PATCHES.md.

use std::time::Duration;

/// How much a client may send, how long it may take, and how many clients
/// may be connected at once. `Server::from_listener` uses `Limits::default()`;
/// `Server::from_listener_with_limits` takes others.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once; one more is answered 503 (once its request
    /// is in, within 0.2 s) and closed, unless its client address holds
    /// less than its share and another's connection waiting for a head can
    /// be closed for it (see `OpenConnections::open`).
    pub max_connections: usize,
    /// Connections open at once from one client address; one more is
    /// answered 503 and closed, so no one client can take them all.
    pub max_connections_per_client: usize,
    /// The longest request line (`GET /path HTTP/1.1`); longer is answered 414.
    pub max_request_line: usize,
    /// The longest header line; longer is answered 431.
    pub max_header_line: usize,
    /// The most header lines in one request; more are answered 431.
    pub max_headers: usize,
    /// The largest head (request line and headers); larger is answered 431.
    pub max_head: usize,
    /// The most bytes a chunked body may take on the wire, chunk sizes included.
    pub max_chunked_body: usize,
    /// The most of an unread body that is read and thrown away after the
    /// answer, to keep the connection; a connection with more left is closed.
    pub max_drain: usize,
    /// How long a request's head may take to arrive, from its first byte (or,
    /// for a connection's first request, from the connection's opening).
    pub head_timeout: Duration,
    /// How long a kept-alive connection may wait for the next request.
    pub idle_timeout: Duration,
    /// How long a request's body may take to arrive, from the end of its head.
    pub body_timeout: Duration,
    /// How long one write of an answer may wait for the client to read.
    pub send_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 1024,
            max_connections_per_client: 512,
            max_request_line: 8 * 1024,
            max_header_line: 8 * 1024,
            max_headers: 100,
            max_head: 32 * 1024,
            max_chunked_body: 64 * 1024,
            max_drain: 64 * 1024,
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(10),
        }
    }
}
