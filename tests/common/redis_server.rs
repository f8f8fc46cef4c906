//! A redis-server of the test's own, on a free loopback port with its own
//! data directory, never 6379.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{signal, wait_for};

const INSTALL_REDIS: &str = "redis-server is not installed: install it with \
    `apt-get install redis-server` (Debian, Ubuntu) or `brew install redis` (macOS); \
    .ci/run and scripts/test.sh do it for you when run as root";

/// A redis-server of the test's own, on a free loopback port with its own
/// data directory; killed when dropped.
pub struct Redis {
    child: Child,
    pub port: u16,
    pub dir: TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_with(&[])
    }

    /// Starts redis-server with extra arguments, such as `--appendonly yes`.
    pub fn start_with(extra: &[&str]) -> Redis {
        Redis::start_mode(None, extra)
    }

    /// Starts a Redis Sentinel, one of three, that watches the master on
    /// `master_port` as `mymaster`, and fails over one second after it
    /// stops answering.
    pub fn start_sentinel(master_port: u16) -> Redis {
        Redis::start_sentinel_of(master_port, "mymaster", 2)
    }

    /// As `start_sentinel`, naming the master `name`, with a `quorum` of
    /// sentinels to agree that it is down.
    pub fn start_sentinel_of(master_port: u16, name: &str, quorum: u32) -> Redis {
        let conf = format!(
            "sentinel monitor {name} 127.0.0.1 {master_port} {quorum}\n\
             sentinel down-after-milliseconds {name} 1000\n\
             sentinel failover-timeout {name} 3000\n\
             sentinel parallel-syncs {name} 1\n"
        );
        Redis::start_mode(Some(&conf), &[])
    }

    /// redis-server, or with a sentinel's configuration, a sentinel.
    fn start_mode(sentinel: Option<&str>, extra: &[&str]) -> Redis {
        let dir = tempfile::tempdir().expect("cannot make a temporary directory");
        let conf = dir.path().join("sentinel.conf");
        for _ in 0..5 {
            let port = free_port();
            if let Some(sentinel) = sentinel {
                std::fs::write(&conf, sentinel).expect("cannot write sentinel.conf");
            }
            let mode = sentinel.map(|_| conf.as_path());
            if let Some(child) = spawn_redis(port, &dir, mode, extra) {
                return Redis { child, port, dir };
            }
        }
        panic!(
            "redis-server did not start; see {}",
            dir.path().join("redis.log").display()
        );
    }

    /// Starts Redis again on the same port and data directory.
    pub fn restart(&mut self, extra: &[&str]) {
        self.kill();
        for _ in 0..50 {
            if let Some(child) = spawn_redis(self.port, &self.dir, None, extra) {
                self.child = child;
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes the redis-server process (SIGSTOP): connections stay open
    /// but nothing answers, as in a stalled or partitioned Redis.
    pub fn freeze(&self) {
        signal(self.child.id(), libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        signal(self.child.id(), libc::SIGCONT);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn con(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection())
            .expect("cannot connect to the test's redis-server")
    }

    /// Holds every write (CLIENT PAUSE WRITE) until the guard is dropped:
    /// a purchase then stops between its reads and its EXEC.
    pub fn hold_writes(&self) -> WritesHeld {
        let mut con = self.con();
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(20000)
            .arg("WRITE")
            .exec(&mut con)
            .expect("CLIENT PAUSE");
        WritesHeld { con }
    }

    /// Waits until `n` clients are held by CLIENT PAUSE.
    pub fn wait_for_held_clients(&self, n: usize) {
        let mut con = self.con();
        wait_for(&format!("{n} clients held by CLIENT PAUSE"), || {
            let info: String = redis::cmd("INFO").arg("clients").query(&mut con).unwrap();
            info.lines()
                .any(|line| line.trim() == format!("blocked_clients:{n}"))
        });
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct WritesHeld {
    con: redis::Connection,
}

impl Drop for WritesHeld {
    fn drop(&mut self) {
        let _ = redis::cmd("CLIENT").arg("UNPAUSE").exec(&mut self.con);
    }
}

fn spawn_redis(
    port: u16,
    dir: &TempDir,
    sentinel: Option<&std::path::Path>,
    extra: &[&str],
) -> Option<Child> {
    let port_arg = port.to_string();
    let mut command = Command::new("redis-server");
    if let Some(conf) = sentinel {
        command.arg(conf).arg("--sentinel");
    }
    let mut child = command
        .args(["--port", &port_arg, "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "no", "--enable-debug-command", "local"])
        .arg("--dir")
        .arg(dir.path())
        .args(["--logfile", "redis.log"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| match err.kind() {
            std::io::ErrorKind::NotFound => panic!("{INSTALL_REDIS}"),
            _ => panic!("cannot start redis-server: {err}"),
        });
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None; // most likely the port was taken meanwhile
        }
        let pong = redis::Client::open(format!("redis://127.0.0.1:{port}/0"))
            .and_then(|client| client.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut con| redis::cmd("PING").query::<String>(&mut con));
        if pong.is_ok() {
            return Some(child);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot find a free port");
    listener.local_addr().unwrap().port()
}
