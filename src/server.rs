//! The HTTP server: one thread per request, as Flask's threaded server, and a
//! graceful stop on Ctrl-C or SIGTERM.
//! Python: app.run(host='', port=5000)

use std::io;
use std::net::{Shutdown, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use rlimit::Resource;
use socket2::{Domain, Socket, Type};
use tiny_http::{Request, Server};

use crate::handler::{self, App};
use crate::redis_pool::POOL_SIZE;
use crate::responses;

/// Connections the kernel holds for the server before it accepts them. With
/// std's 128, `ab -c 1000` overflowed the queue, and a dropped connection
/// waits a second before the client tries again. The kernel caps this at
/// net.core.somaxconn.
const LISTEN_BACKLOG: i32 = 4096;

/// How long a stop goes on answering 503 to connections already open.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The server, and a handle on its listening socket, so a stop can close it
/// while tiny_http still holds it.
pub struct Listener {
    pub server: Server,
    pub socket: Socket,
}

/// Opens the listening socket and the server on it.
pub fn bind(addr: &str) -> Result<Listener, String> {
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
                let server = Server::from_listener(TcpListener::from(socket), None)
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

/// Raises the soft limit of open files to the hard one, and says how big a
/// crowd fits: tiny_http holds two descriptors per client connection, so
/// `ab -c 1000` needs more than the usual 1024.
pub fn raise_open_files_limit() -> Option<String> {
    let (before, _) = Resource::NOFILE.get().ok()?;
    let after = rlimit::increase_nofile_limit(u64::MAX).ok()?;
    let crowd = after.saturating_sub(u64::from(POOL_SIZE) + 64) / 2;
    if after > before {
        Some(format!(
            "raised the open-files limit from {before} to {after}: room for about {crowd} connections at once"
        ))
    } else if crowd < 1000 {
        Some(format!(
            "the open-files limit is {after}: room for about {crowd} connections at once; \
             raise the hard limit (ulimit -Hn) for bigger crowds"
        ))
    } else {
        None
    }
}

/// The threads of tiny_http, its accept loop among them, are the only
/// unnamed ones here. If one panics (the accept loop does when a new
/// connection cannot be duplicated for lack of file descriptors) the server
/// goes deaf, so the process says why and stops instead.
pub fn stop_if_the_listener_panics() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        if thread::current().name().is_none() {
            let why = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            eprintln!("seckill: {}", listener_failed(why));
            std::process::exit(1);
        }
    }));
}

/// What to say when the listener stops.
pub fn listener_failed(why: &str) -> String {
    format!(
        "the HTTP listener stopped: {why}; stopping the server. If it says too many open files, \
         raise the limit (ulimit -n) or lower the crowd"
    )
}

/// Raises `stopping` on Ctrl-C or SIGTERM and wakes the server. A second
/// signal ends the process at once, for a request that never finishes.
pub fn stop_on_signal(server: Weak<Server>, stopping: Arc<AtomicBool>) -> Result<(), String> {
    ctrlc::set_handler(move || {
        if stopping.swap(true, Ordering::SeqCst) {
            eprintln!("seckill: stopped at once, without the report");
            std::process::exit(130);
        }
        if let Some(server) = server.upgrade() {
            server.unblock();
        }
    })
    .map_err(|err| format!("cannot catch Ctrl-C: {err}"))
}

/// Serves until `stopping` is raised. Then the listener closes, so new
/// connections are refused; requests already read are answered 503 while the
/// requests in flight finish; and the app is handed back.
pub fn serve(
    server: Arc<Server>,
    socket: Socket,
    app: App,
    stopping: &AtomicBool,
) -> io::Result<App> {
    let app = Arc::new(app);
    loop {
        let request = match server.recv() {
            Ok(request) => request,
            Err(_) if stopping.load(Ordering::SeqCst) => break,
            // tiny_http's accept loop ends on an error; a deaf server is no server.
            Err(err) => return Err(err),
        };
        let app = Arc::clone(&app);
        // Each thread holds a clone of `app`; the stop waits for them all.
        let spawned = thread::Builder::new()
            .name("request".to_string())
            .spawn(move || handler::handle(&app, request));
        if let Err(err) = spawned {
            eprintln!("seckill: cannot start a thread for a request: {err}");
        }
    }
    // Wakes tiny_http's accept loop with an error, and it ends.
    let _ = socket.shutdown(Shutdown::Read);
    let in_flight = Arc::strong_count(&app) - 1;
    if in_flight > 0 {
        println!("seckill: stopping; waiting for {in_flight} requests in flight");
    }
    let mut app = app;
    let app = loop {
        match Arc::try_unwrap(app) {
            Ok(app) => break app,
            Err(shared) => app = shared,
        }
        if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(10)) {
            refuse(request);
        }
    };
    // Connections accepted before the close may still send a request.
    let grace = Instant::now() + STOP_GRACE;
    while Instant::now() < grace {
        match server.recv_timeout(Duration::from_millis(50)) {
            Ok(Some(request)) => refuse(request),
            Ok(None) => break,
            Err(_) => {} // the accept loop's last word as it ends
        }
    }
    Ok(app)
}

/// A 503 that also asks the client to close, so keep-alive clients leave.
fn refuse(request: Request) {
    let closing = responses::error(503, "the sale is closing")
        .with_header(responses::header("Connection", "close"));
    let _ = request.respond(closing);
}
