//! Redis's own failover on loopback: a master, two replicas, and three
//! sentinels that promote a replica when the master fails, and make the
//! other replicate from it. Every process is a `Redis` of the test's own,
//! stopped when dropped.

use std::time::Duration;

use super::redis_server::Redis;
use super::wait_for_within;

pub struct Topology {
    pub master: Redis,
    pub replicas: Vec<Redis>,
    pub sentinels: Vec<Redis>,
}

impl Topology {
    /// A master, two replicas that have synced with it, and three sentinels
    /// that know the replicas and each other: ready to fail over.
    pub fn start() -> Topology {
        // Replicas sync at once, not after the default 5 s of waiting for
        // others: from the master, and from a replica once it is promoted.
        let at_once = ["--repl-diskless-sync-delay", "0"];
        let master = Redis::start_with(&at_once);
        let port = master.port.to_string();
        let replicas: Vec<Redis> = (0..2)
            .map(|_| {
                Redis::start_with(&[&at_once[..], &["--replicaof", "127.0.0.1", &port]].concat())
            })
            .collect();
        for replica in &replicas {
            wait_for_within("a replica's first sync", Duration::from_secs(20), || {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut replica.con())
                    .unwrap();
                info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0")
            });
        }
        let sentinels: Vec<Redis> = (0..3).map(|_| Redis::start_sentinel(master.port)).collect();
        for sentinel in &sentinels {
            let ready = "sentinels that know the replicas and each other";
            wait_for_within(ready, Duration::from_secs(30), || {
                let mut con = sentinel.con();
                let mut count = |what: &str| {
                    let known: Vec<redis::Value> = redis::cmd("SENTINEL")
                        .arg(what)
                        .arg("mymaster")
                        .query(&mut con)
                        .unwrap();
                    known.len()
                };
                count("replicas") == 2 && count("sentinels") == 2
            });
        }
        Topology {
            master,
            replicas,
            sentinels,
        }
    }

    /// `--sentinel` for seckill.
    pub fn sentinel_flag(&self) -> String {
        let addrs: Vec<_> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        addrs.join(",")
    }

    /// The port of the master the sentinels name now.
    pub fn named_master(&self) -> Option<u16> {
        self.named_master_by(0)
    }

    /// The port of the master that sentinel `n` names now.
    pub fn named_master_by(&self, n: usize) -> Option<u16> {
        let mut con = self.sentinels[n].con();
        let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg("mymaster")
            .query(&mut con)
            .ok()?;
        addr.map(|(_, port)| port)
    }
}
