//! The seckill binary, started against a test's Redis on a free port.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::process::seckill_output;
use super::redis_server::Redis;
use super::{signal, wait_for};

/// The seckill binary, serving on a free loopback port.
pub struct Seckill {
    child: Child,
    pub addr: SocketAddr,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// The threads that read stdout and stderr; they end at EOF.
    readers: Vec<JoinHandle<()>>,
    /// Dropped once the server has ended (or with it): a stdout left unread
    /// is then let go.
    unread: Option<mpsc::Sender<()>>,
    /// A copy of the binary that another user may run (`start_as_nobody`).
    _copy: Option<tempfile::TempDir>,
}

/// The uid and gid of `nobody`, for what a limit per user must bind.
pub const NOBODY: u32 = 65534;

impl Seckill {
    /// Starts seckill against `redis` with extra flags, and waits until it listens.
    pub fn start(redis: &Redis, flags: &[&str]) -> Seckill {
        Seckill::start_with(redis, flags, |_| {})
    }

    /// As `start`, with a last say over the command, for limits and the like.
    pub fn start_with(redis: &Redis, flags: &[&str], adjust: impl FnOnce(&mut Command)) -> Seckill {
        Seckill::spawn(redis, flags, adjust, Output::Collected)
    }

    /// seckill run to its end with `flags` against `redis` on a free port
    /// (a start that fails, `--audit`): its output, and how long it took.
    pub fn run_to_end(redis: &Redis, flags: &[&str]) -> (std::process::Output, Duration) {
        let started = Instant::now();
        let defaults = Seckill::defaults_for(redis, flags);
        let defaults: Vec<&str> = defaults.iter().map(String::as_str).collect();
        let args = [&["--bind", "127.0.0.1:0"], flags, &defaults].concat();
        let out = seckill_output(&args);
        (out, started.elapsed())
    }

    /// The flags a test's seckill gets unless `flags` name them: the test's
    /// Redis, and for a fresh sale a database of orders beside it, used by
    /// no other test (a run that joins the sale, `--audit` and `seckill
    /// orders` take the one the sale records).
    fn defaults_for(redis: &Redis, flags: &[&str]) -> Vec<String> {
        let mut defaults = Vec::new();
        if !flags.contains(&"--redis") {
            defaults.extend(["--redis".to_string(), redis.url()]);
        }
        let joins = ["--orders", "--join", "--audit", "orders"];
        if !flags.iter().any(|flag| joins.contains(flag)) {
            let database = redis.dir.path().join("orders.sqlite");
            defaults.extend([
                "--orders".to_string(),
                format!("sqlite:{}", database.display()),
            ]);
        }
        defaults
    }

    /// As `start`, run as the user `nobody`, from a copy of the binary in a
    /// directory anyone may enter: a clone in a private one (`mktemp -d`,
    /// `/root`) is out of nobody's reach. Needs root.
    pub fn start_as_nobody(redis: &Redis, flags: &[&str]) -> Seckill {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let copy = tempfile::tempdir().expect("cannot make a temporary directory");
        let open = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(copy.path(), open).unwrap();
        let binary = copy.path().join("seckill");
        std::fs::copy(env!("CARGO_BIN_EXE_seckill"), &binary).expect("cannot copy seckill");
        // The test's directories are not nobody's to write in.
        let flags = [&["--orders", "off"], flags].concat();
        let mut server = Seckill::spawn_program(
            &binary,
            redis,
            &flags,
            |command| {
                command.uid(NOBODY).gid(NOBODY).current_dir(copy.path());
            },
            Output::Collected,
        );
        server._copy = Some(copy);
        server
    }

    /// As `start`, then closes the server's stdout, as `seckill | head -1` does.
    pub fn start_then_close_stdout(redis: &Redis, flags: &[&str]) -> Seckill {
        Seckill::spawn(redis, flags, |_| {}, Output::ClosedAfterListening)
    }

    /// As `start`, then leaves the server's stdout unread but open, as a
    /// terminal after Ctrl-S does: its writes fill the pipe, then wait.
    pub fn start_then_stop_reading_stdout(redis: &Redis, flags: &[&str]) -> Seckill {
        Seckill::spawn(redis, flags, |_| {}, Output::UnreadAfterListening)
    }

    fn spawn(
        redis: &Redis,
        flags: &[&str],
        adjust: impl FnOnce(&mut Command),
        output: Output,
    ) -> Seckill {
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_seckill"));
        Seckill::spawn_program(binary, redis, flags, adjust, output)
    }

    fn spawn_program(
        binary: &std::path::Path,
        redis: &Redis,
        flags: &[&str],
        adjust: impl FnOnce(&mut Command),
        output: Output,
    ) -> Seckill {
        let mut command = Command::new(binary);
        command.args(["--bind", "127.0.0.1:0"]).args(flags);
        command.args(Seckill::defaults_for(redis, flags));
        adjust(&mut command);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the seckill binary");
        let (listening, on_listening) = mpsc::channel();
        let (unread, release) = mpsc::channel();
        let (stdout, out_reader) = collect(
            child.stdout.take().unwrap(),
            Some((listening, output, release)),
        );
        let (stderr, err_reader) = collect(child.stderr.take().unwrap(), None);
        let readers = vec![out_reader, err_reader];
        let Ok(addr) = on_listening.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            let _ = child.wait();
            readers
                .into_iter()
                .for_each(|reader| reader.join().unwrap());
            panic!(
                "seckill did not start listening:\n{}{}",
                stdout.lock().unwrap(),
                stderr.lock().unwrap()
            );
        };
        Seckill {
            child,
            addr,
            stdout,
            stderr,
            readers,
            unread: Some(unread),
            _copy: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (at most 10 s) until the server has printed `line` on stdout,
    /// as the output thread writes it a moment after the answer; all of
    /// stdout so far.
    pub fn wait_for_stdout(&self, line: &str) -> String {
        wait_for(&format!("{line:?} on stdout"), || {
            self.stdout().contains(line)
        });
        self.stdout()
    }

    /// As `wait_for_stdout`, on stderr.
    pub fn wait_for_stderr(&self, line: &str) -> String {
        wait_for(&format!("{line:?} on stderr"), || {
            self.stderr().contains(line)
        });
        self.stderr()
    }

    /// Sends SIGTERM, as `kill` or a service manager does.
    pub fn terminate(&self) {
        signal(self.child.id(), libc::SIGTERM);
    }

    /// Whether the process has ended, and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Sends SIGTERM and waits (at most 20 s) for the process to end.
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.terminate();
        let status = self.wait(Duration::from_secs(20));
        (status, self.stdout())
    }

    /// Waits (at most `limit`) for the process to end, and for all it
    /// wrote to be read.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.unread.take();
                self.readers
                    .drain(..)
                    .for_each(|reader| reader.join().unwrap());
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("seckill did not stop within {limit:?}:\n{}", self.stdout());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Seckill {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What becomes of the server's stdout once it listens.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Collected,
    ClosedAfterListening,
    /// Left unread, but open, as a terminal after Ctrl-S or `seckill | less`.
    UnreadAfterListening,
}

/// Copies a child's output into a string; reports the address of the
/// "listening on ADDR;" line on `listening`.
fn collect(
    pipe: impl Read + Send + 'static,
    listening: Option<(mpsc::Sender<SocketAddr>, Output, mpsc::Receiver<()>)>,
) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    let reader = thread::spawn(move || {
        let mut pipe = BufReader::new(pipe);
        loop {
            let mut line = String::new();
            if !matches!(pipe.read_line(&mut line), Ok(1..)) {
                break;
            }
            let line = line.trim_end_matches('\n').to_string();
            let mut heard = false;
            if let Some((tx, _, _)) = &listening {
                let addr = line
                    .split_once("listening on ")
                    .and_then(|(_, rest)| rest.split(';').next())
                    .and_then(|addr| addr.parse().ok());
                if let Some(addr) = addr {
                    heard = tx.send(addr).is_ok();
                }
            }
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
            match &listening {
                Some((_, Output::ClosedAfterListening, _)) if heard => break, // drops the pipe
                Some((_, Output::UnreadAfterListening, release)) if heard => {
                    // Holds the pipe open, unread, until the server is dropped.
                    let _ = release.recv();
                    break;
                }
                _ => {}
            }
        }
    });
    (text, reader)
}

/// Makes `command` start with this limit of open files (soft and hard).
pub fn limit_open_files(command: &mut Command, soft: u64, hard: u64) {
    use std::os::unix::process::CommandExt;
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit(2) only, between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}
