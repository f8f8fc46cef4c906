//! The load tools people run against the server: ab and wrk.

use std::process::Command;
use std::time::Duration;

use super::process::output_within;

/// How long a load may take: ab's own timeout is 30 s a request.
const LOAD_ENDS_WITHIN: Duration = Duration::from_secs(180);

/// Runs `program` (from the Debian `package`) with `args`; its report.
pub fn run(program: &str, args: &[&str], package: &str) -> String {
    let out =
        output_within(Command::new(program).args(args), LOAD_ENDS_WITHIN).unwrap_or_else(|err| {
            panic!("cannot run {program} ({err}): install it with `apt-get install {package}`")
        });
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program}: {text}");
    text
}

/// Runs ab with `args`; its report.
pub fn ab(args: &[&str]) -> String {
    run("ab", args, "apache2-utils")
}

/// As `assert_ab_clean`; a failure also shows what `server` counted of the
/// answers that were not 2xx (503 `busy`, `redis`, ... and other errors)
/// and what it logged, so that it names the status and cause it saw.
pub fn assert_ab_clean_at(report: &str, complete: usize, server: &super::Seckill) {
    let outcome = std::panic::catch_unwind(|| assert_ab_clean(report, complete));
    if outcome.is_err() {
        let stats = super::get(server.addr, "/seckill/stats").json();
        let counted: Vec<String> = ["busy", "errors", "maybe_sold", "unreplicated"]
            .iter()
            .map(|name| format!("{name} {}", stats[*name]))
            .collect();
        panic!(
            "ab's answers were not all 2xx; the server counted 503s and errors as: {}\n\
             (a 503 `busy` the server did not count came from its connection limits)\n\
             stderr:\n{}",
            counted.join(", "),
            server.stderr()
        );
    }
}

/// ab's report shows `complete` requests with no failed connection, no
/// receive error, no exception and no answer but 2xx. (Its "Length"
/// failures are answers of another length: the ids differ.)
pub fn assert_ab_clean(report: &str, complete: usize) {
    assert!(
        report.contains(&format!("Complete requests:      {complete}\n")),
        "{report}"
    );
    for failure in ["(Connect: ", "Receive: ", "Exceptions: "] {
        let count = report
            .split_once(failure)
            .map(|(_, rest)| rest.split([',', ')']).next().unwrap());
        assert!(
            matches!(count, None | Some("0")),
            "{failure}{count:?}\n{report}"
        );
    }
    assert!(!report.contains("Non-2xx"), "{report}");
}
