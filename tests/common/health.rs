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
    /// Of `fds`, the sockets it opened itself: its connections to Redis,
    /// which the pool opens as the load needs them and keeps a while.
    pub outbound: usize,
    pub rss_kb: usize,
    /// The most resident memory the process has had (VmHWM).
    pub peak_kb: usize,
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
        let links: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|dir| {
                let links = dir.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok());
                links
                    .map(|link| link.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        Figures {
            threads: field("Threads:"),
            fds: links.len(),
            outbound: outbound_sockets(pid, &links),
            rss_kb: field("VmRSS:"),
            peak_kb: field("VmHWM:"),
        }
    }
}

/// How many of the process's TCP sockets (`links` of its descriptors, as
/// `socket:[INODE]`) are on another local port than the one it listens on:
/// the connections it opened.
fn outbound_sockets(pid: u32, links: &[String]) -> usize {
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    // Each line: sl local rem st ... inode; ports are hex after the colon.
    let owned: Vec<(u16, bool)> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let socket = format!("socket:[{}]", fields.get(9)?);
            links.contains(&socket).then_some(())?;
            let port = u16::from_str_radix(fields[1].rsplit(':').next()?, 16).ok()?;
            Some((port, fields[3] == "0A"))
        })
        .collect();
    let listening: Vec<u16> = owned.iter().filter(|(_, l)| *l).map(|(p, _)| *p).collect();
    owned
        .iter()
        .filter(|(port, _)| !listening.contains(port))
        .count()
}

/// Threads the server may keep beyond its start: tiny_http keeps a few idle
/// connection threads for 5 s, and a Redis connection may have been replaced.
pub const SPARE_THREADS: usize = 8;
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
    let last = Figures::of(pid);
    wait_for_within(
        &format!("threads and descriptors back near {before:?} (were {last:?})"),
        Duration::from_secs(20),
        || {
            let now = Figures::of(pid);
            let clients = now.fds - now.outbound;
            now.threads <= before.threads + SPARE_THREADS
                && clients <= before.fds - before.outbound + SPARE_FDS
        },
    );
    let after = Figures::of(pid);
    // The figures of each attack, for `cargo test --test hostile_crowds -- --nocapture` and the like.
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
