//! This server's mark on the sale it sells, in `commodity:sellers`: renewed
//! every `MARK_EVERY` while it runs, so that a fresh start elsewhere can
//! tell that the sale is being sold (`sale::start`); and the test behind
//! /readyz: can Redis take a sale of this server's now?

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use redis::{Connection, Script};

use crate::beyond::replicas::Replicas;
use crate::keys;
use crate::opening::Opening;
use crate::sale::{Sale, whole_number};
use crate::trouble::Trouble;

/// How long a server's mark lasts unless renewed; a stopped server removes
/// its mark, a killed one's lapses after this.
pub const MARK_LASTS: Duration = Duration::from_secs(3);

/// How often a running server renews its mark.
pub const MARK_EVERY: Duration = Duration::from_secs(1);

/// This server's name among the servers selling a sale: where it listens,
/// its process id and its machine, so a refused start can say who sells.
pub fn name(addr: SocketAddr) -> String {
    let pid = std::process::id();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    match host.trim() {
        "" => format!("{addr} pid {pid}"),
        host => format!("{addr} pid {pid} on {host}"),
    }
}

/// Renews the mark and reads the stock, in one step.
static MARK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("mark.lua")));

/// Renews this server's mark on `sale`, and takes the opening Redis holds
/// now (it may have been changed by hand); the stock left. A write: a Redis
/// that takes none refuses it as it would a purchase.
pub fn renew(con: &mut Connection, sale: &Sale) -> Result<i64, Trouble> {
    type Reply = Option<(String, Option<String>, i64)>;
    let reply: Reply = MARK
        .key(keys::STOCK)
        .key(keys::SALE_ID)
        .key(keys::SELLERS)
        .key(keys::OPENS_AT)
        .arg(&sale.id)
        .arg(&sale.seller)
        .arg(MARK_LASTS.as_millis() as u64)
        .invoke(con)?;
    let (stock, opens, redis_now) = reply.ok_or_else(|| Trouble::NoSale.no_sale_in(con))?;
    let opens = opens
        .map(|opens| whole_number(keys::OPENS_AT, &opens))
        .transpose()?;
    sale.opening
        .set(opens.map(|at| Opening::new(at, redis_now)));
    Ok(whole_number(keys::STOCK, &stock)?)
}

/// Ok when a purchase could be made and answered 1 now: Redis takes writes,
/// holds this server's sale with a stock it can count, and has the
/// replicas `--replicas` asks for.
pub fn ready(con: &mut Connection, sale: &Sale, replicas: Replicas) -> Result<(), Trouble> {
    renew(con, sale)?;
    match replicas.missing(con)? {
        Some(unconfirmed) => Err(unconfirmed.into()),
        None => Ok(()),
    }
}
