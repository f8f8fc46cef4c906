//! Redis Sentinel: which server is the master now. Sentinels watch a master
//! and its replicas, and when the master fails they promote a replica; a
//! client asks them for the master before it connects (`--sentinel`).
//!
//! The lookup is Sentinel's client protocol, one command to each sentinel in
//! turn, asked here with timeouts: the redis crate's blocking Sentinel client
//! connects and reads without any, under one lock, so one sentinel that
//! accepted connections but never answered stopped seckill following a
//! failover (`tests/failover.rs`, a frozen sentinel).

use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::{Client, Connection, ConnectionAddr, ConnectionInfo, RedisError, RedisResult, Role};

/// The sentinels of `--sentinel`, and the master they watch as `--master`.
pub struct Sentinels {
    sentinels: Vec<Client>,
    name: String,
    /// How to connect to the master they name: its database, password and
    /// TCP settings, from `--redis`.
    master: ConnectionInfo,
    timeout: Duration,
    /// The master they named last, to log a change.
    named: Mutex<Option<(String, u16)>>,
}

impl Sentinels {
    /// `addrs` are `HOST:PORT`; each connection and each reply may take
    /// `timeout`.
    pub fn new(
        addrs: &[String],
        name: &str,
        master: ConnectionInfo,
        timeout: Duration,
    ) -> RedisResult<Sentinels> {
        let sentinels = addrs
            .iter()
            .map(|at| Client::open(format!("redis://{at}")))
            .collect::<RedisResult<_>>()?;
        let name = name.to_string();
        Ok(Sentinels {
            sentinels,
            name,
            master,
            timeout,
            named: Mutex::new(None),
        })
    }

    /// A connection to the master the first answering sentinel names,
    /// checked with ROLE: a sentinel may still name a master that a
    /// failover has just demoted.
    pub fn connect_to_master(&self) -> RedisResult<Connection> {
        let (host, port) = self.named_master()?;
        let addr = ConnectionAddr::Tcp(host, port);
        let client = Client::open(self.master.clone().set_addr(addr))?;
        let mut con = self.open(&client)?;
        is_master(&mut con)?;
        Ok(con)
    }

    /// A connection to a sentinel or a master, every step within `timeout`.
    fn open(&self, client: &Client) -> RedisResult<Connection> {
        let con = client.get_connection_with_timeout(self.timeout)?;
        con.set_read_timeout(Some(self.timeout))?;
        con.set_write_timeout(Some(self.timeout))?;
        Ok(con)
    }

    /// `SENTINEL GET-MASTER-ADDR-BY-NAME`, to each sentinel until one answers.
    fn named_master(&self) -> RedisResult<(String, u16)> {
        let mut failure = None;
        for sentinel in &self.sentinels {
            let asked = self.open(sentinel).and_then(|mut con| {
                redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(&self.name)
                    .query::<Option<(String, u16)>>(&mut con)
            });
            match asked {
                Ok(Some(master)) => {
                    self.tell_if_new(&master);
                    return Ok(master);
                }
                Ok(None) => {
                    let what = format!("the sentinels know no master named `{}`", self.name);
                    failure = Some(failed(what));
                }
                Err(err) => failure = Some(err),
            }
        }
        Err(failure.unwrap_or_else(|| failed("no sentinel given".into())))
    }

    /// Logs the master the sentinels name when it changes: a failover, seen
    /// from here.
    fn tell_if_new(&self, master: &(String, u16)) {
        let mut named = self.named.lock().unwrap_or_else(PoisonError::into_inner);
        if named.as_ref() != Some(master) {
            let (host, port) = master;
            if named.is_some() {
                tracing::warn!("the sentinels name {host}:{port} as the master now");
            }
            *named = Some(master.clone());
        }
    }
}

/// Ok when `con` leads to a master: after a failover the old master comes
/// back as a replica, and refuses the sale's writes.
pub fn is_master(con: &mut Connection) -> RedisResult<()> {
    match redis::cmd("ROLE").query::<Role>(con)? {
        Role::Primary { .. } => Ok(()),
        _ => Err(failed("this server is no longer the master".into())),
    }
}

fn failed(what: String) -> RedisError {
    RedisError::from(io::Error::other(what))
}
