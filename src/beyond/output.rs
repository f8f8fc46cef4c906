//! What the server prints on stdout, as the Python prints: a line per
//! purchase and the winners at the end, written by a thread of their own so
//! that no request waits for a terminal or a pipe. (Diagnostics go to
//! stderr through `tracing`: `logs`.)

use std::fmt::Display;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, LazyLock};
use std::thread;
use std::time::{Duration, Instant};

/// Lines that may wait for stdout or stderr; a log line beyond is dropped.
pub const LINES_WAITING: usize = 10_000;

/// How long the writer rests after each batch of lines, so that the lines
/// of a crowd come in batches, not one wake-up each.
const WRITER_REST: Duration = Duration::from_millis(2);

/// How long the report at the end may wait for stdout to take it.
pub const OUTPUT_WAIT: Duration = Duration::from_secs(5);

/// Prints a line on stdout (the Python's `print`), unless `LINES_WAITING` lines wait already: then
/// it is dropped, and counted.
pub fn print(line: String) {
    STDOUT.line(line, None);
}

/// Prints a line of the report or the audit: it waits for room rather than
/// being dropped, up to `OUTPUT_WAIT` after `since`.
pub fn print_report(line: impl Display, since: Instant) {
    STDOUT.line(line.to_string(), Some(since + OUTPUT_WAIT));
}

/// Waits, at most `wait`, until every line has been written.
pub fn finish(wait: Duration) {
    let deadline = Instant::now() + wait;
    STDOUT.written_by(deadline);
}

/// A wait as the server's words say it: "1 s", "400 ms".
pub fn span(wait: Duration) -> String {
    if wait.subsec_millis() == 0 {
        format!("{} s", wait.as_secs())
    } else {
        format!("{} ms", wait.as_millis())
    }
}

static STDOUT: LazyLock<Output> = LazyLock::new(|| Output::start(io::stdout()));

/// Lines for stdout or stderr, written by a thread of their own. A request
/// never waits for a terminal or a pipe that is not read (`seckill | less`,
/// or Ctrl-S): writing under the stdout lock, every purchase hung until it
/// was. A closed one (`seckill | head -1`) loses the lines, never an answer.
struct Output {
    queue: SyncSender<String>,
    sent: AtomicU64,
    written: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

impl Output {
    fn start(out: impl Write + Send + 'static) -> Output {
        let (queue, lines) = mpsc::sync_channel::<String>(LINES_WAITING);
        let written = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (count, lost) = (Arc::clone(&written), Arc::clone(&dropped));
        let writer = move || {
            let (mut out, mut told) = (BufWriter::new(out), 0);
            // Writes what waits, then flushes: one write for many lines.
            while let Ok(first) = lines.recv() {
                let mut batch = 0;
                for line in std::iter::once(first).chain(lines.try_iter()) {
                    let _ = writeln!(out, "{line}");
                    batch += 1;
                }
                let lost = lost.load(Ordering::SeqCst);
                if lost > told {
                    let _ = writeln!(
                        out,
                        "seckill: {} lines dropped: nothing read them in time",
                        lost - told
                    );
                    told = lost;
                }
                let _ = out.flush();
                count.fetch_add(batch, Ordering::SeqCst);
                // Lines queued while the writer rests wake no thread: a line
                // per purchase woke it, and switched threads, for each one.
                thread::sleep(WRITER_REST);
            }
        };
        let _ = thread::Builder::new().name("output".into()).spawn(writer);
        let sent = AtomicU64::new(0);
        Output {
            queue,
            sent,
            written,
            dropped,
        }
    }

    /// Queues `line`: at once, or waiting for room until `deadline`.
    fn line(&self, mut line: String, deadline: Option<Instant>) {
        loop {
            match self.queue.try_send(line) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if deadline.is_some_and(|at| Instant::now() < at) => {
                    line = back;
                    thread::sleep(Duration::from_millis(1));
                }
                Err(_) => {
                    self.dropped.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
        }
        self.sent.fetch_add(1, Ordering::SeqCst);
    }

    fn written_by(&self, deadline: Instant) {
        while self.written.load(Ordering::SeqCst) < self.sent.load(Ordering::SeqCst)
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(1));
        }
    }
}
