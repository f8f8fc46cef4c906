//! The HTTP server: one thread per request, as Flask's threaded server, and a
//! graceful stop on Ctrl-C or SIGTERM.
//! Python: app.run(host='', port=5000)

use std::io;
use std::net::{Shutdown, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use rlimit::Resource;
use socket2::{Domain, Socket, Type};
use tiny_http::{Limits, Request, ResponseBox, Server};

use crate::log::{say, warn};
use crate::redis_pool::POOL_SIZE;
use crate::responses::{self, Cause};

/// Connections the kernel holds for the server before it accepts them. With
/// std's 128, `ab -c 1000` overflowed the queue, and a dropped connection
/// waits a second before the client tries again. The kernel caps this at
/// net.core.somaxconn.
const LISTEN_BACKLOG: i32 = 4096;

/// How long a stop waits for the requests in flight before it reports
/// without them: a client sending its body slowly must not hold the stop.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// How long a stop goes on answering 503 to connections already open.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Descriptors kept for the Redis pool and everything else but clients.
const OTHER_FILES: u64 = POOL_SIZE as u64 + 64;

/// The server, and a handle on its listening socket, so a stop can close it
/// while tiny_http still holds it.
pub struct Listener {
    pub server: Server,
    pub socket: Socket,
}

/// Opens the listening socket and the server on it.
pub fn bind(addr: &str, limits: Limits) -> Result<Listener, String> {
    let failed = |err: io::Error| {
        format!(
            "cannot listen on {addr}: {err}; is another seckill running? try --bind 127.0.0.1:5001"
        )
    };
    let addrs = addr.to_socket_addrs().map_err(failed)?;
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on");
    for addr in addrs {
        match listen(addr) {
            Ok(socket) => {
                let handle = socket.try_clone().map_err(failed)?;
                let listener = TcpListener::from(socket);
                let server = Server::from_listener_with_limits(listener, None, limits)
                    .map_err(|err| failed(io::Error::other(err.to_string())))?;
                return Ok(Listener {
                    server,
                    socket: handle,
                });
            }
            Err(err) => last = err,
        }
    }
    Err(failed(last))
}

fn listen(addr: std::net::SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // As std does: a restarted server can listen while old connections linger.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket)
}

/// Raises the soft limit of open files to the hard one, and returns how
/// many connections fit in it, at most `wanted`: each connection holds a
/// descriptor, so `ab -c 1000` needs more than the usual 1024 with the pool.
/// Says what it did, and when the limit leaves less room than wanted.
pub fn fit_connections(wanted: usize) -> usize {
    let before = Resource::NOFILE.get().map_or(0, |(soft, _)| soft);
    let after = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(before);
    let room = usize::try_from(after.saturating_sub(OTHER_FILES)).unwrap_or(usize::MAX);
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

/// Raises `stopping` on Ctrl-C or SIGTERM and wakes the server. A second
/// signal ends the process at once.
pub fn stop_on_signal(server: Weak<Server>, stopping: Arc<AtomicBool>) -> Result<(), String> {
    ctrlc::set_handler(move || {
        if stopping.swap(true, Ordering::SeqCst) {
            warn("seckill: stopped at once, without the report");
            std::process::exit(130);
        }
        if let Some(server) = server.upgrade() {
            server.unblock();
        }
    })
    .map_err(|err| format!("cannot catch Ctrl-C: {err}"))
}

/// What to say when the listener stops.
pub fn listener_failed(why: &str) -> String {
    format!("the HTTP listener stopped: {why}; stopping the server")
}

/// Serves until `stopping` is raised: each request on a thread of its own,
/// given to `handle`. A panic in `handle` ends that thread only. Then the
/// listener closes, so new connections are refused; requests already read
/// are answered 503 while those in flight finish, for at most `STOP_WAIT`.
pub fn serve(
    server: Arc<Server>,
    socket: Socket,
    handle: impl Fn(Request) + Send + Sync + 'static,
    stopping: &AtomicBool,
) -> io::Result<()> {
    let handle = Arc::new(handle);
    let in_flight = Arc::new(InFlight::default());
    let refuser = Refuser::start()?;
    loop {
        let request = match server.recv() {
            Ok(request) => request,
            Err(_) if stopping.load(Ordering::SeqCst) => break,
            // tiny_http's accept loop ended; a deaf server is no server.
            Err(err) => return Err(err),
        };
        let handle = Arc::clone(&handle);
        let counted = in_flight.enter();
        let handoff = Arc::new(Mutex::new(Some(request)));
        let taken = Arc::clone(&handoff);
        let spawned = thread::Builder::new()
            .name("request".to_string())
            .spawn(move || {
                let _counted = counted;
                if let Some(request) = lock(&taken).take() {
                    handle(request);
                }
            });
        // Out of threads, the request goes back to this thread, which hands
        // it to the refuser: answering here could wait on a client that
        // does not read, and every other request would wait behind it.
        if let Err(err) = spawned
            && let Some(request) = lock(&handoff).take()
        {
            let what = format!("busy: the server could not start a thread ({err}); try again");
            refuser.answer(request, responses::error(503, Cause::Busy, what));
        }
    }
    // Wakes tiny_http's accept loop with an error, and it ends.
    let _ = socket.shutdown(Shutdown::Read);
    let waiting = in_flight.count();
    if waiting > 0 {
        say(format!(
            "seckill: stopping; waiting up to {} s for {waiting} requests in flight",
            STOP_WAIT.as_secs()
        ));
    }
    let deadline = Instant::now() + STOP_WAIT;
    while in_flight.count() > 0 && Instant::now() < deadline {
        if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(10)) {
            refuser.answer(request, responses::closing());
        }
    }
    let left = in_flight.count();
    if left > 0 {
        warn(format!(
            "seckill: {left} requests still in flight after {} s; reporting without their answers",
            STOP_WAIT.as_secs()
        ));
    }
    // Connections accepted before the close may still send a request.
    let grace = Instant::now() + STOP_GRACE;
    while Instant::now() < grace {
        match server.recv_timeout(Duration::from_millis(50)) {
            Ok(Some(request)) => refuser.answer(request, responses::closing()),
            Ok(None) => break,
            Err(_) => {} // the accept loop's last word as it ends
        }
    }
    Ok(())
}

/// Counts the requests being answered, so a stop can wait for them.
#[derive(Default)]
struct InFlight {
    count: Mutex<usize>,
}

/// One request in flight, until dropped (also when its thread panics).
struct Counted(Arc<InFlight>);

impl InFlight {
    fn enter(self: &Arc<Self>) -> Counted {
        *lock(&self.count) += 1;
        Counted(Arc::clone(self))
    }

    fn count(&self) -> usize {
        *lock(&self.count)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        *lock(&self.0.count) -= 1;
    }
}

/// A thread that answers requests no request thread could take (and those
/// that arrive while the server stops), one after another, so the main
/// thread never writes to a client. Each connection has at most one request
/// in flight, so its queue is bounded by --max-connections.
struct Refuser(Sender<(Request, ResponseBox)>);

impl Refuser {
    fn start() -> io::Result<Refuser> {
        let (queue, refused) = mpsc::channel::<(Request, ResponseBox)>();
        thread::Builder::new()
            .name("refuser".to_string())
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
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    /// The status of a GET, read to the end of the connection.
    fn status_of(addr: std::net::SocketAddr, path: &str) -> String {
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
        let listener = bind("127.0.0.1:0", Limits::default()).unwrap();
        let http = Arc::new(listener.server);
        let addr = http.server_addr().to_ip().unwrap();
        let stopping = Arc::new(AtomicBool::new(false));
        let (server, stop) = (Arc::clone(&http), Arc::clone(&stopping));
        let serving = thread::spawn(move || {
            serve(
                server,
                listener.socket,
                |request: Request| {
                    assert_ne!(request.url(), "/panic", "a bug in a handler");
                    let _ = request.respond(responses::error(404, Cause::BadRequest, "nothing"));
                },
                &stop,
            )
        });
        // A request dropped by a panic is answered 500 by tiny_http.
        assert_eq!(
            status_of(addr, "/panic"),
            "HTTP/1.1 500 Internal Server Error"
        );
        assert_eq!(status_of(addr, "/next"), "HTTP/1.1 404 Not Found");
        stopping.store(true, Ordering::SeqCst);
        http.unblock();
        serving.join().unwrap().unwrap();
    }
}
