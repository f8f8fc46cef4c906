//! The HTTP server: one thread per request, as Flask's threaded server, and a
//! graceful stop on Ctrl-C or SIGTERM.
//! Python: app.run(host='', port=5000)

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use tiny_http::Server;

use crate::handler::{self, App};
use crate::responses;

/// Opens the listening socket.
pub fn bind(addr: &str) -> Result<Server, String> {
    Server::http(addr).map_err(|err| {
        format!(
            "cannot listen on {addr}: {err}; is another seckill running? try --bind 127.0.0.1:5001"
        )
    })
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

/// Serves until `stopping` is raised, then refuses what is queued, closes
/// the listener, waits for the requests in flight to be answered, and hands
/// the app back.
pub fn serve(server: Arc<Server>, app: App, stopping: &AtomicBool) -> io::Result<App> {
    let app = Arc::new(app);
    loop {
        let request = match server.recv() {
            Ok(request) => request,
            Err(_) if stopping.load(Ordering::SeqCst) => break,
            // tiny_http's accept loop ends on an error; a deaf server is no server.
            Err(err) => return Err(err),
        };
        let app = Arc::clone(&app);
        // Each thread holds a clone of `app`: the count of clones is the count in flight.
        let spawned = thread::Builder::new().spawn(move || handler::handle(&app, request));
        if let Err(err) = spawned {
            eprintln!("seckill: cannot start a thread for a request: {err}");
        }
    }
    while let Ok(Some(request)) = server.try_recv() {
        let _ = request.respond(responses::error(503, "the sale is closing"));
    }
    drop(server);
    let in_flight = Arc::strong_count(&app) - 1;
    if in_flight > 0 {
        println!("seckill: stopping; waiting for {in_flight} requests in flight");
    }
    let mut app = app;
    loop {
        match Arc::try_unwrap(app) {
            Ok(app) => return Ok(app),
            Err(shared) => app = shared,
        }
        thread::sleep(Duration::from_millis(10));
    }
}
