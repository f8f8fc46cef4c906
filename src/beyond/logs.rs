//! The server's diagnostics on stderr (outages, refusals, the order
//! writer, the start), through `tracing`, as Rust servers log: levels,
//! `RUST_LOG` to choose them (`info` by default; `RUST_LOG=debug` adds the
//! writer's batches), and a writer thread of their own, so no request waits
//! for a terminal or a pipe that is not read: lines beyond `LINES_WAITING`
//! are dropped. Each line reads `seckill: what happened (14:02:11.371 UTC)`,
//! so a class can time an outage from the log.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Event, Level, Subscriber};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::output::LINES_WAITING;

/// Starts the diagnostics on stderr; they are written until the guard is
/// dropped, which flushes what waits (a second at most).
pub fn start() -> WorkerGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LINES_WAITING)
        .thread_name("logs")
        .finish(std::io::stderr());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .event_format(Line)
        .finish();
    // Only the first start counts: tests of the library start none.
    let _ = tracing::subscriber::set_global_default(subscriber);
    guard
}

/// `seckill: MESSAGE (TIME UTC)`, the level said when it is not INFO or WARN.
struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "seckill: ")?;
        let level = *event.metadata().level();
        if level != Level::INFO && level != Level::WARN {
            write!(writer, "{level} ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer, " ({})", time_of_day())
    }
}

/// The time of day, as `07:40:02.371 UTC`.
fn time_of_day() -> String {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ms = since_epoch.as_millis() % (24 * 3600 * 1000);
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
    format!("{h:02}:{m:02}:{s:02}.{:03} UTC", ms % 1000)
}
