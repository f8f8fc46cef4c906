use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind};

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use crate::common::{HTTPVersion, Method};
use crate::util::{json_error, Answered, ConnectionState, RefinedTcpStream};
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::{Limits, Request};

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // seckill patch: the limits, the deadlines, and what the head read so far
    // has taken.
    limits: Arc<Limits>,
    state: Arc<ConnectionState>,
    requests_read: usize,
    head_bytes: usize,
    head_started: bool,
    // seckill patch: the line of the head being read, its buffer reused.
    line: Vec<u8>,
    // seckill patch: told when the request handed on last is answered.
    answered: Answered,
    answer_pending: bool,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
    // seckill patch: the errors below are answered, and close the connection.
    /// 414: the request line is longer than `max_request_line`.
    RequestLineTooLong,
    /// 431: a header line, the number of headers or the whole head is over its limit.
    HeadTooLarge(HTTPVersion),
    /// 505: a version other than HTTP/1.0 and HTTP/1.1, such as HTTP/2.0.
    VersionNotSupported,
    /// 408: the head (or a small body read with it) did not arrive in time.
    TimedOut(HTTPVersion),
    /// 400: the body's length cannot be told, or the body ended early.
    BadBody(HTTPVersion, &'static str),
    /// 501: a Transfer-Encoding other than chunked.
    UnknownTransferEncoding(HTTPVersion),
    /// 400: a byte of the head is not ASCII, or a control character.
    NotAscii,
    /// The previous answer closed the connection.
    Closed,
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    /// seckill patch: `peer` is the address `accept` gave (None for a Unix
    /// socket): asking the socket again was a system call a connection.
    pub(crate) fn new(
        write_socket: RefinedTcpStream,
        read_socket: RefinedTcpStream,
        peer: Option<SocketAddr>,
        limits: Arc<Limits>,
        state: Arc<ConnectionState>,
    ) -> ClientConnection {
        let remote_addr = Ok(peer);
        let secure = read_socket.secure();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            limits,
            state,
            requests_read: 0,
            head_bytes: 0,
            head_started: false,
            line: Vec::with_capacity(128),
            answered: Answered::default(),
            answer_pending: false,
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    /// seckill patch: the line may be at most `max` bytes (else `too_long`),
    /// and the whole head at most `max_head`: both grew without end.
    /// seckill patch: into `self.line`, ASCII once this returns Ok, and
    /// reused from line to line: a new buffer for each took six allocations
    /// a request.
    fn read_next_line(&mut self, max: usize, too_long: ReadError) -> Result<(), ReadError> {
        let buf = &mut self.line;
        buf.clear();

        // seckill patch: the bytes are taken from the reader's buffer a
        // slice at a time, not one `read` each: that chain of calls for each
        // byte of a head took about a seventh of the server's time under the
        // Lua purchase's load (perf).
        loop {
            let available = loop {
                match self.next_header_source.fill_buf() {
                    Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                    read => break read.map_err(ReadError::ReadIoError)?,
                }
            };
            if available.is_empty() {
                let eof = IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF");
                return Err(ReadError::ReadIoError(eof));
            }

            // seckill patch: the head's time runs from its first byte; before
            // it, a kept-alive connection waits for at most `idle_timeout`.
            if !self.head_started {
                self.head_started = true;
                self.state.head_began(self.limits.head_timeout);
            }

            // The line's bytes in this slice, up to its end if it is there.
            let end = available.iter().position(|&b| b == b'\n');
            let content = end.unwrap_or(available.len());
            // The first byte over the head's limit, and over the line's.
            let over_head = self.limits.max_head.saturating_sub(self.head_bytes);
            let over_line = max.saturating_sub(buf.len());
            let over = over_head.min(over_line);
            // A byte of the line over either limit fails it; the line's end
            // counts for the head's limit only.
            let head_too_large = if over < content {
                Some(over_head <= over_line)
            } else if end.is_some() && over_head == content {
                Some(true)
            } else {
                None
            };
            let taken = match head_too_large {
                Some(_) => over + 1,
                None => {
                    buf.extend_from_slice(&available[..content]);
                    content + usize::from(end.is_some())
                }
            };
            self.head_bytes += taken;
            self.next_header_source.consume(taken);
            match head_too_large {
                Some(true) => return Err(ReadError::HeadTooLarge(HTTPVersion(1, 1))),
                Some(false) => return Err(too_long),
                None => {}
            }
            if end.is_some() {
                // seckill patch: a bare LF ends a line too (RFC 9112 2.2
                // allows it); such a head waited for its timeout, then got 408.
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                // seckill patch: a control character (a NUL, a bare CR) but a
                // tab is no part of a head (RFC 9110 5.5): answered 400, as is
                // a byte that is not ASCII; the connection was closed unanswered.
                if buf
                    .iter()
                    .any(|&b| (b < b' ' && b != b'\t') || b == 0x7f || !b.is_ascii())
                {
                    return Err(ReadError::NotAscii);
                }
                return Ok(());
            }
        }
    }

    /// The line `read_next_line` read last.
    fn line_str(&self) -> &str {
        // ASCII: `read_next_line` refused any other byte.
        std::str::from_utf8(&self.line).unwrap_or_default()
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        // seckill patch: the next request is read once the previous one is
        // done with the socket, unless its answer closed the connection. The
        // first request's time runs from the connection's opening; a later
        // one is waited for at most `idle_timeout`, then has `head_timeout`.
        self.next_header_source
            .wait_turn()
            .map_err(ReadError::ReadIoError)?;
        if self.state.is_closing() {
            return Err(ReadError::Closed);
        }
        self.head_bytes = 0;
        self.head_started = self.requests_read == 0;
        if self.requests_read > 0 {
            self.state.await_request(self.limits.idle_timeout);
        }

        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                let max = self.limits.max_request_line;
                self.read_next_line(max, ReadError::RequestLineTooLong)?;
                // seckill patch: empty lines before the request line are
                // skipped (RFC 9112 2.2: an old client's CRLF after a body);
                // `max_head` bounds them. They were answered 400.
                while self.line.is_empty() {
                    self.read_next_line(max, ReadError::RequestLineTooLong)?;
                }

                parse_request_line(self.line_str().trim())?
            };

            // getting all headers
            let headers = {
                let mut headers: Vec<crate::Header> = Vec::new();
                loop {
                    let max = self.limits.max_header_line;
                    self.read_next_line(max, ReadError::HeadTooLarge(version.clone()))
                        .map_err(|err| match err {
                            ReadError::HeadTooLarge(_) => ReadError::HeadTooLarge(version.clone()),
                            ReadError::ReadIoError(err) if err.kind() == ErrorKind::TimedOut => {
                                ReadError::TimedOut(version.clone())
                            }
                            other => other,
                        })?;

                    if self.line.is_empty() {
                        break;
                    };
                    if headers.len() == self.limits.max_headers {
                        return Err(ReadError::HeadTooLarge(version));
                    }
                    headers.push(match FromStr::from_str(self.line_str().trim()) {
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            (method, path, version, headers)
        };

        // seckill patch: whether the connection is kept after this request,
        // decided here so that its answer can say so (see `Request::respond`).
        let connection = headers
            .iter()
            .find(|h| h.field.equiv("Connection"))
            .map(|h| h.value.as_str().to_ascii_lowercase());
        let keep_alive = match connection {
            Some(ref val) if val.contains("close") || val.contains("upgrade") => false,
            Some(ref val) if version == HTTPVersion(1, 0) => val.contains("keep-alive"),
            None if version == HTTPVersion(1, 0) => false,
            _ => true,
        };
        // seckill patch: a whole head: the connection can no longer be
        // displaced for a newcomer until this request is answered; one
        // displaced already reads no more.
        if !self.state.head_ended() {
            return Err(ReadError::Closed);
        }
        self.state.read_within(self.limits.body_timeout);

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            // seckill patch: None when the client has gone already; this
            // unwrap ended the process (tiny-http PR #285).
            self.remote_addr.as_ref().ok().copied().flatten(),
            data_source,
            writer,
            (keep_alive, self.state.clone(), &self.limits),
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => match e.kind() {
                    ErrorKind::TimedOut => ReadError::TimedOut(version),
                    ErrorKind::ConnectionAborted => {
                        let why = "the body ended before its Content-Length";
                        ReadError::BadBody(version, why)
                    }
                    _ => ReadError::ReadIoError(e),
                },
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
                request::RequestCreationError::BadFraming(why) => ReadError::BadBody(version, why),
                request::RequestCreationError::UnknownTransferEncoding => {
                    ReadError::UnknownTransferEncoding(version)
                }
            }
        })?;
        self.requests_read += 1;

        // return the request
        Ok(request)
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        // seckill patch: every error below is answered (unless the client is
        // gone or said nothing) and closes the connection: where a next request
        // would start is unknown. A version other than 1.0 and 1.1 was answered
        // 505 and then read on, so HTTP/2's preface held a thread forever.
        let rq = match self.read() {
            Ok(rq) => rq,
            Err(err) => {
                self.answer_error(err);
                return None;
            }
        };

        // seckill patch: a connection has one request in flight at a time.
        // The next is read, but handed on only once the last is answered,
        // and not at all if that answer closed the connection. A client that
        // waits for each answer (ab, wrk, a browser) never waits here; one
        // that pipelined without reading the answers made a thread per
        // request, thousands of them. (HTTPS connections wait in lib.rs.)
        if self.answer_pending && !self.secure {
            self.answered.wait();
        }
        if self.state.is_closing() {
            rq.abandon();
            return None;
        }

        // seckill patch: `Request::keep_alive`, decided in `read`, replaces
        // the same test made here after the request was built.
        if !rq.keep_alive() {
            self.no_more_requests = true;
        }

        // returning the request
        self.answer_pending = true;
        Some(rq.with_notify_sender(self.answered.clone()))
    }
}

impl ClientConnection {
    /// seckill patch: the answer to a request that cannot be served, as JSON
    /// with `Connection: close`.
    fn answer_error(&mut self, err: ReadError) {
        let bad = "bad_request";
        let http11 = HTTPVersion(1, 1);
        let (status, version, cause, message) = match err {
            ReadError::WrongRequestLine => (
                400,
                http11,
                bad,
                "the request line is not METHOD PATH HTTP/1.1",
            ),
            ReadError::WrongHeader(ver) => (400, ver, bad, "a header line is not NAME: VALUE"),
            ReadError::ExpectationFailed(ver) => {
                (417, ver, bad, "the only Expect understood is 100-continue")
            }
            ReadError::RequestLineTooLong => (414, http11, bad, "the request line is too long"),
            ReadError::HeadTooLarge(ver) => (
                431,
                ver,
                bad,
                "the request's headers are too large or too many",
            ),
            ReadError::VersionNotSupported => (
                505,
                http11,
                bad,
                "this server speaks HTTP/1.0 and HTTP/1.1 only",
            ),
            ReadError::TimedOut(ver) => {
                (408, ver, "timeout", "the request took too long to arrive")
            }
            ReadError::ReadIoError(ref err)
                if err.kind() == ErrorKind::TimedOut && self.head_bytes > 0 =>
            {
                (
                    408,
                    http11,
                    "timeout",
                    "the request took too long to arrive",
                )
            }
            ReadError::BadBody(ver, why) => (400, ver, bad, why),
            ReadError::UnknownTransferEncoding(ver) => (
                501,
                ver,
                bad,
                "the only Transfer-Encoding understood is chunked",
            ),
            ReadError::NotAscii => (
                400,
                http11,
                bad,
                "the request's head holds a byte that is not ASCII, or a control character",
            ),
            // The client is gone or silent, or the last answer closed the connection.
            ReadError::ReadIoError(_) | ReadError::Closed => return,
        };
        self.state.close();
        let writer = self.sink.next().unwrap();
        let response = crate::Response::from_string(json_error(cause, message))
            .with_status_code(status)
            .with_header(
                crate::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap(),
            );
        let print = (version, &[][..], false);
        let _ = response.raw_print_with_connection(writer, print, None, Some("close"));
    }
}

/// Parses a "HTTP/1.1" string.
/// seckill patch: HTTP/1.0 and HTTP/1.1 only. Any other HTTP/x.y is a version
/// this server does not speak (505); 0.9, 2.0 and 3.0 were taken as requests.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        _ => {
            let digits = version.strip_prefix("HTTP/").map(str::as_bytes);
            return match digits {
                Some([major, b'.', minor]) if major.is_ascii_digit() && minor.is_ascii_digit() => {
                    Err(ReadError::VersionNotSupported)
                }
                _ => Err(ReadError::WrongRequestLine),
            };
        }
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parse_http_version(parts.next().unwrap_or(""));
    // seckill patch: three parts, one space apart (RFC 9112 3); `GET /
    // HTTP/1.1 extra` was served as `GET /`.
    if parts.next().is_some() {
        return Err(ReadError::WrongRequestLine);
    }

    match (method, path, version) {
        (Some(method), Some(path), Ok(version)) => Ok((method, path, version)),
        // seckill patch: a well-formed line of another version is told apart.
        (Some(_), Some(_), Err(ReadError::VersionNotSupported)) => {
            Err(ReadError::VersionNotSupported)
        }
        _ => Err(ReadError::WrongRequestLine),
    }
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
        assert!(super::parse_request_line("GET / HTTP/1.1 extra").is_err());
        assert!(super::parse_request_line("GET  / HTTP/1.1").is_err());
    }

    /// seckill patch 31: the address a request tells is its client's, as
    /// `accept` gave it.
    #[test]
    fn a_request_tells_its_clients_address() {
        use std::io::Write;
        let server = crate::Server::http("127.0.0.1:0").unwrap();
        let addr = server.server_addr().to_ip().unwrap();
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let request = server.recv().unwrap();
        assert_eq!(request.remote_addr(), Some(&client.local_addr().unwrap()));
    }
}
