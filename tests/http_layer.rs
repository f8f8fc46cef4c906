//! The vendored tiny_http on its own, for what seckill itself cannot show:
//! its accept loop when the process runs out of file descriptors.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tiny_http::{Limits, Response, Server};

/// GETs `/` and reads the status line.
fn status(addr: std::net::SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply.lines().next().unwrap_or("").to_string())
}

fn open_files() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

fn open_files_limit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) into a valid struct.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    limit
}

fn set_open_files_limit(limit: libc::rlimit) {
    // SAFETY: setrlimit(2) on this process, with a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
}

/// Out of descriptors, accept fails with "too many open files". tiny_http
/// 0.12.0 ended its accept loop there (or panicked cloning the socket), and
/// the server never took another connection.
#[test]
fn the_accept_loop_outlives_running_out_of_file_descriptors() {
    let limits = Limits {
        max_connections: 100_000, // the descriptors run out first
        ..Limits::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Arc::new(Server::from_listener_with_limits(listener, None, limits).unwrap());
    let answering = Arc::clone(&server);
    let answerer = thread::spawn(move || {
        // Ends only when the accept loop reports its end.
        while let Ok(request) = answering.recv() {
            let _ = request.respond(Response::empty(200));
        }
    });

    // Served once, so the accept loop is surely waiting in accept.
    assert_eq!(status(addr).unwrap(), "HTTP/1.1 200 OK");
    while server.num_connections() > 0 {
        thread::sleep(Duration::from_millis(10));
    }
    // The clients' sockets are made first: once the descriptors run out,
    // connecting takes none.
    let unconnected = || socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None);
    let (first, second) = (unconnected().unwrap(), unconnected().unwrap());
    let usual = open_files_limit();
    set_open_files_limit(libc::rlimit {
        rlim_cur: open_files() + 50,
        rlim_max: usual.rlim_max,
    });
    let mut taken = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        taken.push(file);
    }
    // Linux sets a descriptor aside for an accept already waiting: the first
    // client is accepted into it, and kept open. For the second, accept fails.
    first.connect(&addr.into()).unwrap();
    let mut first = TcpStream::from(first);
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    first.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut head = [0; 17];
    first.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK\r\n");
    second.connect(&addr.into()).unwrap();
    let mut second = TcpStream::from(second);
    second
        .write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let waiting = second.read(&mut [0; 1]).unwrap_err();
    assert_eq!(waiting.kind(), std::io::ErrorKind::WouldBlock, "answered");
    assert_eq!(server.num_connections(), 1, "accepted without a descriptor");

    drop(taken);
    set_open_files_limit(usual);
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reply = String::new();
    second.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert_eq!(status(addr).unwrap(), "HTTP/1.1 200 OK");
    assert!(!answerer.is_finished(), "the accept loop ended");
}
