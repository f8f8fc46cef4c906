//! `/healthz` on the standard library alone: 64 threads, each calling
//! `accept` on one listener and answering its connection itself. The
//! ceiling of a fixed pool of synchronous threads (a 65th connection at once
//! would wait), for `scripts/bench.sh --references`.
//!   std-accept-pool ADDR

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

const THREADS: usize = 64;
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}";

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:5100".into());
    let listener = TcpListener::bind(&addr).expect("cannot listen");
    println!("listening on {addr}");
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                while let Ok((stream, _)) = listener.accept() {
                    let _ = serve(stream);
                }
            });
        }
    });
}

/// Answers each request of a connection until it closes; keeps it open for
/// HTTP/1.1 unless asked to close (wrk), closes it for HTTP/1.0 (ab).
fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0; 4096];
    let mut filled = 0;
    loop {
        let read = stream.read(&mut buf[filled..])?;
        if read == 0 {
            return Ok(());
        }
        filled += read;
        while let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            stream.write_all(ANSWER)?;
            if head.contains("http/1.0") || head.contains("connection: close") {
                return Ok(());
            }
            buf.copy_within(end + 4..filled, 0);
            filled -= end + 4;
        }
        if filled == buf.len() {
            return Ok(());
        }
    }
}
