//! Child processes a test waits for, each with a deadline: a refusal that
//! broke (a server that goes on serving instead of stopping) fails the
//! test with what the process printed, rather than hanging it.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a seckill that should stop by itself (a refused start,
/// `--audit`) may take.
pub const SECKILL_ENDS_WITHIN: Duration = Duration::from_secs(30);

/// The seckill binary under test.
pub fn seckill() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seckill"))
}

/// Runs `command` to its end, for `limit` at most: its output. An error
/// only when it cannot start; one still running at `limit` is killed and
/// the test fails, showing what it printed.
pub fn output_within(command: &mut Command, limit: Duration) -> std::io::Result<Output> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    Ok(output_of(child, limit, &format!("{command:?}")))
}

/// The output of `child` (its stdout and stderr piped, if at all) once it
/// ends, within `limit`; past it, `child` is killed and the test fails.
pub fn output_of(mut child: Child, limit: Duration, what: &str) -> Output {
    let (stdout, out_reader) = read_all(child.stdout.take());
    let (stderr, err_reader) = read_all(child.stderr.take());
    let Some(status) = wait_within(&mut child, limit) else {
        // Not joined: a process it started may hold its pipes open.
        let printed = |bytes: &Arc<Mutex<Vec<u8>>>| {
            String::from_utf8_lossy(&bytes.lock().unwrap()).into_owned()
        };
        panic!(
            "{what} did not end within {limit:?}; it printed:\n{}{}",
            printed(&stdout),
            printed(&stderr)
        );
    };
    out_reader.join().unwrap();
    err_reader.join().unwrap();
    let taken = |bytes: Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *bytes.lock().unwrap());
    Output {
        status,
        stdout: taken(stdout),
        stderr: taken(stderr),
    }
}

/// `output_within` of a seckill that should stop by itself.
pub fn seckill_output(args: &[&str]) -> Output {
    output_within(seckill().args(args), SECKILL_ENDS_WITHIN).expect("cannot run seckill")
}

/// Waits for `child` to end, for `limit` at most; kills it after.
fn wait_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("cannot wait for a child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// What `pipe` brings, as it comes, and the thread that reads it to its end.
fn read_all(
    pipe: Option<impl Read + Send + 'static>,
) -> (Arc<Mutex<Vec<u8>>>, thread::JoinHandle<()>) {
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&bytes);
    let reader = thread::spawn(move || {
        let Some(mut pipe) = pipe else { return };
        let mut buf = [0; 8192];
        while let Ok(read @ 1..) = pipe.read(&mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..read]);
        }
    });
    (bytes, reader)
}
