//! The orders as a test reads them: the SQLite database `Seckill::start`
//! gives a sale, the winners in Redis, the audit.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redis::Commands;

use super::{Redis, Seckill, wait_for_within};

/// The database `Seckill::start` gives the servers of `redis`'s sale.
pub fn database(redis: &Redis) -> PathBuf {
    redis.dir.path().join("orders.sqlite")
}

/// The buyers with an order in the database, each once.
pub fn ordered(redis: &Redis) -> Vec<String> {
    ordered_in(&database(redis))
}

/// The buyers with an order in the SQLite file at `path`; none if there is
/// no such file, or no table in it.
pub fn ordered_in(path: &Path) -> Vec<String> {
    if !path.exists() {
        return Vec::new();
    }
    let db = rusqlite::Connection::open(path).unwrap();
    let Ok(mut query) = db.prepare("SELECT user_id FROM seckill_orders") else {
        return Vec::new();
    };
    let rows = query.query_map([], |row| row.get(0)).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// The winners in Redis, the placeholder left out.
pub fn winners(redis: &Redis) -> HashSet<String> {
    let mut winners: HashSet<String> = redis.con().smembers("user:id").unwrap();
    winners.remove("null");
    winners
}

/// Waits until the stream is empty and the orders are the winners.
pub fn wait_until_orders_are_winners(redis: &Redis, within: Duration) {
    wait_for_within("the orders to be the winners", within, || {
        let waiting: usize = redis.con().xlen("seckill:orders").unwrap();
        let orders = ordered(redis);
        waiting == 0 && orders.iter().cloned().collect::<HashSet<_>>() == winners(redis)
    });
    let orders = ordered(redis);
    let unique: HashSet<&String> = orders.iter().collect();
    assert_eq!(unique.len(), orders.len(), "an order twice");
}

/// `seckill --audit` of `redis`'s sale with `flags`: exit code, output.
pub fn audit_with(redis: &Redis, flags: &[&str]) -> (i32, String) {
    let (out, _) = Seckill::run_to_end(redis, &[&["--audit"], flags].concat());
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// `seckill --audit` of `redis`'s sale and its database.
pub fn audit(redis: &Redis) -> (i32, String) {
    let orders = format!("sqlite:{}", database(redis).display());
    audit_with(redis, &["--orders", &orders])
}
