//! A PostgreSQL of the test's own: a private cluster (initdb) in a temporary
//! directory, on a free loopback port, stopped when dropped, also when the
//! test fails. Run as the user `postgres` when the test runs as root, as
//! PostgreSQL refuses to run as root.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use tempfile::TempDir;

use super::process::output_within;
use super::redis_server::free_port;

/// How long initdb, pg_ctl (which waits for the server) and psql may take.
const POSTGRES_WITHIN: Duration = Duration::from_secs(120);

const INSTALL_POSTGRES: &str = "PostgreSQL is not installed: install it with \
    `apt-get install postgresql` (Debian, Ubuntu); .ci/run and scripts/test.sh do it for \
    you when run as root";

pub struct Postgres {
    pub port: u16,
    dir: TempDir,
    bin: PathBuf,
    owner: Option<(u32, u32)>,
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = binaries();
        let dir = tempfile::tempdir().expect("cannot make a temporary directory");
        // SAFETY: geteuid(2) has no preconditions.
        let owner = (unsafe { libc::geteuid() } == 0).then(postgres_user);
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let postgres = Postgres {
            port: free_port(),
            dir,
            bin,
            owner,
        };
        let data = postgres.data();
        let init = postgres.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "--auth=trust", "-N"],
        );
        assert!(init.status.success(), "initdb: {}", text(&init));
        postgres.start_server();
        postgres
    }

    /// A URL for `--orders`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server, keeping its data (`start_server` brings it back).
    pub fn stop_server(&self) {
        let stop = self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
        assert!(stop.status.success(), "pg_ctl stop: {}", text(&stop));
    }

    /// Freezes every process of the cluster (SIGSTOP), as a frozen machine:
    /// the kernel still takes connections and data, nothing answers.
    pub fn freeze(&self) {
        self.signal_all(libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal_all(libc::SIGCONT);
    }

    /// Sends `signal` to each process of the cluster; one that has just
    /// ended is let be.
    fn signal_all(&self, signal: libc::c_int) {
        for pid in self.processes() {
            // SAFETY: kill(2) on a process of this test's cluster.
            unsafe { libc::kill(pid as libc::pid_t, signal) };
        }
    }

    /// The postmaster (its pid is the first line of postmaster.pid) and
    /// the processes it started.
    fn processes(&self) -> Vec<u32> {
        let pid_file = self.dir.path().join("data/postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
        let Some(postmaster) = text.lines().next().and_then(|pid| pid.trim().parse().ok()) else {
            return Vec::new();
        };
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // pid (name) state ppid ...: the name may hold spaces, not ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<u32>().ok());
            if ppid == Some(postmaster) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Runs `sql` as the superuser.
    pub fn execute(&self, sql: &str) {
        self.query(sql);
    }

    /// Starts the server on its port, and waits until it answers.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        let start = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log.display().to_string(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        assert!(
            start.status.success(),
            "pg_ctl start: {}; see {}",
            text(&start),
            log.display()
        );
    }

    /// The number of rows of `sql`'s first column, as psql prints it.
    pub fn query(&self, sql: &str) -> String {
        let mut psql = Command::new("psql");
        psql.args(["-X", "-A", "-t", "-c", sql, &self.url()]);
        let out = output_within(&mut psql, POSTGRES_WITHIN)
            .unwrap_or_else(|err| panic!("cannot run psql ({err}): {INSTALL_POSTGRES}"));
        assert!(out.status.success(), "psql: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut command = Command::new(self.bin.join(program));
        command.args(args).current_dir(self.dir.path());
        if let Some((uid, gid)) = self.owner {
            command.uid(uid).gid(gid);
        }
        output_within(&mut command, POSTGRES_WITHIN)
            .unwrap_or_else(|err| panic!("cannot run {program} ({err}): {INSTALL_POSTGRES}"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // A test that failed while the server was frozen leaves it frozen,
        // and a frozen server heeds no stop.
        if self.dir.path().join("data/postmaster.pid").exists() {
            self.thaw();
        }
        let _ = self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}

/// The directory of initdb and pg_ctl: on the PATH, or Debian's.
fn binaries() -> PathBuf {
    let on_path = output_within(
        Command::new("sh").args(["-c", "command -v initdb"]),
        POSTGRES_WITHIN,
    );
    if let Ok(out) = on_path
        && out.status.success()
    {
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        return std::fs::canonicalize(&path)
            .unwrap_or(path)
            .parent()
            .unwrap()
            .to_path_buf();
    }
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|versions| {
            let mut dirs: Vec<PathBuf> = versions.flatten().map(|v| v.path().join("bin")).collect();
            dirs.sort();
            dirs.pop()
        });
    debian
        .filter(|bin| bin.join("initdb").exists())
        .unwrap_or_else(|| panic!("{INSTALL_POSTGRES}"))
}

/// The uid and gid of the user `postgres`, which Debian's package makes.
fn postgres_user() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = output_within(Command::new("id").args([flag, "postgres"]), POSTGRES_WITHIN)
            .expect("cannot run id");
        assert!(out.status.success(), "no user postgres: {INSTALL_POSTGRES}");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}
