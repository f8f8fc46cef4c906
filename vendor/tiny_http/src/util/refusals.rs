//! seckill patch: the answer to a connection over the limits, given on a
//! thread of its own so that it never holds up the accept loop.
//!
//! A refused connection is answered 503 once its request has arrived, not at
//! once: answered before it had sent its request, `ab` lost track of that
//! request and waited 30 s for it; and closed with its request unread, a
//! connection is reset. Each refusal waits `REFUSAL_WAIT` at most, twice,
//! counted from the moment it was refused, so a burst of silent clients
//! costs the thread that long in all, not that long each.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::connection::Connection;
use crate::util::json_error;

/// How long a refused connection's request may take to arrive before it is
/// answered anyway, and then again for its client to close.
const REFUSAL_WAIT: Duration = Duration::from_millis(200);

/// Refused connections waiting for their answer; beyond, one is answered
/// at once. Each holds a descriptor meanwhile (when none is left, the accept
/// loop rests until the waiting ones are closed). With 32, `ab -c 100`
/// against a per-client cap of 50 still hung: more than 32 were over it at once.
const REFUSALS_WAITING: usize = 512;

/// Bytes read of a refused request at most: a head, as `max_head` allows.
const READ_AT_MOST: usize = 32 * 1024;

type Refusal = (Arc<Connection>, String, Instant);

pub(crate) struct Refusals(Option<SyncSender<Refusal>>);

impl Refusals {
    /// Starts the thread; without it, each refusal is answered at once.
    pub(crate) fn start() -> Refusals {
        let (queue, refused) = mpsc::sync_channel::<Refusal>(REFUSALS_WAITING);
        let answerer = thread::Builder::new()
            .name("refusals".into())
            .spawn(move || {
                for (sock, why, since) in refused {
                    answer_after_request(sock, &why, since);
                }
            });
        Refusals(answerer.ok().map(|_| queue))
    }

    /// Answers `sock` 503 with `why`, once its request is in, and closes it.
    pub(crate) fn refuse(&self, sock: impl Into<Arc<Connection>>, why: String) {
        let sock = sock.into();
        let Some(queue) = &self.0 else {
            return answer_at_once(sock, &why);
        };
        if let Err(TrySendError::Full(back) | TrySendError::Disconnected(back)) =
            queue.try_send((sock, why, Instant::now()))
        {
            // No room to wait: answered at once, as tiny_http's accept loop
            // must not wait for a client.
            let (sock, why, _) = back;
            answer_at_once(sock, &why);
        }
    }
}

/// Reads the request of `sock` and answers it 503, then reads what follows
/// (a body) so that closing does not reset the connection under the
/// answer: `REFUSAL_WAIT` each, counted from `since`, the refusal.
fn answer_after_request(sock: Arc<Connection>, why: &str, since: Instant) {
    let sock = &mut &*sock;
    let head_in = |read: &[u8]| {
        read.windows(4).any(|w| w == b"\r\n\r\n") || read.windows(2).any(|w| w == b"\n\n")
    };
    read_until(sock, since + REFUSAL_WAIT, head_in);
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_write_timeout(Some(REFUSAL_WAIT));
    send_503(sock, why);
    read_until(sock, since + 2 * REFUSAL_WAIT, |_| false);
}

/// Answers `sock` 503 without waiting for anything, and closes it.
fn answer_at_once(sock: Arc<Connection>, why: &str) {
    let _ = sock.set_nonblocking(true);
    send_503(&mut &*sock, why);
}

/// Writes the 503 `busy` with `why`, and ends the writing half.
fn send_503(sock: &mut &Connection, why: &str) {
    let message = format!("{}; try again in a moment", why);
    let body = json_error("busy", &message);
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        body
    );
    let _ = sock.write_all(answer.as_bytes());
    let _ = sock.shutdown(Shutdown::Write);
}

/// Reads from `sock` until `done` says so of the bytes just read (with the
/// three before them, so that a line end split across reads is seen), the
/// client closes, `READ_AT_MOST` bytes, or `deadline`; past the deadline,
/// one last read of what is already in, without waiting (a socket's timeout
/// is no finer than the kernel's tick: 1 ms waited about 17 ms a refusal).
fn read_until(sock: &mut &Connection, deadline: Instant, done: impl Fn(&[u8]) -> bool) {
    let mut read = vec![0; READ_AT_MOST];
    let mut filled = 0;
    while filled < read.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let set = if left.is_zero() {
            sock.set_nonblocking(true)
        } else {
            sock.set_nonblocking(false)
                .and_then(|()| sock.set_read_timeout(Some(left)))
        };
        if set.is_err() {
            return;
        }
        let before = filled;
        match sock.read(&mut read[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        if done(&read[before.saturating_sub(3)..filled]) || left.is_zero() {
            return;
        }
    }
}
