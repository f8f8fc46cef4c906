//! `--replicas`: a sale is answered 1 only once this many replicas have it
//! (Redis's WAIT). Replication is asynchronous: a master that dies right
//! after answering can take the sale with it, and the item would be sold
//! again. The tutorial has one Redis, and no such step.

use redis::{Connection, RedisResult};

/// A sale made on the master that too few replicas confirmed: a failover
/// now could lose it.
#[derive(Debug)]
pub struct Unconfirmed {
    /// What happened, for the buyer's 503 and the log.
    pub what: String,
    /// WAIT itself got no reply, so the connection is in doubt.
    pub wait_failed: bool,
}

/// The replicas a sale must reach, and how long to wait for them.
#[derive(Clone, Copy, Debug)]
pub struct Replicas {
    /// `--replicas`: 0 waits for none.
    pub wanted: u32,
    /// `--replica-timeout`, in ms.
    pub timeout_ms: u64,
}

impl Replicas {
    /// Waits, on the connection that made the sale, until `wanted` replicas
    /// have it; a sale they do not confirm in time is `Unreplicated`.
    pub fn confirm(self, con: &mut Connection) -> Result<(), Unconfirmed> {
        let Replicas { wanted, timeout_ms } = self;
        if wanted == 0 {
            return Ok(());
        }
        let wait = redis::cmd("WAIT")
            .arg(wanted)
            .arg(timeout_ms)
            .query::<u32>(con);
        let (why, wait_failed) = match wait {
            Ok(confirmed) if confirmed >= wanted => return Ok(()),
            Ok(confirmed) => {
                let why =
                    format!("{confirmed} of {wanted} replicas confirmed it within {timeout_ms} ms");
                (why, false)
            }
            // No reply to WAIT: the connection is in doubt, and is closed.
            Err(err) => (format!("WAIT for its replicas failed ({err})"), true),
        };
        let what = format!("sold on the master, but {why}: a failover now could lose it");
        Err(Unconfirmed { what, wait_failed })
    }

    /// What every sale would meet now (/readyz tells it): `Unconfirmed`
    /// when the master has fewer than `wanted` replicas connected.
    pub fn missing(self, con: &mut Connection) -> RedisResult<Option<Unconfirmed>> {
        if self.wanted == 0 {
            return Ok(None);
        }
        let connected = connected_replicas(con)?;
        Ok((connected < self.wanted).then(|| Unconfirmed {
            what: self.too_few(connected),
            wait_failed: false,
        }))
    }

    /// Warns at start when the master has fewer replicas connected than
    /// `--replicas` asks.
    pub fn warn_if_too_few(self, con: &mut Connection) -> RedisResult<()> {
        if self.wanted == 0 {
            return Ok(());
        }
        let connected = connected_replicas(con)?;
        if connected < self.wanted {
            tracing::warn!("{}", self.too_few(connected));
        }
        Ok(())
    }

    fn too_few(self, connected: u32) -> String {
        let wanted = self.wanted;
        format!(
            "--replicas {wanted} but Redis has {connected} replicas connected: every sale will \
             be answered 503 unreplicated until enough are"
        )
    }
}

/// How many replicas the master has now: `connected_slaves` of INFO.
fn connected_replicas(con: &mut Connection) -> RedisResult<u32> {
    let info: String = redis::cmd("INFO").arg("replication").query(con)?;
    let count = info
        .lines()
        .find_map(|line| line.strip_prefix("connected_slaves:"));
    Ok(count.and_then(|n| n.trim().parse().ok()).unwrap_or(0))
}
