//! What the hostile tests share: one attack at a time, a target server and
//! its figures before, what to check after, and busy cores.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use redis::Commands;

use super::health::{Figures, assert_recovers, assert_sale_exact};
use super::{FORM, Redis, Seckill, buy, send_reading, status_lines};

/// The attacks take the machine's two cores: one at a time, so the timing
/// checks of one are not the load of another.
pub static ONE_ATTACK_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_ATTACK_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Short limits, so that the attacks that wait for them end soon.
pub const QUICK: [&str; 8] = [
    "--head-timeout",
    "1",
    "--idle-timeout",
    "1",
    "--body-timeout",
    "1",
    "--send-timeout",
    "1",
];

/// A server with `flags` on a fresh Redis, and its figures before the attack.
pub fn target(flags: &[&str]) -> (Redis, Seckill, Figures) {
    let redis = Redis::start();
    let mut all = vec!["--quiet"];
    all.extend_from_slice(flags);
    let server = Seckill::start(&redis, &all);
    // One purchase first, so the figures include a request thread's traces.
    assert_eq!(buy(server.addr, "first").status, 200);
    let before = Figures::of(server.pid());
    (redis, server, before)
}

/// Purchases after the attack, each answered; the ids told 1.
pub fn buyers_after(addr: SocketAddr, count: usize) -> HashSet<String> {
    let mut bought = HashSet::new();
    for n in 0..count {
        let reply = buy(addr, &format!("after{n}-"));
        assert_eq!(reply.status, 200, "{}", reply.text());
        if reply.code() == 1 {
            bought.insert(reply.user_id());
        }
    }
    bought
}

/// After an attack: the server recovers (`assert_recovers`, memory grown by
/// less than `memory_mb`), three more buyers are served, and the sale is exact.
pub fn assert_survived(redis: &Redis, server: &mut Seckill, before: Figures, memory_mb: usize) {
    assert_recovers(server, before, memory_mb);
    assert_sale_exact(redis, &buyers_after(server.addr, 3));
}

/// Nobody bought during the attack: `user:id` holds the sentinel and the
/// buyer of `target`.
pub fn assert_only_first_bought(redis: &Redis) {
    let members: i64 = redis.con().scard("user:id").unwrap();
    assert_eq!(members, 2, "only `first` bought");
}

/// A purchase request with a body of its own choosing.
pub fn purchase_head(extra: &str) -> String {
    format!("POST /seckill HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {FORM}\r\n{extra}\r\n")
}

/// Keeps every core busy until dropped: a spinning thread a core.
pub struct BusyCores(Vec<thread::JoinHandle<()>>, &'static AtomicBool);

impl BusyCores {
    pub fn start() -> BusyCores {
        static STOP: AtomicBool = AtomicBool::new(false);
        STOP.store(false, Ordering::SeqCst);
        let spin = || {
            thread::spawn(|| {
                while !STOP.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        };
        let cores = thread::available_parallelism().map_or(2, usize::from);
        BusyCores((0..cores).map(|_| spin()).collect(), &STOP)
    }
}

impl Drop for BusyCores {
    fn drop(&mut self) {
        self.1.store(true, Ordering::SeqCst);
        for spinner in self.0.drain(..) {
            let _ = spinner.join();
        }
    }
}

/// Sends `raw` while reading the answer: the server may answer and close
/// before all of it is sent. The status lines received, if any, once the
/// server has closed the connection (a 20 s wait for it fails the test).
pub fn flood(addr: SocketAddr, raw: Vec<u8>) -> Vec<String> {
    match send_reading(addr, &raw) {
        Ok(bytes) => status_lines(&bytes),
        Err(err) => panic!("the server kept the connection open: {err}"),
    }
}
