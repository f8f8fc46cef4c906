//! What a test checks after an attack: the process alive and quick to
//! answer, its threads, descriptors and memory back near where they were,
//! and the sale exact.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use redis::Commands;

use super::{Redis, Seckill, get, get_as_another_client, wait_for_within};

/// A process's threads, open descriptors and resident memory, from /proc.
#[derive(Clone, Copy, Debug)]
pub struct Figures {
    pub threads: usize,
    pub fds: usize,
    pub rss_kb: usize,
}

impl Figures {
    pub fn of(pid: u32) -> Figures {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|err| panic!("process {pid} is gone: {err}"));
        let field = |name: &str| -> usize {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|dir| dir.count())
            .unwrap_or(0);
        Figures {
            threads: field("Threads:"),
            fds,
            rss_kb: field("VmRSS:"),
        }
    }
}

/// Threads the server may keep beyond its start: tiny_http keeps a few idle
/// connection threads for 5 s, and a Redis connection may have been replaced.
const SPARE_THREADS: usize = 8;
const SPARE_FDS: usize = 8;

/// After an attack: the process lives, `/healthz` answers another client
/// within a second, and the attacker's address (127.0.0.1, which may hold
/// its share of connections a moment longer) soon after; threads and
/// descriptors come back near `before` within 20 s, and the resident memory
/// grew by less than `memory_mb`.
pub fn assert_recovers(server: &mut Seckill, before: Figures, memory_mb: usize) {
    assert!(
        server.exited().is_none(),
        "the server died:\n{}",
        server.stderr()
    );
    let started = Instant::now();
    let health = get_as_another_client(server.addr, "/healthz");
    let took = started.elapsed();
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(took < Duration::from_secs(1), "/healthz took {took:?}");
    let served = "/healthz to answer the attacker's address again";
    wait_for_within(served, Duration::from_secs(20), || {
        get(server.addr, "/healthz").status == 200
    });
    let pid = server.pid();
    wait_for_within(
        &format!("threads and descriptors back near {before:?}"),
        Duration::from_secs(20),
        || {
            let now = Figures::of(pid);
            now.threads <= before.threads + SPARE_THREADS && now.fds <= before.fds + SPARE_FDS
        },
    );
    let after = Figures::of(pid);
    // The figures of each attack, for `cargo test --test hostile -- --nocapture`.
    eprintln!(
        "{}: /healthz in {took:.0?}; threads {} -> {}, descriptors {} -> {}, RSS {} -> {} kB",
        std::thread::current().name().unwrap_or("?"),
        before.threads,
        after.threads,
        before.fds,
        after.fds,
        before.rss_kb,
        after.rss_kb
    );
    assert!(
        after.rss_kb <= before.rss_kb + memory_mb * 1024,
        "memory grew from {} to {} kB",
        before.rss_kb,
        after.rss_kb
    );
}

/// The sale as a Redis holds it: its winners (the placeholder `null`,
/// which must be there, taken out), the stock left and the stock it
/// started with.
pub fn sale_in(con: &mut redis::Connection) -> (HashSet<String>, i64, i64) {
    let mut winners: HashSet<String> = con.smembers("user:id").unwrap();
    assert!(winners.remove("null"), "the placeholder stays");
    let remaining: i64 = con.get("commodity:num").unwrap();
    let initial: i64 = con.get("commodity:initial").unwrap();
    (winners, remaining, initial)
}

/// Winners + remaining = the initial stock, no oversell, and every id
/// answered 1 is a member of `user:id`.
pub fn assert_sale_exact(redis: &Redis, told_bought: &HashSet<String>) {
    let (winners, remaining, initial) = sale_in(&mut redis.con());
    assert!(remaining >= 0, "oversold: {remaining} left");
    assert_eq!(
        winners.len() as i64 + remaining,
        initial,
        "winners + remaining"
    );
    let missing: Vec<_> = told_bought.difference(&winners).collect();
    assert!(missing.is_empty(), "told 1 but not in user:id: {missing:?}");
}

/// How many of the process's threads bear `name` (a request thread is
/// named "request" while it answers).
pub fn threads_named(pid: u32, name: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}
