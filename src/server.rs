//! The HTTP server: one thread per request, as Flask's threaded server,
//! the limits that keep any client from holding it, and a graceful stop on
//! Ctrl-C or SIGTERM. Python: app.run(host='', port=5000)

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use tiny_http::{ListenAddr, Request, ResponseBox, Server};

use crate::config::Config;
use crate::http::{self, Cause};
use crate::output::{say, warn};
use crate::pool::POOL_SIZE;

/// Connections the kernel queues before the server accepts them. With std's
/// 128, `ab -c 1000` overflowed it, and a dropped connection waits a second
/// before the client tries again. The kernel caps it at net.core.somaxconn.
const LISTEN_BACKLOG: i32 = 4096;

/// How long a stop waits for the requests in flight before it reports
/// without them: a client sending its body slowly must not hold the stop.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// How long a stop goes on answering 503 to connections already open.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A server listening on `--bind`, not yet serving.
pub struct Listening {
    server: Arc<Server>,
    socket: Socket,
}

/// Listens on `--bind`, with the limits of the flags.
pub fn listen(config: &Config) -> Result<Listening, String> {
    let limits = config.http_limits(fit_connections(config.max_connections));
    let (server, socket) = bind(&config.bind, limits)?;
    Ok(Listening {
        server: Arc::new(server),
        socket,
    })
}

impl Listening {
    pub fn addr(&self) -> ListenAddr {
        self.server.server_addr()
    }

    /// Serves until Ctrl-C or SIGTERM, each request on a thread of its own,
    /// given to `handle`; a panic in `handle` ends that thread only.
    pub fn serve(self, handle: impl Fn(Request) + Send + Sync + 'static) -> Result<(), String> {
        let Listening { server, socket } = self;
        let stopping = Arc::new(AtomicBool::new(false));
        let (wake, signalled) = (Arc::downgrade(&server), Arc::clone(&stopping));
        ctrlc::set_handler(move || {
            if signalled.swap(true, Ordering::SeqCst) {
                warn("seckill: a second Ctrl-C: stopping at once; the report may be cut short");
                crate::output::finish(Duration::from_millis(200));
                std::process::exit(130);
            }
            if let Some(server) = wake.upgrade() {
                server.unblock();
            }
        })
        .map_err(|err| format!("cannot catch Ctrl-C: {err}"))?;
        // Each request thread holds a clone: the count of the others is in
        // flight. Not `thread::scope`: it would join every request thread,
        // and a stop must not wait longer than STOP_WAIT for a slow client.
        let in_flight = Arc::new(());
        serve(&server, handle, &stopping, &in_flight)
            .map_err(|err| format!("the HTTP listener stopped: {err}; stopping the server"))?;
        stop(&server, &socket, &in_flight);
        Ok(())
    }
}

/// This server's name among the servers selling a sale: where it listens,
/// its process id and its machine, so a refused start can say who sells.
pub fn seller_name(addr: &ListenAddr) -> String {
    let pid = std::process::id();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    match host.trim() {
        "" => format!("{addr} pid {pid}"),
        host => format!("{addr} pid {pid} on {host}"),
    }
}

/// The server on a listening socket of our own, kept so a stop can close it.
fn bind(addr: &str, limits: tiny_http::Limits) -> Result<(Server, Socket), String> {
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
    let listener = TcpListener::from(socket.try_clone().map_err(failed)?);
    let server = Server::from_listener_with_limits(listener, None, limits);
    let server = server.map_err(|err| failed(io::Error::other(err.to_string())))?;
    Ok((server, socket))
}

/// Raises the soft limit of open files to the hard one, and returns how
/// many connections fit in it, at most `wanted`: each holds a descriptor,
/// and the pool and the rest keep theirs.
fn fit_connections(wanted: usize) -> usize {
    let before = rlimit::Resource::NOFILE.get().map_or(0, |(soft, _)| soft);
    let after = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(before);
    let others = u64::from(POOL_SIZE) + 64;
    let room = usize::try_from(after.saturating_sub(others)).unwrap_or(usize::MAX);
    if after > before {
        say(format!(
            "seckill: raised the open-files limit from {before} to {after}: room for about {room} connections at once"
        ));
    }
    if room < wanted {
        say(format!(
            "seckill: the open-files limit is {after}: room for about {room} connections at once, \
             not --max-connections {wanted}; raise the hard limit (ulimit -Hn) for bigger crowds"
        ));
    }
    room.min(wanted)
}

/// Hands each request to a thread of its own until `stopping` is raised.
fn serve(
    server: &Server,
    handle: impl Fn(Request) + Send + Sync + 'static,
    stopping: &AtomicBool,
    in_flight: &Arc<()>,
) -> io::Result<()> {
    let handle = Arc::new(handle);
    let refuser = Refuser::start()?;
    loop {
        let request = match server.recv() {
            Ok(request) => request,
            Err(_) if stopping.load(Ordering::SeqCst) => return Ok(()),
            // tiny_http's accept loop ended; a deaf server is no server.
            Err(err) => return Err(err),
        };
        let (handle, counted) = (Arc::clone(&handle), Arc::clone(in_flight));
        let handoff = Arc::new(Mutex::new(Some(request)));
        let taken = Arc::clone(&handoff);
        // The new thread waits for this lock, so it cannot end before it is
        // detached: glibc's pthread_detach reads the thread's descriptor
        // after marking it detached, and a thread that ended in between may
        // have unmapped it. The server crashed so under `ab -c 1000`.
        let mut held = lock(&handoff);
        let spawned = thread::Builder::new()
            .name("request".into())
            .spawn(move || {
                let _counted = counted; // dropped also if `handle` panics
                if let Some(request) = lock(&taken).take() {
                    handle(request);
                }
            });
        match spawned {
            Ok(thread) => drop(thread), // detached, before `held` is let go
            // Out of threads, the request comes back here and goes to the
            // refuser: answering here could wait on a client that does not
            // read, and every other request would wait behind it.
            Err(err) => {
                if let Some(request) = held.take() {
                    let what =
                        format!("busy: the server could not start a thread ({err}); try again");
                    refuser.answer(request, http::error(503, Cause::Busy, what));
                }
            }
        }
        drop(held);
    }
}

/// Closes the listener, so new connections are refused, and answers 503 to
/// requests that still come on open connections while those in flight
/// finish, for `STOP_WAIT` at most.
fn stop(server: &Server, socket: &Socket, in_flight: &Arc<()>) {
    let count = || Arc::strong_count(in_flight) - 1;
    // Wakes tiny_http's accept loop with an error, and it ends.
    let _ = socket.shutdown(Shutdown::Read);
    let Ok(refuser) = Refuser::start() else {
        return;
    };
    let wait = STOP_WAIT.as_secs();
    if count() > 0 {
        let waiting = count();
        say(format!(
            "seckill: stopping; waiting up to {wait} s for {waiting} requests in flight"
        ));
    }
    let started = Instant::now();
    // Open connections may still send a request, for STOP_GRACE; with none,
    // nothing is left to wait for.
    let must_wait =
        || count() > 0 || (started.elapsed() < STOP_GRACE && server.num_connections() > 0);
    while started.elapsed() < STOP_WAIT && must_wait() {
        if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(10)) {
            refuser.answer(request, http::closing());
        }
    }
    let left = count();
    if left > 0 {
        warn(format!(
            "seckill: {left} requests still in flight after {wait} s; reporting without their answers"
        ));
    }
}

/// A thread that answers the requests no request thread could take (and
/// those that come while the server stops), one after another, so the main
/// thread never writes to a client. A connection has at most one request in
/// flight, so its queue is bounded by --max-connections.
struct Refuser(Sender<(Request, ResponseBox)>);

impl Refuser {
    fn start() -> io::Result<Refuser> {
        let (queue, refused) = mpsc::channel::<(Request, ResponseBox)>();
        thread::Builder::new()
            .name("refuser".into())
            .spawn(move || {
                for (request, answer) in refused {
                    let _ = request.respond(answer);
                }
            })?;
        Ok(Refuser(queue))
    }

    fn answer(&self, request: Request, answer: ResponseBox) {
        let _ = self.0.send((request, answer));
    }
}

/// A request thread that panicked leaves its lock usable: the count and the
/// handoff stay consistent under it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

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
        let (server, _socket) = bind("127.0.0.1:0", tiny_http::Limits::default()).unwrap();
        let server = Arc::new(server);
        let addr = server.server_addr().to_ip().unwrap();
        let stopping = Arc::new(AtomicBool::new(false));
        let (serving, stop) = (Arc::clone(&server), Arc::clone(&stopping));
        let serving = thread::spawn(move || {
            let handle = |request: Request| {
                assert_ne!(request.url(), "/panic", "a bug in a handler");
                let _ = request.respond(http::error(404, Cause::BadRequest, "nothing"));
            };
            serve(&serving, handle, &stop, &Arc::new(()))
        });
        // A request dropped by a panic is answered 500 by tiny_http.
        assert_eq!(
            status_of(addr, "/panic"),
            "HTTP/1.1 500 Internal Server Error"
        );
        assert_eq!(status_of(addr, "/next"), "HTTP/1.1 404 Not Found");
        stopping.store(true, Ordering::SeqCst);
        server.unblock();
        serving.join().unwrap().unwrap();
    }
}
