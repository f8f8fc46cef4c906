//! The page in a real headless Chromium: tests/browser/page.mjs drives it
//! through playwright-core against a seckill and a Redis of this test's own.
//! scripts/test.sh installs Chromium, Node.js and playwright-core.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Redis, Seckill};
use redis::Commands;

const INSTALL: &str = "run scripts/test.sh, which installs them, or by hand: \
    `apt-get install chromium nodejs npm` and `npm ci --prefix tests/browser`";

/// One browser test at a time: each takes the two cores, and page.mjs
/// times what it sees.
static ONE_BROWSER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Chromium and playwright-core are in place; the directory for screenshots.
fn browser_ready() -> (String, std::path::PathBuf) {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    assert!(
        Path::new(&chromium).exists(),
        "the browser test needs Chromium at {chromium}: {INSTALL}"
    );
    assert!(
        here.join("tests/browser/node_modules/playwright-core")
            .is_dir(),
        "the browser test needs playwright-core in tests/browser/node_modules: {INSTALL}"
    );
    let shots = here.join("target/browser");
    std::fs::create_dir_all(&shots).expect("cannot make target/browser");
    (chromium, shots)
}

/// Runs `tests/browser/SCRIPT` with node and `args`, and fails with the
/// server's output if it fails or runs past 150 s (it stops itself at 120).
fn run_node(script: &str, args: &[String], chromium: &str, server: &Seckill) {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut node = Command::new("node")
        .arg(here.join("tests/browser").join(script))
        .args(args)
        .env("CHROMIUM", chromium)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run node: {err}; {INSTALL}"));
    let deadline = Instant::now() + Duration::from_secs(150);
    let status = loop {
        if let Some(status) = node.try_wait().expect("cannot wait for node") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = node.kill();
            panic!("{script} did not finish in 150 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "{script} failed (its output is above); server said:\n{}{}",
        server.stdout(),
        server.stderr()
    );
}

#[test]
fn the_page_shows_the_sale_live_in_a_real_browser() {
    let _alone = ONE_BROWSER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let (chromium, shots) = browser_ready();
    let redis = Redis::start();
    let flags = [
        "--strategy",
        "watch",
        "--stock",
        "1000",
        "--suffix-max",
        "0",
    ];
    let server = Seckill::start(&redis, &flags);
    let args = [
        format!("http://{}", server.addr),
        redis.pid().to_string(),
        server.pid().to_string(),
        shots.display().to_string(),
    ];
    run_node("page.mjs", &args, &chromium, &server);
    assert!(shots.join("seckill-mid-sale.png").is_file());
}

/// Pages of a class waiting for the opening: how many.
const CLASS: usize = 30;

#[test]
fn a_class_of_pages_sees_the_countdown_and_buys_at_the_opening() {
    let _alone = ONE_BROWSER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let (chromium, shots) = browser_ready();
    let redis = Redis::start();
    // Long enough for 30 pages to open on busy cores before the opening
    // (about 16 s on two quiet ones).
    let flags = ["--strategy", "lua", "--suffix-max", "0", "--opens-in", "40"];
    let server = Seckill::start(&redis, &flags);
    let args = [
        format!("http://{}", server.addr),
        CLASS.to_string(),
        shots.display().to_string(),
    ];
    run_node("opening.mjs", &args, &chromium, &server);
    let winners: usize = redis.con().scard("user:id").unwrap();
    assert_eq!(
        winners,
        CLASS + 1,
        "the placeholder and each page's student"
    );
    assert!(shots.join("seckill-countdown.png").is_file());
}
