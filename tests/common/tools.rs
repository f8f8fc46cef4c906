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
