//! What the integration tests share, one concern a file: a private
//! redis-server (`redis_server`), the seckill binary (`server`), a raw HTTP
//! client (`client`), what to check after an attack (`health`), and ab and
//! wrk (`tools`).

#![allow(dead_code, unused_imports)] // each test file uses a different part of this

pub mod attack;
pub mod client;
pub mod health;
pub mod orders;
pub mod postgres;
pub mod process;
pub mod redis_server;
pub mod relay;
pub mod sentinel;
pub mod server;
pub mod tools;

use std::thread;
use std::time::{Duration, Instant};

pub use client::*;
pub use redis_server::Redis;
pub use server::{NOBODY, Seckill, limit_open_files};

/// The counters of purchases by outcome, as `/seckill/stats` names them.
pub const OUTCOMES: [&str; 10] = [
    "requests",
    "success",
    "sold_out",
    "repeat",
    "conflicts",
    "errors",
    "busy",
    "maybe_sold",
    "unreplicated",
    "not_open",
];

/// Polls `done` for up to 10 s.
pub fn wait_for(what: &str, done: impl FnMut() -> bool) {
    wait_for_within(what, Duration::from_secs(10), done);
}

/// Polls `done` for up to `limit`.
pub fn wait_for_within(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on a process this test started and has not reaped.
    let sent = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(sent, 0, "kill({pid}, {signal})");
}
