//! The HTTP server: a thread per connection, as Flask's threaded server,
//! the limits that keep any client from holding it, and a graceful stop on
//! Ctrl-C or SIGTERM. Python: app.run(host='', port=5000)
//!
//! Each connection is read on a thread of its own, and each of its
//! requests is answered on that same thread, one after another as HTTP/1.1
//! sends them: as Werkzeug's threaded server (Flask's) serves each
//! connection on a thread of its own. The threads wait in `accept`; one
//! that takes a connection when no other waits starts another first, and
//! when its connection ends it waits for the next. So a thread is started
//! only when every thread is busy, one idle for 5 s ends, no request waits
//! behind another connection's, and none is handed from thread to thread.

use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use tiny_http::{Request, Server};

use crate::beyond::output::{print, span};
use crate::http;

/// Connections the kernel queues before the server accepts them. With std's
/// 128, `ab -c 1000` overflowed it, and a dropped connection waits a second
/// before the client tries again. The kernel caps it at net.core.somaxconn.
const LISTEN_BACKLOG: i32 = 4096;

/// How long a connection thread with nothing to do waits in `accept` before
/// it ends (the listener's read timeout); a few are always kept.
const IDLE_THREAD_ENDS: Duration = Duration::from_secs(5);

/// How long a stop goes on answering 503 to connections already open.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A server listening on `--bind`, not yet serving: connections wait in the
/// kernel's queue until it does.
pub struct Listening {
    listener: TcpListener,
    socket: Socket,
    limits: tiny_http::Limits,
}

/// Listens on `bind` (`--bind`), with the HTTP limits of the flags; as
/// many connections at once as the open-files limit has room for beside
/// the `redis_connections` of the pool.
pub fn listen(
    bind: &str,
    mut limits: tiny_http::Limits,
    redis_connections: u32,
) -> Result<Listening, String> {
    limits.max_connections = fit_connections(limits.max_connections, redis_connections);
    if limits.max_connections == 0 {
        return Err(format!(
            "the open-files limit leaves no room for a single connection beside the \
             {redis_connections} to Redis: raise it (ulimit -n) or lower --redis-connections"
        ));
    }
    let (listener, socket) = bind_to(bind)?;
    Ok(Listening {
        listener,
        socket,
        limits,
    })
}

impl Listening {
    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a listening socket has an address")
    }

    /// Serves until Ctrl-C or SIGTERM, each request answered by `handle` on
    /// the thread that read it; a panic in `handle` ends that connection
    /// only. A stop waits `stop_wait` (`--stop-wait`) at most for the
    /// requests in flight: a client sending its body slowly must not hold it.
    pub fn serve(
        self,
        stop_wait: Duration,
        open: &OpenCount,
        handle: impl Fn(Request) + Send + Sync + 'static,
    ) -> Result<(), String> {
        let Listening {
            listener,
            socket,
            limits,
        } = self;
        let stopping = Arc::new(AtomicBool::new(false));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (closing, counted) = (Arc::clone(&stopping), Arc::clone(&in_flight));
        let answer = move |request: Request| {
            if closing.load(Ordering::SeqCst) {
                let _ = request.respond(http::closing());
                return;
            }
            let _in_flight = InFlight::count(&counted);
            handle(request);
        };
        let server = Server::from_listener_with_handler(listener, None, limits, answer)
            .map_err(|err| format!("cannot serve: {err}"))?;
        let server = Arc::new(server);
        let _ = open.0.set(Arc::downgrade(&server));
        let (wake, signalled) = (Arc::downgrade(&server), Arc::clone(&stopping));
        ctrlc::set_handler(move || {
            if signalled.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "seckill: a second Ctrl-C: stopping at once; the report may be cut short"
                );
                crate::beyond::output::finish(Duration::from_millis(200));
                std::process::exit(130);
            }
            if let Some(server) = wake.upgrade() {
                server.unblock();
            }
        })
        .map_err(|err| format!("cannot catch Ctrl-C: {err}"))?;
        // Requests are answered on their own threads; this one waits for the
        // stop, or for tiny_http's accept loop to end (a deaf server is no server).
        if let Err(err) = server.recv()
            && !stopping.load(Ordering::SeqCst)
        {
            return Err(format!(
                "the HTTP listener stopped: {err}; stopping the server"
            ));
        }
        stop(&server, &socket, &in_flight, stop_wait);
        Ok(())
    }
}

/// The client connections open, once the server serves: for `/metrics`.
#[derive(Default)]
pub struct OpenCount(OnceLock<Weak<Server>>);

impl OpenCount {
    pub fn get(&self) -> Option<usize> {
        let server = self.0.get()?.upgrade()?;
        Some(server.num_connections())
    }
}

/// Counts a request in flight until dropped, also when its handler panics.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn count(in_flight: &'a AtomicUsize) -> InFlight<'a> {
        in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(in_flight)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The pages a user can open on `addr`: on an address of all interfaces
/// (`0.0.0.0`, `::`), one for each address of this machine's that fits,
/// the loopback last, since `http://0.0.0.0:5000` opens nowhere else.
pub fn page_urls(addr: SocketAddr) -> Vec<String> {
    let url = |ip: IpAddr| format!("http://{}/seckill", SocketAddr::new(ip, addr.port()));
    if !addr.ip().is_unspecified() {
        return vec![url(addr.ip())];
    }
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|interface| !interface.is_link_local())
        .map(|interface| interface.ip())
        // A socket bound to `::` takes IPv4 too (on Linux, by default).
        .filter(|ip| ip.is_ipv4() || addr.is_ipv6())
        .collect();
    ips.sort_by_key(|ip| (ip.is_loopback(), ip.is_ipv6()));
    ips.dedup();
    if ips.is_empty() {
        ips.push(IpAddr::from([127, 0, 0, 1]));
    }
    ips.into_iter().map(url).collect()
}

/// A listening socket of our own, kept so a stop can close it.
fn bind_to(addr: &str) -> Result<(TcpListener, Socket), String> {
    let failed = |err: io::Error| {
        format!(
            "cannot listen on {addr}: {err}; is another seckill running? try --bind 127.0.0.1:5001"
        )
    };
    let unclear = |err: io::Error| {
        format!("cannot listen on {addr}: {err}; give --bind as HOST:PORT, such as 127.0.0.1:5000")
    };
    let addr: SocketAddr = addr
        .to_socket_addrs()
        .map_err(unclear)?
        .next()
        .ok_or_else(|| {
            failed(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no address to listen on",
            ))
        })?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(failed)?;
    // As std does: a restarted server can listen while old connections linger.
    socket.set_reuse_address(true).map_err(failed)?;
    socket.bind(&addr.into()).map_err(failed)?;
    socket.listen(LISTEN_BACKLOG).map_err(failed)?;
    socket
        .set_read_timeout(Some(IDLE_THREAD_ENDS))
        .map_err(failed)?;
    let listener = TcpListener::from(socket.try_clone().map_err(failed)?);
    Ok((listener, socket))
}

/// Raises the soft limit of open files to the hard one, and returns how
/// many connections fit in it, at most `wanted`: each holds a descriptor,
/// and the pool (`redis_connections`) and the rest keep theirs.
fn fit_connections(wanted: usize, redis_connections: u32) -> usize {
    let before = rlimit::Resource::NOFILE.get().map_or(0, |(soft, _)| soft);
    let after = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(before);
    let others = u64::from(redis_connections) + 64;
    let room = usize::try_from(after.saturating_sub(others)).unwrap_or(usize::MAX);
    if after > before {
        print(format!(
            "seckill: raised the open-files limit from {before} to {after}: room for about {room} connections at once"
        ));
    }
    if room < wanted {
        print(format!(
            "seckill: the open-files limit is {after}: room for about {room} connections at once, \
             not --max-connections {wanted}; raise the hard limit (ulimit -Hn) for bigger crowds"
        ));
    }
    room.min(wanted)
}

/// Closes the listener, so new connections are refused, while requests in
/// flight finish and those that still come on open connections are answered
/// 503 closing, for `stop_wait` at most.
fn stop(server: &Server, socket: &Socket, in_flight: &AtomicUsize, stop_wait: Duration) {
    let count = || in_flight.load(Ordering::SeqCst);
    // Wakes tiny_http's accept loop with an error, and it ends.
    let _ = socket.shutdown(Shutdown::Read);
    let wait = span(stop_wait);
    // Said at once: the wait below can last seconds, and a silent Ctrl-C
    // looks like a hang.
    let (waiting, open) = (count(), server.num_connections());
    print(format!(
        "seckill: stopping: letting {waiting} requests in flight finish (up to {wait}) and \
         answering 503 closing on {open} open connections (up to {}); then the winners, \
         as Redis holds them",
        span(STOP_GRACE.min(stop_wait))
    ));
    let started = Instant::now();
    // Open connections may still send a request, for STOP_GRACE; with none,
    // nothing is left to wait for.
    let must_wait =
        || count() > 0 || (started.elapsed() < STOP_GRACE && server.num_connections() > 0);
    while started.elapsed() < stop_wait && must_wait() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = count();
    if left > 0 {
        tracing::warn!(
            "{left} requests still in flight after {wait}; reporting without their answers"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;
    use crate::http::Cause;

    /// The status line of a GET, read to the end of the connection.
    fn status_of(addr: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply.lines().next().unwrap_or("").to_string()
    }

    #[test]
    fn a_panic_while_answering_ends_that_request_only() {
        let (listener, _socket) = bind_to("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = |request: Request| {
            assert_ne!(request.url(), "/panic", "a bug in a handler");
            let _ = request.respond(http::error(404, Cause::BadRequest, "nothing"));
        };
        let limits = tiny_http::Limits::default();
        let _server = Server::from_listener_with_handler(listener, None, limits, handle).unwrap();
        // A request dropped by a panic is answered 500 by tiny_http.
        assert_eq!(
            status_of(addr, "/panic"),
            "HTTP/1.1 500 Internal Server Error"
        );
        assert_eq!(status_of(addr, "/next"), "HTTP/1.1 404 Not Found");
    }
}
