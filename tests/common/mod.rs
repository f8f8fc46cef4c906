//! What the integration tests share: a private redis-server on a free
//! loopback port, the seckill binary started against it, and a raw HTTP
//! client that sends exactly the bytes a test gives it.

#![allow(dead_code)] // each test file uses a different part of this

pub mod health;
pub mod tools;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

const INSTALL_REDIS: &str = "redis-server is not installed: install it with \
    `apt-get install redis-server` (Debian, Ubuntu) or `brew install redis` (macOS); \
    .ci/run and scripts/test.sh do it for you when run as root";

/// A redis-server of the test's own, on a free loopback port with its own
/// data directory; killed when dropped.
pub struct Redis {
    child: Child,
    pub port: u16,
    pub dir: TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_with(&[])
    }

    /// Starts redis-server with extra arguments, such as `--appendonly yes`.
    pub fn start_with(extra: &[&str]) -> Redis {
        let dir = tempfile::tempdir().expect("cannot make a temporary directory");
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn_redis(port, &dir, extra) {
                return Redis { child, port, dir };
            }
        }
        panic!(
            "redis-server did not start; see {}",
            dir.path().join("redis.log").display()
        );
    }

    /// Starts Redis again on the same port and data directory.
    pub fn restart(&mut self, extra: &[&str]) {
        self.kill();
        for _ in 0..50 {
            if let Some(child) = spawn_redis(self.port, &self.dir, extra) {
                self.child = child;
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes the redis-server process (SIGSTOP): connections stay open
    /// but nothing answers, as in a stalled or partitioned Redis.
    pub fn freeze(&self) {
        signal(self.child.id(), libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        signal(self.child.id(), libc::SIGCONT);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn con(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection())
            .expect("cannot connect to the test's redis-server")
    }

    /// Holds every write (CLIENT PAUSE WRITE) until the guard is dropped:
    /// a purchase then stops between its reads and its EXEC.
    pub fn hold_writes(&self) -> WritesHeld {
        let mut con = self.con();
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(20000)
            .arg("WRITE")
            .exec(&mut con)
            .expect("CLIENT PAUSE");
        WritesHeld { con }
    }

    /// Waits until `n` clients are held by CLIENT PAUSE.
    pub fn wait_for_held_clients(&self, n: usize) {
        let mut con = self.con();
        wait_for(&format!("{n} clients held by CLIENT PAUSE"), || {
            let info: String = redis::cmd("INFO").arg("clients").query(&mut con).unwrap();
            info.lines()
                .any(|line| line.trim() == format!("blocked_clients:{n}"))
        });
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct WritesHeld {
    con: redis::Connection,
}

impl Drop for WritesHeld {
    fn drop(&mut self) {
        let _ = redis::cmd("CLIENT").arg("UNPAUSE").exec(&mut self.con);
    }
}

fn spawn_redis(port: u16, dir: &TempDir, extra: &[&str]) -> Option<Child> {
    let port_arg = port.to_string();
    let mut child = Command::new("redis-server")
        .args(["--port", &port_arg, "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "no", "--enable-debug-command", "local"])
        .arg("--dir")
        .arg(dir.path())
        .args(["--logfile", "redis.log"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| match err.kind() {
            std::io::ErrorKind::NotFound => panic!("{INSTALL_REDIS}"),
            _ => panic!("cannot start redis-server: {err}"),
        });
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None; // most likely the port was taken meanwhile
        }
        let pong = redis::Client::open(format!("redis://127.0.0.1:{port}/0"))
            .and_then(|client| client.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut con| redis::cmd("PING").query::<String>(&mut con));
        if pong.is_ok() {
            return Some(child);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Makes `command` start with this limit of open files (soft and hard).
pub fn limit_open_files(command: &mut Command, soft: u64, hard: u64) {
    use std::os::unix::process::CommandExt;
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit(2) only, between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on a process this test started and has not reaped.
    let sent = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(sent, 0, "kill({pid}, {signal})");
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot find a free port");
    listener.local_addr().unwrap().port()
}

/// Polls `done` for up to 10 s.
pub fn wait_for(what: &str, done: impl FnMut() -> bool) {
    wait_for_within(what, Duration::from_secs(10), done);
}

/// Polls `done` for up to `limit`.
pub fn wait_for_within(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

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

/// The seckill binary, serving on a free loopback port.
pub struct Seckill {
    child: Child,
    pub addr: SocketAddr,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Seckill {
    /// Starts seckill against `redis` with extra flags, and waits until it listens.
    pub fn start(redis: &Redis, flags: &[&str]) -> Seckill {
        Seckill::start_with(redis, flags, |_| {})
    }

    /// As `start`, with a last say over the command, for limits and the like.
    pub fn start_with(redis: &Redis, flags: &[&str], adjust: impl FnOnce(&mut Command)) -> Seckill {
        Seckill::spawn(redis, flags, adjust, Output::Collected)
    }

    /// As `start`, then closes the server's stdout, as `seckill | head -1` does.
    pub fn start_then_close_stdout(redis: &Redis, flags: &[&str]) -> Seckill {
        Seckill::spawn(redis, flags, |_| {}, Output::ClosedAfterListening)
    }

    fn spawn(
        redis: &Redis,
        flags: &[&str],
        adjust: impl FnOnce(&mut Command),
        output: Output,
    ) -> Seckill {
        let mut command = Command::new(env!("CARGO_BIN_EXE_seckill"));
        command
            .args(["--bind", "127.0.0.1:0", "--redis", &redis.url()])
            .args(flags);
        adjust(&mut command);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the seckill binary");
        let (listening, on_listening) = mpsc::channel();
        let stdout = collect(child.stdout.take().unwrap(), Some((listening, output)));
        let stderr = collect(child.stderr.take().unwrap(), None);
        let Ok(addr) = on_listening.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            let _ = child.wait();
            thread::sleep(Duration::from_millis(100));
            panic!(
                "seckill did not start listening:\n{}{}",
                stdout.lock().unwrap(),
                stderr.lock().unwrap()
            );
        };
        Seckill {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM, as `kill` or a service manager does.
    pub fn terminate(&self) {
        signal(self.child.id(), libc::SIGTERM);
    }

    /// Whether the process has ended, and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Sends SIGTERM and waits (at most 20 s) for the process to end.
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.terminate();
        let status = self.wait(Duration::from_secs(20));
        // The reader threads end at EOF, just after the process.
        thread::sleep(Duration::from_millis(50));
        (status, self.stdout())
    }

    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("seckill did not stop within {limit:?}:\n{}", self.stdout());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Seckill {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What becomes of the server's stdout once it listens.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Collected,
    ClosedAfterListening,
}

/// Copies a child's output into a string; reports the address of the
/// "listening on ADDR;" line on `listening`.
fn collect(
    pipe: impl Read + Send + 'static,
    listening: Option<(mpsc::Sender<SocketAddr>, Output)>,
) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut heard = false;
            if let Some((tx, _)) = &listening {
                let addr = line
                    .split_once("listening on ")
                    .and_then(|(_, rest)| rest.split(';').next())
                    .and_then(|addr| addr.parse().ok());
                if let Some(addr) = addr {
                    heard = tx.send(addr).is_ok();
                }
            }
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
            if heard && matches!(listening, Some((_, Output::ClosedAfterListening))) {
                break; // drops the pipe: the server's writes now fail
            }
        }
    });
    text
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
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
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

pub fn buy(addr: SocketAddr, msg: &str) -> Reply {
    try_buy(addr, msg).unwrap_or_else(|err| panic!("buying as {msg}: {err}"))
}

/// A purchase, or the error that stood for its answer (a connection closed
/// without one).
pub fn try_buy(addr: SocketAddr, msg: &str) -> std::io::Result<Reply> {
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
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
                    let raw = format!(
                        "POST /seckill HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let reply = send(addr, raw.as_bytes());
                    replies.lock().unwrap().push(reply);
                }
            });
        }
    });
    replies.into_inner().unwrap()
}
