//! A Redis full of clients: it allows `maxclients` connections in all, and
//! refuses the next. The pool opens connections as the load needs them, so
//! this is said once, when it begins, with the figures and what to do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use redis::Connection;

/// What Redis answers a connection beyond its `maxclients`.
pub const MAXCLIENTS_REACHED: &str = "max number of clients reached";

/// What to do about a full Redis.
const RAISE_IT: &str = "raise it (redis-cli config set maxclients 10000) or stop other clients";

/// Counts new connections that failed, and says once when Redis is full.
#[derive(Default)]
pub struct Refusals {
    refused: Arc<AtomicU64>,
    told: AtomicBool,
}

impl Refusals {
    /// The counter that the pool's connector bumps.
    pub fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.refused)
    }

    /// Says once, when it begins, that Redis refuses more connections and
    /// this server sells on the `open` it has; `con` asks Redis why.
    pub fn tell_if_full(&self, con: &mut Connection, open: u32) {
        if self.refused.swap(0, Ordering::Relaxed) == 0 {
            self.told.store(false, Ordering::Relaxed);
            return;
        }
        if let Some(full) = clients_full(con)
            && !self.told.swap(true, Ordering::Relaxed)
        {
            tracing::warn!("{full}; this server sells on its {open} connections");
        }
    }
}

/// Why a pool of `needed` connections could not open, if Redis is full.
pub fn too_few_for(con: &mut Connection, needed: u32, err: &str) -> Option<String> {
    let most = maxclients(con).filter(|_| err.contains(MAXCLIENTS_REACHED))?;
    Some(format!(
        "Redis refuses more connections: seckill needs {needed} to start, and Redis allows \
         {most} clients in all (its maxclients), most of them taken; {RAISE_IT}"
    ))
}

/// Why Redis refuses new connections, if it is full: every client it
/// allows (`maxclients`) is connected.
fn clients_full(con: &mut Connection) -> Option<String> {
    let connected = clients_field(con, "connected_clients:")?;
    let most = maxclients(con)?;
    // This connection is one of them; a full Redis leaves room for one or two.
    (connected + 2 >= most).then(|| {
        format!(
            "Redis refuses more connections: {connected} clients are connected, and its \
             maxclients is {most}; {RAISE_IT}"
        )
    })
}

/// The clients Redis allows at once.
fn maxclients(con: &mut Connection) -> Option<u64> {
    clients_field(con, "maxclients:")
}

/// A field of INFO clients (`maxclients` since Redis 7).
fn clients_field(con: &mut Connection, name: &str) -> Option<u64> {
    let info: String = redis::cmd("INFO").arg("clients").query(con).ok()?;
    let line = info.lines().find_map(|line| line.strip_prefix(name))?;
    line.trim().parse().ok()
}
