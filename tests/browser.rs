//! The page in a real headless Chromium: tests/browser/page.mjs drives it
//! through playwright-core against a seckill and a Redis of this test's own.
//! scripts/test.sh installs Chromium, Node.js and playwright-core.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Redis, Seckill};

const INSTALL: &str = "run scripts/test.sh, which installs them, or by hand: \
    `apt-get install chromium nodejs npm` and `npm ci --prefix tests/browser`";

#[test]
fn the_page_shows_the_sale_live_in_a_real_browser() {
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

    let redis = Redis::start();
    let server = Seckill::start(
        &redis,
        &[
            "--strategy",
            "watch",
            "--stock",
            "1000",
            "--suffix-max",
            "0",
        ],
    );
    let mut node = Command::new("node")
        .arg(here.join("tests/browser/page.mjs"))
        .arg(format!("http://{}", server.addr))
        .arg(redis.pid().to_string())
        .arg(server.pid().to_string())
        .arg(&shots)
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run node: {err}; {INSTALL}"));
    // page.mjs stops itself after 120 s; this is the last resort.
    let deadline = Instant::now() + Duration::from_secs(150);
    let status = loop {
        if let Some(status) = node.try_wait().expect("cannot wait for node") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = node.kill();
            panic!("the browser test did not finish in 150 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "the browser test failed (its output is above); server said:\n{}{}",
        server.stdout(),
        server.stderr()
    );
    assert!(shots.join("seckill-mid-sale.png").is_file());
}
