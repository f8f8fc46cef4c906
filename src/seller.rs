//! This server's mark on the sale it sells, in `commodity:sellers`: renewed
//! every `MARK_EVERY` while it runs, so that a fresh start elsewhere can
//! tell that the sale is being sold (`sale::start`); and the test behind
//! /readyz: can Redis take a sale of this server's now?

use std::sync::LazyLock;

use redis::{Connection, Script};

use crate::beyond::replicas::Replicas;
use crate::sale::{MARK_LASTS, Sale, keys, whole_number};
use crate::trouble::Trouble;

/// Renews the mark and reads the stock, in one step.
static MARK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("mark.lua")));

/// Renews this server's mark on `sale`; the stock left. A write: a Redis
/// that takes none refuses it as it would a purchase.
pub fn renew(con: &mut Connection, sale: &Sale) -> Result<i64, Trouble> {
    let stock: Option<String> = MARK
        .key(keys::STOCK)
        .key(keys::SALE_ID)
        .key(keys::SELLERS)
        .arg(&sale.id)
        .arg(&sale.seller)
        .arg(MARK_LASTS.as_millis() as u64)
        .invoke(con)?;
    let stock = stock.ok_or(Trouble::NoSale)?;
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
