//! `/healthz` on the standard library alone: 64 threads, each calling
//! `accept` on one listener and answering its connection itself. The
//! ceiling of a fixed pool of synchronous threads (a 65th connection at once
//! would wait), for `scripts/bench-references.sh`.
//!   std-accept-pool ADDR

use std::io::Write;
use std::net::TcpListener;
use std::thread;

use seckill_references::serve;

const THREADS: usize = 64;
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}";

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5100".into());
    let listener = TcpListener::bind(&addr).expect("cannot listen");
    println!("listening on {addr}");
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                while let Ok((stream, _)) = listener.accept() {
                    let _ = serve(stream, |_, _, out| out.write_all(ANSWER));
                }
            });
        }
    });
}
