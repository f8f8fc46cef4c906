//! No password is ever printed: each way a `--redis` or `--orders` URL
//! can fail, at start and in `--audit`, and what a running server shows.

mod common;

use common::postgres::Postgres;
use common::redis_server::free_port;
use common::{Redis, Seckill, buy, get};

const PASSWORD: &str = "pw-n0t-to-be-seen";

/// Runs seckill with `flags` to its end; everything it printed.
fn said(redis: &Redis, flags: &[&str]) -> String {
    let (out, _) = Seckill::run_to_end(redis, flags);
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn no_failure_of_a_url_prints_its_password() {
    let redis = Redis::start();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(PASSWORD)
        .query(&mut redis.con())
        .unwrap();
    let postgres = Postgres::start();
    let closed = free_port();
    let (port, pg) = (redis.port, postgres.port);
    let good_redis = format!("redis://:{PASSWORD}@127.0.0.1:{port}/0");
    let redis_urls = [
        format!("redis://:{PASSWORD}@127.0.0.1:notaport/0"),
        format!("redis://:{PASSWORD}-wrong@127.0.0.1:{port}/0"),
        format!("redis://:{PASSWORD}@127.0.0.1:{closed}/0"),
        format!("redis+unix://:{PASSWORD}@/nonexistent.sock"),
    ];
    let orders_urls = [
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:notaport/postgres"),
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:{pg}/no_such_database"),
        format!("postgres://nobody_here:{PASSWORD}@127.0.0.1:{pg}/postgres"),
        format!("postgresql://postgres:{PASSWORD}@[::1:{pg}/postgres"),
    ];
    let mut tried = 0;
    for url in &redis_urls {
        for extra in [&[][..], &["--audit"]] {
            let out = said(
                &redis,
                &[&["--redis", url.as_str(), "--orders", "off"], extra].concat(),
            );
            assert!(!out.contains(PASSWORD), "--redis {url} {extra:?}:\n{out}");
            tried += 1;
        }
    }
    for url in &orders_urls {
        for extra in [&[][..], &["--audit"]] {
            let flags = [
                &["--redis", good_redis.as_str(), "--orders", url.as_str()],
                extra,
            ]
            .concat();
            let out = said(&redis, &flags);
            assert!(!out.contains(PASSWORD), "--orders {url} {extra:?}:\n{out}");
            tried += 1;
        }
    }
    // A database that does not answer is an outage: the server starts and
    // sells, and says so.
    let down = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{closed}/postgres");
    let audit = said(
        &redis,
        &["--redis", &good_redis, "--orders", &down, "--audit"],
    );
    assert!(
        !audit.contains(PASSWORD),
        "--audit --orders {down}:\n{audit}"
    );
    let server = Seckill::start(&redis, &["--redis", &good_redis, "--orders", &down]);
    assert_eq!(buy(server.addr, "bob").status, 200);
    let err = server.wait_for_stderr("orders wait in the stream");
    assert!(!err.contains(PASSWORD), "{err}");
    let (_, out) = server.stop();
    assert!(!out.contains(PASSWORD), "{out}");
    assert_eq!(tried, 16);

    // A server that runs, with a password in both URLs: not in its output,
    // its stats, its page, nor its report.
    let orders = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{pg}/postgres");
    let server = Seckill::start(&redis, &["--redis", &good_redis, "--orders", &orders]);
    assert_eq!(buy(server.addr, "ann").status, 200);
    for path in ["/seckill/stats", "/seckill", "/readyz"] {
        let text = get(server.addr, path).text();
        assert!(!text.contains(PASSWORD), "{path}: {text}");
    }
    let err = server.stderr();
    assert!(!err.contains(PASSWORD), "{err}");
    let (_, out) = server.stop();
    assert!(!out.contains(PASSWORD), "{out}");
}
