//! The page in a real headless Chromium: tests/browser/page.mjs drives it
//! through playwright-core against a seckill and a Redis of this test's own.
//! scripts/test.sh installs Chromium, Node.js and playwright-core.

mod common;

use std::path::{Path, PathBuf};
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
fn browser_ready() -> (String, PathBuf) {
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

/// Removes the screenshots a test is about to take, so that files of an
/// earlier run cannot stand in for them.
fn remove_old(shots: &Path, names: &[&str]) {
    for name in names {
        let _ = std::fs::remove_file(shots.join(name));
    }
}

/// A screenshot the test took: a PNG `width` px wide and at least 700 tall,
/// holding a page's worth of detail (a blank page of that size is a few KB).
fn assert_screenshot(shots: &Path, name: &str, width: u32) {
    let path = shots.join(name);
    let png = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is not a PNG");
    // The IHDR chunk comes first: its width and height, big-endian.
    let dimension = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    let (shown_width, height) = (dimension(16), dimension(20));
    assert_eq!(shown_width, width, "{name}: {shown_width} x {height}");
    assert!(height >= 700, "{name}: {shown_width} x {height}");
    assert!(png.len() > 40_000, "{name}: only {} bytes", png.len());
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
    let taken = [
        ("seckill-mid-sale.png", 1000),
        ("seckill-phone.png", 360),
        ("seckill-redis-down.png", 1000),
    ];
    remove_old(&shots, &taken.map(|(name, _)| name));
    run_node("page.mjs", &args, &chromium, &server);
    for (name, width) in taken {
        assert_screenshot(&shots, name, width);
    }
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
    // Far off: the pages take their time to open (about 16 s on two quiet
    // cores, more on busy ones); once they are all up, the opening is moved
    // to 5 s from then, in Redis, as a teacher may.
    let flags = [
        "--strategy",
        "lua",
        "--suffix-max",
        "0",
        "--opens-in",
        "3600",
    ];
    let server = Seckill::start(&redis, &flags);
    let ready = shots.join("opening.ready");
    let _ = std::fs::remove_file(&ready);
    let args = [
        format!("http://{}", server.addr),
        CLASS.to_string(),
        shots.display().to_string(),
        ready.display().to_string(),
    ];
    let taken = ["seckill-countdown.png", "seckill-opened.png"];
    remove_old(&shots, &taken);
    let url = redis.url();
    let mover = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(140);
        while !ready.exists() {
            if Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        let (seconds, micros): (i64, i64) = redis::cmd("TIME").query(&mut con).unwrap();
        let opens = seconds * 1000 + micros / 1000 + 5000;
        let _: () = con.set("commodity:opens", opens).unwrap();
    });
    run_node("opening.mjs", &args, &chromium, &server);
    mover.join().unwrap();
    let winners: usize = redis.con().scard("user:id").unwrap();
    assert_eq!(
        winners,
        CLASS + 1,
        "the placeholder and each page's student"
    );
    for name in taken {
        assert_screenshot(&shots, name, 1000);
    }
}
