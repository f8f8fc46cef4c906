//! A raw HTTP client that sends exactly the bytes a test gives it, and the
//! requests the tests send most: a GET and the form post of a purchase.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The content type of the purchase form, as the page and `ab -T` send it.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// A connection to `addr` whose reads and writes give up after 10 s.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("cannot connect to seckill");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// What came back on a connection until the server closed it (or reset
/// it, or 10 s passed), and how long that took.
pub fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut bytes = Vec::new();
    let mut buf = [0; 4096];
    while let Ok(read @ 1..) = stream.read(&mut buf) {
        bytes.extend_from_slice(&buf[..read]);
    }
    (bytes, started.elapsed())
}

/// The HTTP status lines in `bytes`: one per answer. (An answer's body,
/// JSON here, ends without a line break, so the next answer starts mid-line.)
pub fn status_lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let is_status = |line: &str| {
        let code = line.get(9..12).unwrap_or("");
        line.get(8..9) == Some(" ") && code.bytes().all(|b| b.is_ascii_digit())
    };
    text.match_indices("HTTP/1.")
        .map(|(at, _)| text[at..].lines().next().unwrap_or(""))
        .filter(|line| is_status(line))
        .map(String::from)
        .collect()
}

/// An HTTP response as it came off the wire.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.text()))
    }

    /// The `response_num` of a purchase answer.
    pub fn code(&self) -> i64 {
        self.json()["response_num"]
            .as_i64()
            .unwrap_or_else(|| panic!("no response_num: {} {}", self.status, self.text()))
    }

    pub fn user_id(&self) -> String {
        self.json()["user_id"]
            .as_str()
            .expect("user_id")
            .to_string()
    }
}

/// Sends raw bytes and reads the reply to the end of the connection.
pub fn send(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Reply> {
    send_on(TcpStream::connect(addr)?, raw)
}

/// A connection to `addr` from another loopback address, 127.0.0.2: to
/// the server, another client than the tests' usual 127.0.0.1.
pub fn connect_as_another_client(addr: SocketAddr) -> TcpStream {
    let other = Ipv4Addr::new(127, 0, 0, 2);
    connect_from(addr, other.into()).expect("cannot connect to seckill")
}

/// A connection to `addr` from `source`, a client of its own to the server
/// (on Linux every 127.0.0.N is a loopback address); it gives up after 10 s.
pub fn connect_from(addr: SocketAddr, source: IpAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    socket.connect_timeout(&addr.into(), Duration::from_secs(10))?;
    Ok(TcpStream::from(socket))
}

/// A purchase from `source` (see `connect_from`), or the error that stood
/// for its answer; the answer is waited for `wait` at most.
pub fn try_buy_from(
    addr: SocketAddr,
    source: IpAddr,
    msg: &str,
    wait: Duration,
) -> std::io::Result<Reply> {
    let form = [("Content-Type", FORM)];
    let raw = raw_request(addr, "POST", "/seckill", &form, form_body(msg).as_bytes());
    send_within(connect_from(addr, source)?, &raw, wait)
}

/// A GET from another client (127.0.0.2).
pub fn get_as_another_client(addr: SocketAddr, path: &str) -> Reply {
    let raw = raw_request(addr, "GET", path, &[], b"");
    send_on(connect_as_another_client(addr), &raw).unwrap_or_else(|err| panic!("GET {path}: {err}"))
}

fn send_on(stream: TcpStream, raw: &[u8]) -> std::io::Result<Reply> {
    send_within(stream, raw, Duration::from_secs(20))
}

/// Sends `raw` on `stream` and reads the reply, each read waiting `wait` at most.
fn send_within(mut stream: TcpStream, raw: &[u8], wait: Duration) -> std::io::Result<Reply> {
    stream.set_read_timeout(Some(wait))?;
    stream.write_all(raw)?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    parse_reply(&bytes)
}

fn parse_reply(bytes: &[u8]) -> std::io::Result<Reply> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&bytes[..split]).map_err(|_| bad("headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: bytes[split + 4..].to_vec(),
    })
}

/// Sends `raw` while reading the reply, as a server may answer (413, say)
/// and close before all of it is sent: the reply, whatever became of the
/// sending. An error when no well-formed reply came within 20 s.
pub fn send_whole_or_not(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Reply> {
    parse_reply(&send_reading(addr, raw)?)
}

/// Sends `raw` on a connection while reading what comes back, until the
/// server closes it (a reset, when it closed with some of `raw` unread,
/// counts as closed); an error if it is still open after 20 s.
pub fn send_reading(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut reading = stream.try_clone()?;
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buf = [0; 4096];
        loop {
            match reading.read(&mut buf) {
                Ok(0) => return Ok(bytes),
                Ok(read) => bytes.extend_from_slice(&buf[..read]),
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Ok(bytes);
                }
                Err(err) => return Err(err),
            }
        }
    });
    let _ = stream.write_all(raw); // fails once the server has closed
    let _ = stream.shutdown(std::net::Shutdown::Write);
    reader.join().unwrap()
}

/// A request with `Connection: close`, and a body when one is given.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let raw = raw_request(addr, method, path, headers, body);
    send(addr, &raw).unwrap_or_else(|err| panic!("{method} {path}: {err}"))
}

/// The bytes of such a request.
fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw += &format!("{name}: {value}\r\n");
    }
    if !body.is_empty() {
        raw += &format!("Content-Length: {}\r\n", body.len());
    }
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    raw
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], b"")
}

/// The form post the page and `ab -p postfile` send: msg=<id>.
pub fn form_body(msg: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("msg", msg)
        .finish()
}

/// A form post to `/seckill` with `body` as it is, as ab's postfile is sent.
pub fn post_form(addr: SocketAddr, body: &[u8]) -> Reply {
    request(addr, "POST", "/seckill", &[("Content-Type", FORM)], body)
}

pub fn buy(addr: SocketAddr, msg: &str) -> Reply {
    try_buy(addr, msg).unwrap_or_else(|err| panic!("buying as {msg}: {err}"))
}

/// A purchase, or the error that stood for its answer (a connection closed
/// without one).
pub fn try_buy(addr: SocketAddr, msg: &str) -> std::io::Result<Reply> {
    let form = [("Content-Type", FORM)];
    let raw = raw_request(addr, "POST", "/seckill", &form, form_body(msg).as_bytes());
    send(addr, &raw)
}

/// `n` purchases from `concurrency` clients at once, as `ab -n -c` sends;
/// `msg(i)` is the id of the i-th. Each reply, or the error that stood for it.
pub fn load(
    addr: SocketAddr,
    n: usize,
    concurrency: usize,
    msg: impl Fn(usize) -> String + Sync,
) -> Vec<std::io::Result<Reply>> {
    let next = AtomicUsize::new(0);
    let replies = Mutex::new(Vec::with_capacity(n));
    thread::scope(|scope| {
        for _ in 0..concurrency {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let body = form_body(&msg(i));
                    let length = body.len();
                    let raw = format!(
                        "POST /seckill HTTP/1.0\r\nContent-Type: {FORM}\r\nContent-Length: {length}\r\n\r\n{body}"
                    );
                    let reply = send(addr, raw.as_bytes());
                    replies.lock().unwrap().push(reply);
                }
            });
        }
    });
    replies.into_inner().unwrap()
}
