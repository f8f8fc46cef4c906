//! seckill patch: a server whose requests are answered by a handler on the
//! threads that accept their connections (`Server::from_listener_with_handler`).
//!
//! Each worker thread waits in `accept` on the shared listener (the kernel
//! wakes one per connection), then reads, handles and answers that
//! connection's requests itself, and goes back to `accept`. A worker that
//! takes a connection when no other is left waiting in `accept` first
//! starts one more, so a new connection never waits for another's: the pool
//! grows whenever every thread is busy. A worker left waiting for as long as
//! the listener's read timeout (SO_RCVTIMEO, if its owner set one) ends,
//! down to `MIN_WORKERS`. No request is handed from thread to thread: with
//! an accept thread and a pool behind it, that handoff (a wake-up and a
//! thread switch per connection) cost a fifth of `/healthz`'s requests/s.

use std::io::{ErrorKind, Result as IoResult};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::connection::{Connection, Listener};
use crate::util::{MessagesQueue, OpenConnections, Refusals};
use crate::{admit, serve_connection, Handler, Limits, Message, ACCEPT_RETRY};

/// Workers kept when idle: a crowd's first connections find one waiting.
const MIN_WORKERS: usize = 4;

pub(crate) struct Workers {
    listener: Listener,
    limits: Arc<Limits>,
    open_connections: Arc<OpenConnections>,
    refusals: Refusals,
    handler: Handler,
    messages: Arc<MessagesQueue<Message>>,
    /// Workers waiting in `accept`.
    waiting: AtomicUsize,
    /// Workers alive.
    alive: AtomicUsize,
    /// Held while a worker is started: the new thread takes it first, so it
    /// cannot end before its handle is let go (glibc's pthread_detach reads
    /// the thread's descriptor after marking it detached; a thread that
    /// ended in between had unmapped it, and the server crashed so).
    starting: Mutex<()>,
}

impl Workers {
    /// Starts `MIN_WORKERS` workers on `listener`.
    pub(crate) fn start(
        listener: Listener,
        (limits, open_connections, refusals): (Arc<Limits>, Arc<OpenConnections>, Refusals),
        handler: Handler,
        messages: Arc<MessagesQueue<Message>>,
    ) -> IoResult<()> {
        let workers = Arc::new(Workers {
            listener,
            limits,
            open_connections,
            refusals,
            handler,
            messages,
            waiting: AtomicUsize::new(0),
            alive: AtomicUsize::new(0),
            starting: Mutex::new(()),
        });
        for _ in 0..MIN_WORKERS {
            workers.add()?;
        }
        Ok(())
    }

    /// Starts one more worker, counted as waiting from now on: until it
    /// reaches `accept`, a busy worker that looks for one waiting finds it
    /// and does not start another (under a crowd a new thread may take
    /// milliseconds to run, and each busy worker started one more: `ab -c
    /// 1000` met 2000 threads).
    fn add(self: &Arc<Self>) -> IoResult<()> {
        let held = lock(&self.starting);
        self.alive.fetch_add(1, SeqCst);
        self.waiting.fetch_add(1, SeqCst);
        let workers = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name("connection".into())
            .spawn(move || {
                drop(lock(&workers.starting));
                workers.work();
            });
        match spawned {
            Ok(thread) => drop(thread), // detached, before `held` is let go
            Err(err) => {
                self.alive.fetch_sub(1, SeqCst);
                self.waiting.fetch_sub(1, SeqCst);
                return Err(err);
            }
        }
        drop(held);
        Ok(())
    }

    /// Accepts and serves connections until the listener is shut down, or
    /// this worker has waited a whole read timeout and is one too many.
    fn work(self: &Arc<Self>) {
        loop {
            match self.next_connection() {
                Next::Serve(sock, peer) => {
                    let (limits, open) = (&self.limits, &self.open_connections);
                    if let Some((make_client, _)) =
                        admit(sock, peer, limits, open, &self.refusals, None)
                    {
                        serve_connection(make_client(), Some(&self.handler), &self.messages);
                    }
                }
                Next::Again => {}
                Next::End => return,
            }
            self.waiting.fetch_add(1, SeqCst);
        }
    }

    /// Waits in `accept` (counted as waiting) for the next connection.
    fn next_connection(self: &Arc<Self>) -> Next {
        let accepted = self.listener.accept();
        let others_waiting = self.waiting.fetch_sub(1, SeqCst) - 1;
        let (sock, peer) = match accepted {
            Ok(accepted) => accepted,
            // Shut down (or never listening): the server stops.
            Err(err) if err.kind() == ErrorKind::InvalidInput => {
                self.alive.fetch_sub(1, SeqCst);
                self.messages.push(err.into());
                return Next::End;
            }
            // The listener's read timeout: nothing to do for that long.
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let one_too_many = |alive: usize| (alive > MIN_WORKERS).then(|| alive - 1);
                if self.alive.fetch_update(SeqCst, SeqCst, one_too_many).is_ok() {
                    return Next::End;
                }
                return Next::Again;
            }
            // "Too many open files", above all: rest, and accept again.
            Err(err) => {
                log::warn!("Error accepting new client, trying again: {}", err);
                thread::sleep(ACCEPT_RETRY);
                return Next::Again;
            }
        };
        // Someone must wait in `accept` while this one serves; a worker
        // that cannot start leaves this connection refused (503 once its
        // request is in), and this thread accepting. seckill patch: not
        // beyond a thread for each connection the server may hold: under a
        // churn of connections displaced and opened again, the threads of
        // displaced ones had yet to wake when others came, and each started
        // one more (5183 threads for a cap of 2048). Those threads come back
        // to `accept` as soon as they run.
        let most = self.limits.max_connections + MIN_WORKERS;
        if others_waiting == 0 && self.alive.load(SeqCst) < most {
            if let Err(err) = self.add() {
                log::warn!("Cannot start a thread for a new client: {}", err);
                let why = format!("the server could not start a thread ({err})");
                self.refusals.refuse(sock, why);
                return Next::Again;
            }
        }
        Next::Serve(sock, peer)
    }
}

/// What a worker does after `accept`.
enum Next {
    Serve(Connection, Option<SocketAddr>),
    Again,
    End,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
