//! A relay between seckill and its Redis that can hold back, at a chosen
//! moment, what seckill sends: a purchase stops between two of its steps
//! for as long as the test likes, and nothing else is touched.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use super::wait_for;

/// Listens on a free loopback port and relays each connection to Redis.
pub struct Relay {
    pub port: u16,
    hold: Arc<Hold>,
    stopped: Arc<AtomicBool>,
}

#[derive(Default)]
struct Hold {
    state: Mutex<HoldState>,
    released: Condvar,
}

#[derive(Default)]
struct HoldState {
    /// Bytes that make the next write toward Redis that holds them wait.
    pattern: Option<Vec<u8>>,
    held: bool,
}

impl Relay {
    /// A relay to the Redis on `redis_port`.
    pub fn start(redis_port: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot listen for the relay");
        let port = listener.local_addr().unwrap().port();
        let hold = Arc::new(Hold::default());
        let stopped = Arc::new(AtomicBool::new(false));
        let (shared, stop) = (Arc::clone(&hold), Arc::clone(&stopped));
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(redis) = TcpStream::connect(("127.0.0.1", redis_port)) else {
                    continue;
                };
                relay(client, redis, Arc::clone(&shared));
            }
        });
        Relay {
            port,
            hold,
            stopped,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Holds the next write toward Redis that contains `pattern` until
    /// `release`.
    pub fn hold_next(&self, pattern: &[u8]) {
        let mut state = self.hold.state.lock().unwrap();
        state.pattern = Some(pattern.to_vec());
        state.held = false;
    }

    /// Waits (at most 10 s) until a write is held.
    pub fn wait_held(&self) {
        wait_for("a write held by the relay", || {
            self.hold.state.lock().unwrap().held
        });
    }

    /// Lets the held write go on, and holds nothing more.
    pub fn release(&self) {
        let mut state = self.hold.state.lock().unwrap();
        state.pattern = None;
        state.held = false;
        self.hold.released.notify_all();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.release();
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees the stop.
        let _ =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1));
    }
}

/// Copies both ways between `client` and `redis` until either closes;
/// toward Redis, a write holding the pattern waits for the release.
fn relay(client: TcpStream, redis: TcpStream, hold: Arc<Hold>) {
    let (mut from_client, mut to_redis) = (client.try_clone().unwrap(), redis.try_clone().unwrap());
    let (mut from_redis, mut to_client) = (redis, client);
    thread::spawn(move || {
        let mut buf = [0; 16 * 1024];
        while let Ok(read @ 1..) = from_client.read(&mut buf) {
            hold.wait_if_held(&buf[..read]);
            if to_redis.write_all(&buf[..read]).is_err() {
                break;
            }
        }
        let _ = to_redis.shutdown(Shutdown::Both);
    });
    thread::spawn(move || {
        let mut buf = [0; 16 * 1024];
        while let Ok(read @ 1..) = from_redis.read(&mut buf) {
            if to_client.write_all(&buf[..read]).is_err() {
                break;
            }
        }
        let _ = to_client.shutdown(Shutdown::Both);
    });
}

impl Hold {
    /// Waits for the release if `bytes` is the write to hold.
    fn wait_if_held(&self, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap();
        let matches = state
            .pattern
            .as_deref()
            .is_some_and(|pattern| bytes.windows(pattern.len()).any(|window| window == pattern));
        if !matches || state.held {
            return;
        }
        state.held = true;
        while state.held && state.pattern.is_some() {
            state = self.released.wait(state).unwrap();
        }
    }
}
