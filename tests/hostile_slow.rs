//! Hostile clients that are slow: silent connections, slow readers, and a
//! slowloris from a few addresses.
//!
//! Each attack runs against a fresh server on a real Redis, bounded in count,
//! bytes and time, on loopback. After each, the server lives and answers
//! `/healthz` within a second, its threads, descriptors and memory come
//! back, and the sale is exact. The patches of vendor/tiny_http that these
//! tests show are listed in vendor/tiny_http/PATCHES.md.

mod common;

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::attack::{
    QUICK, alone, assert_only_first_bought, assert_survived, purchase_head, target,
};
use common::health::{Figures, assert_recovers, assert_sale_exact};
use common::{
    FORM, connect, connect_from, form_body, read_until_closed, status_lines, try_buy_from,
    wait_for_within,
};

#[test]
fn slow_and_silent_clients_are_timed_out() {
    let _alone = alone();
    let (redis, mut server, before) = target(&QUICK);
    let within = |took: Duration, what: &str| {
        assert!(
            took < Duration::from_secs(3),
            "{what}: closed after {took:?}"
        );
    };
    // A head sent a byte at a time: 408 once --head-timeout (1 s) is up.
    let mut slow = connect(server.addr);
    let mut reading = slow.try_clone().unwrap();
    let reader = thread::spawn(move || read_until_closed(&mut reading));
    for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: yes\r\n" {
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let (bytes, took) = reader.join().unwrap();
    assert_eq!(status_lines(&bytes), ["HTTP/1.1 408 Request Timeout"]);
    within(took, "a slow head");

    // A connection that says nothing is closed without a word.
    let (bytes, took) = read_until_closed(&mut connect(server.addr));
    assert!(bytes.is_empty(), "{}", String::from_utf8_lossy(&bytes));
    within(took, "a silent connection");

    // A body that stops coming: 408 at --body-timeout, nothing bought.
    for declared in [20, 2000] {
        let mut stream = connect(server.addr);
        let head = purchase_head(&format!("Content-Length: {declared}\r\n"));
        stream
            .write_all(format!("{head}msg=slow").as_bytes())
            .unwrap();
        let (bytes, took) = read_until_closed(&mut stream);
        assert_eq!(
            status_lines(&bytes),
            ["HTTP/1.1 408 Request Timeout"],
            "{declared}"
        );
        within(took, "a slow body");
    }

    // A kept-alive connection is closed after --idle-timeout.
    let mut kept = connect(server.addr);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (bytes, took) = read_until_closed(&mut kept);
    assert_eq!(status_lines(&bytes), ["HTTP/1.1 200 OK"]);
    within(took, "an idle kept-alive connection");

    assert_only_first_bought(&redis);
    assert_survived(&redis, &mut server, before, 16);
}

/// Half a head: a slowloris's connection, which never sends the rest.
const HALF_HEAD: &[u8] = b"POST /seckill HTTP/1.1\r\nHost: 127.0.0.1\r\n";

/// A slowloris from `sources`: `per_source` connections from each at once,
/// each sending `HALF_HEAD` and opened again once the server answers or
/// closes it (10 every 10 ms at most), until `stop`, 30 s or four times as
/// many openings as it holds (5000 at least). The openings it made.
fn slowloris(addr: SocketAddr, sources: &[IpAddr], per_source: usize, stop: &AtomicBool) -> usize {
    let connections = sources.len() * per_source;
    let most = (connections * 4).max(5000);
    let half_sent = |slot: usize| {
        let mut stream = connect_from(addr, sources[slot % sources.len()]).ok()?;
        stream.write_all(HALF_HEAD).ok()?;
        stream.set_nonblocking(true).ok()?;
        Some(stream)
    };
    // Anything read (a 408 or a 503) comes before a close.
    let waiting = |stream: &TcpStream| {
        let read = (&*stream).read(&mut [0; 512]);
        matches!(read, Err(err) if err.kind() == ErrorKind::WouldBlock)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut held: Vec<Option<TcpStream>> = (0..connections).map(|_| None).collect();
    let mut opened = 0;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && opened < most {
        let closed = held
            .iter_mut()
            .enumerate()
            .filter(|(_, slot)| !slot.as_ref().is_some_and(waiting));
        for (n, slot) in closed.take(10) {
            *slot = half_sent(n);
            opened += 1;
        }
        thread::sleep(Duration::from_millis(10));
    }
    opened
}

/// `tries` purchases from `buyer`, each on a connection of its own, a
/// twentieth of a second apart: how many were answered 200 within a
/// second. The ids told 1 go into `bought`.
fn buy_from(addr: SocketAddr, buyer: IpAddr, tries: usize, bought: &mut HashSet<String>) -> usize {
    let mut served = 0;
    for n in 0..tries {
        let started = Instant::now();
        let reply = try_buy_from(addr, buyer, &format!("b{n}-"), Duration::from_secs(2));
        if let Ok(reply) = reply
            && reply.status == 200
        {
            served += usize::from(started.elapsed() < Duration::from_secs(1));
            if reply.code() == 1 {
                bought.insert(reply.user_id());
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    served
}

#[test]
fn a_slowloris_from_a_few_addresses_leaves_room_for_other_buyers() {
    let _alone = alone();
    // The defaults' ratio: one client may hold three quarters of all.
    let flags = [
        "--max-connections",
        "200",
        "--max-connections-per-client",
        "150",
        "--head-timeout",
        "1",
    ];
    let (redis, mut server, before) = target(&flags);
    let (addr, pid) = (server.addr, server.pid());
    let buyer = IpAddr::from(Ipv4Addr::new(127, 0, 0, 200));
    let mut bought = HashSet::new();
    let tries = 30;
    // Two addresses holding three quarters each locked every buyer out; 4 and
    // 16 addresses of 127.0.0.x, each holding as many as it may, half-sent.
    let served: Vec<(u8, usize)> = [(10, 4), (30, 16)]
        .into_iter()
        .map(|(first, addresses)| {
            let stop = &AtomicBool::new(false);
            let (served, opened) = thread::scope(|scope| {
                let attackers: Vec<_> = (first..first + addresses)
                    .map(|n| IpAddr::from(Ipv4Addr::new(127, 0, 0, n)))
                    .map(|source| scope.spawn(move || slowloris(addr, &[source], 150, stop)))
                    .collect();
                // A thread for each connection held: the server is (nearly) full.
                let full = || Figures::of(pid).threads >= before.threads + 190;
                let filled = Duration::from_secs(20);
                wait_for_within("the slowloris to fill the server", filled, full);
                let served = buy_from(addr, buyer, tries, &mut bought);
                stop.store(true, Ordering::SeqCst);
                let opened: usize = attackers.into_iter().map(|a| a.join().unwrap()).sum();
                (served, opened)
            });
            eprintln!(
                "slowloris from {addresses} addresses ({opened} connections opened): \
                 {served} of {tries} purchases from another address served within 1 s"
            );
            (addresses, served)
        })
        .collect();
    for (addresses, served) in served {
        assert!(
            served * 10 >= tries * 9,
            "{addresses} addresses: {served} of {tries} served"
        );
    }
    assert_survived(&redis, &mut server, before, 32);
    assert_sale_exact(&redis, &bought);
}

/// One half-sent head from each of as many addresses as the server takes
/// connections (50 at `--max-connections 50`; 3000 at the default 2048):
/// a buyer from yet another address takes the place of one of them, and
/// is served within 1 s in nine tries of ten while the attack goes on.
#[test]
fn a_half_sent_head_from_each_of_many_addresses_locks_no_buyer_out() {
    let _alone = alone();
    for (cap, addresses) in [(Some("50"), 50u32), (None, 3000)] {
        let mut flags = vec!["--head-timeout", "5"];
        if let Some(cap) = cap {
            flags.extend(["--max-connections", cap]);
        }
        let (redis, mut server, before) = target(&flags);
        let (addr, pid) = (server.addr, server.pid());
        let most: usize = cap.map_or(2048, |cap| cap.parse().unwrap());
        // 127.0.1.1 and on: each of them one client.
        let sources: Vec<IpAddr> = (0..addresses)
            .map(|n| IpAddr::from(Ipv4Addr::from(0x7f00_0101 + n)))
            .collect();
        let buyer = IpAddr::from(Ipv4Addr::new(127, 0, 0, 200));
        let (tries, mut bought) = (20, HashSet::new());
        let stop = &AtomicBool::new(false);
        let (served, opened, peak) = thread::scope(|scope| {
            let attack = scope.spawn(|| slowloris(addr, &sources, 1, stop));
            let full = || Figures::of(pid).threads >= before.threads + most - 10;
            wait_for_within(
                "the attack to fill the server",
                Duration::from_secs(30),
                full,
            );
            let served = buy_from(addr, buyer, tries, &mut bought);
            let peak = Figures::of(pid);
            stop.store(true, Ordering::SeqCst);
            (served, attack.join().unwrap(), peak)
        });
        eprintln!(
            "{addresses} addresses at a cap of {most} ({opened} connections opened): {served} of \
             {tries} purchases from another address served within 1 s; {} threads, {} MB",
            peak.threads,
            peak.rss_kb / 1024
        );
        assert!(
            served * 10 >= tries * 9,
            "{addresses} addresses: {served} of {tries} served"
        );
        assert!(peak.threads <= before.threads + most + 64, "{peak:?}");
        assert_survived(&redis, &mut server, before, 96);
        assert_sale_exact(&redis, &bought);
    }
}

/// The idle timeout counts from an answer, not from its request: after an
/// answer that took longer than the pause that follows it, the next request
/// on the connection comes more than `--idle-timeout` after the last one
/// began, and less after its answer, and is served.
#[test]
fn a_slow_answer_leaves_the_client_its_whole_idle_timeout() {
    let _alone = alone();
    let idle = Duration::from_secs(2);
    let flags = [
        "--strategy",
        "watch",
        "--suffix-max",
        "0",
        "--idle-timeout",
        "2",
    ];
    let (redis, mut server, before) = target(&flags);
    let mut stream = connect(server.addr);
    let ask = |id: &str| {
        let body = form_body(id);
        let length = body.len();
        format!(
            "POST /seckill HTTP/1.1\r\nContent-Type: {FORM}\r\nContent-Length: {length}\r\n\r\n{body}"
        )
    };
    // A frozen Redis makes this answer slow: watch's four replies, 400 ms each.
    redis.freeze();
    let asked = Instant::now();
    stream.write_all(ask("slow").as_bytes()).unwrap();
    let mut first = [0; 12];
    stream.read_exact(&mut first).unwrap();
    let answered = Instant::now();
    redis.thaw();
    assert_eq!(&first, b"HTTP/1.1 503");
    // The next request 2.4 s after the first began: over the idle timeout
    // from the request, well within it from the answer.
    let next = asked + idle + Duration::from_millis(400);
    assert!(
        next > answered + Duration::from_millis(400)
            && next + Duration::from_millis(800) < answered + idle,
        "the answer took {:?}: too quick or too slow to tell the two apart",
        answered - asked
    );
    thread::sleep(next - Instant::now());
    stream.write_all(ask("after-a-pause").as_bytes()).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let (bytes, _) = read_until_closed(&mut stream);
    assert_eq!(
        status_lines(&bytes),
        ["HTTP/1.1 200 OK"],
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_recovers(&mut server, before, 16);
}
