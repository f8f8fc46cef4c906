//! Where orders are kept (`--orders`): SQLite, embedded (the default: no
//! server to start), or PostgreSQL for a real deployment, each a `Store`
//! through a synchronous client and an r2d2 pool, as Redis is. One schema
//! for both, with the order's key (its sale and its buyer) unique, so a
//! batch written twice (a crash between the commit and the XACK) inserts
//! nothing twice.
//!
//! A sale records where its orders go (`Location`, without any password),
//! so every server of the sale, `seckill orders` and `--audit` use the
//! same database.

use std::fmt;
use std::path::PathBuf;

use super::Order;
use super::postgres::Postgres;
use super::sqlite::Sqlite;
use super::store::Store;
use crate::beyond::redact::redact;

/// `--orders` when none is given: a file beside where seckill is started,
/// outside `target/` (which `cargo clean` wipes).
pub const DEFAULT_ORDERS: &str = "sqlite:seckill-orders.sqlite";

/// Where orders go, as a sale records it and messages name it: never with
/// a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// `--orders off`: the winners stay in Redis only.
    Off,
    /// The file's absolute path.
    Sqlite(PathBuf),
    /// `postgres://USER@HOST:PORT/DB`.
    Postgres(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Off => f.write_str("off"),
            Location::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Location::Postgres(url) => f.write_str(url),
        }
    }
}

/// A database of orders, and where it is.
pub struct Database {
    store: Box<dyn Store>,
    pub location: Location,
}

impl Database {
    /// The database of `url` (`--orders`), checked at once: one that
    /// vanishes with the process, a path that cannot be written, a
    /// PostgreSQL that refuses the user are mistakes, said now; a
    /// PostgreSQL that does not answer is an outage: the orders wait in
    /// the stream, and the writer says so. None for `off`.
    pub fn open(url: &str) -> Result<Option<Database>, String> {
        if url == "off" {
            return Ok(None);
        }
        let (store, location): (Box<dyn Store>, Location) =
            if let Some(path) = url.strip_prefix("sqlite:") {
                let sqlite = Sqlite::open(path)?;
                let location = Location::Sqlite(sqlite.path.clone());
                (Box::new(sqlite), location)
            } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                let (postgres, location) = Postgres::open(url)?;
                (Box::new(postgres), Location::Postgres(location))
            } else {
                return Err(format!(
                    "--orders {}: give sqlite:PATH, postgres://USER@HOST:PORT/DB, or off",
                    redact(url)
                ));
            };
        Ok(Some(Database { store, location }))
    }

    pub fn write(&self, orders: &[Order]) -> Result<u64, String> {
        self.store.write(orders)
    }

    pub fn count(&self, sale: &str) -> Result<u64, String> {
        self.store.count(sale)
    }

    pub fn buyers(&self, sale: &str) -> Result<Vec<(String, String)>, String> {
        self.store.buyers(sale)
    }
}

/// Where `url` (`--orders`) would put the orders, without opening it.
pub fn location_of(url: &str) -> Result<Location, String> {
    if url == "off" {
        Ok(Location::Off)
    } else if let Some(path) = url.strip_prefix("sqlite:") {
        Ok(Location::Sqlite(super::sqlite::absolute(path)?))
    } else {
        Ok(Location::Postgres(super::postgres::location(url)?))
    }
}

/// Which `--orders` to open, given where the sale in Redis records its
/// orders go (`recorded`, if it does) and the one this run was given
/// (`given`, if any): a run that joins a sale (a server with `--join`,
/// `seckill orders`) uses the sale's, and refuses another; a fresh sale
/// takes the given one or the default.
pub fn choose(recorded: Option<&str>, given: Option<&str>, joins: bool) -> Result<String, String> {
    let Some(recorded) = recorded.filter(|_| joins) else {
        return Ok(given.unwrap_or(DEFAULT_ORDERS).to_string());
    };
    let Some(given) = given else {
        return Ok(recorded.to_string());
    };
    let location = location_of(given)?;
    if location.to_string() == recorded {
        return Ok(given.to_string());
    }
    Err(format!(
        "the sale in Redis keeps its orders at {recorded} (the server that started it said so), \
         and this run was given --orders {location}: one sale's orders go to one database; leave \
         --orders out to use the sale's, or give --orders {recorded}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sale_one_database() {
        let here = std::env::current_dir().unwrap();
        let recorded = format!("sqlite:{}", here.join("a.sqlite").display());
        // Joining without --orders takes the sale's; the same one given is fine.
        assert_eq!(choose(Some(&recorded), None, true).unwrap(), recorded);
        assert_eq!(
            choose(Some(&recorded), Some("sqlite:a.sqlite"), true).unwrap(),
            "sqlite:a.sqlite"
        );
        let refused = choose(Some(&recorded), Some("sqlite:b.sqlite"), true).unwrap_err();
        assert!(
            refused.contains(&recorded) && refused.contains("b.sqlite"),
            "{refused}"
        );
        assert!(choose(Some("off"), Some("sqlite:a.sqlite"), true).is_err());
        assert_eq!(choose(Some("off"), None, true).unwrap(), "off");
        // A fresh sale takes what it is given, or the default.
        assert_eq!(
            choose(Some(&recorded), None, false).unwrap(),
            DEFAULT_ORDERS
        );
        assert_eq!(choose(None, None, true).unwrap(), DEFAULT_ORDERS);
    }
}
