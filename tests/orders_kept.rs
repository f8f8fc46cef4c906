//! Every order kept, every word true: what a hostile trial of the orders
//! found, each tried on real processes. A database file deleted under the
//! server, databases that vanish with the process, one sale's orders split
//! between databases, an audit that cried wolf during a live sale, a sale
//! too big to report, a frozen PostgreSQL, and wrong words.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::orders::{audit_with, ordered_in, winners};
use common::postgres::Postgres;
use common::process::{output_within, seckill};
use common::tools::ab;
use common::{FORM, Redis, Seckill, buy, get, wait_for_within};
use redis::Commands;

fn sqlite(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

/// The orders the server says it has written, once it has counted `n`.
fn wait_for_written(server: &Seckill, n: u64) {
    wait_for_within(
        &format!("the server to count {n} orders"),
        Duration::from_secs(15),
        || get(server.addr, "/seckill/stats").json()["orders_written"] == n,
    );
}

/// The database file removed (with its -wal and -shm) while the server
/// runs: the next orders go to a new file at the path, with its table, and
/// what the server says it wrote is what that file holds.
#[test]
fn a_database_file_removed_while_the_server_runs_gets_the_next_orders() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.sqlite");
    let flags = [
        "--stock",
        "10",
        "--suffix-max",
        "0",
        "--orders",
        &sqlite(&path),
    ];
    let server = Seckill::start(&redis, &flags);
    for id in ["a1", "a2", "a3"] {
        assert_eq!(buy(server.addr, id).code(), 1);
    }
    wait_for_written(&server, 3);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    for id in ["b1", "b2", "b3"] {
        assert_eq!(buy(server.addr, id).code(), 1);
    }
    wait_for_within(
        "the new orders in the file at the path",
        Duration::from_secs(15),
        || ordered_in(&path).len() == 3,
    );
    let ordered: HashSet<String> = ordered_in(&path).into_iter().collect();
    assert_eq!(ordered, ["b1", "b2", "b3"].map(String::from).into());
    wait_for_written(&server, 3);
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    assert!(
        out.contains("orders:        3 written for 6 winners"),
        "{out}"
    );
    // The audit tells the truth of it: three winners' orders went with the file.
    let (code, said) = audit_with(&redis, &[]);
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("3 winners without an order"), "{said}");
}

/// A database that vanishes with the process, or cannot be written, is
/// refused at start with words that say so, and the sale is not touched.
#[test]
fn databases_that_vanish_or_cannot_be_written_are_refused_at_start() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing/o.sqlite");
    let cases = [
        ("sqlite::memory:".to_string(), "gone when seckill stops"),
        ("sqlite:".to_string(), "no path given"),
        (
            "sqlite:file:o.sqlite?mode=memory".to_string(),
            "gone when seckill stops",
        ),
        (sqlite(dir.path()), "that is a folder"),
        (sqlite(&missing), "mkdir -p"),
        (
            "sqlite:/proc/seckill-orders.sqlite".to_string(),
            "cannot write there",
        ),
    ];
    for (orders, says) in cases {
        let (out, took) = Seckill::run_to_end(&redis, &["--orders", &orders]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{orders}: {err}");
        assert!(err.contains(says), "{orders}: {err}");
        assert!(took < Duration::from_secs(10), "{orders}: after {took:?}");
        let stock: Option<i64> = redis.con().get("commodity:num").unwrap();
        assert_eq!(stock, None, "{orders}: a sale was started");
    }
}

/// One sale, one database: a server that joins with another `--orders` is
/// refused with both named; one that joins without `--orders`, even from
/// another folder, writes where the sale's first server does; a plain
/// `--audit` reads the sale's database.
#[test]
fn servers_of_one_sale_write_to_the_database_the_sale_names() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.sqlite"), dir.path().join("b.sqlite"));
    let first = Seckill::start(&redis, &["--suffix-max", "0", "--orders", &sqlite(&a)]);
    for other in [sqlite(&b), "off".to_string()] {
        let (out, _) = Seckill::run_to_end(&redis, &["--join", "--orders", &other]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{other}: {err}");
        assert!(
            err.contains(&sqlite(&a)) && err.contains("one sale's orders go to one database"),
            "{err}"
        );
    }
    // From another folder, without --orders: the sale's file, by its full path.
    let elsewhere = tempfile::tempdir().unwrap();
    let joined = Seckill::start_with(&redis, &["--join", "--suffix-max", "0"], |command| {
        command.current_dir(elsewhere.path());
    });
    for n in 0..15 {
        assert_eq!(buy(first.addr, &format!("a{n}")).code(), 1);
        assert_eq!(buy(joined.addr, &format!("b{n}")).code(), 1);
    }
    wait_for_within("30 orders in a.sqlite", Duration::from_secs(15), || {
        ordered_in(&a).len() == 30
    });
    assert!(!b.exists());
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    let (code, said) = audit_with(&redis, &[]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("30 written for 30 winners"), "{said}");
    assert!(
        said.contains(&format!("(database: {})", sqlite(&a))),
        "{said}"
    );
}

/// 15 audits during a live sale: none cries MISMATCH (orders written while
/// it reads are not orphans); an order whose winner is not in Redis is.
#[test]
fn the_audit_of_a_live_sale_cries_no_wolf_and_finds_a_real_orphan() {
    let redis = Redis::start();
    let flags = ["--strategy", "lua", "--stock", "1000000", "--quiet"];
    let server = Seckill::start(&redis, &flags);
    let url = format!("http://{}/seckill", server.addr);
    let load = thread::spawn(move || {
        let postfile = concat!(env!("CARGO_MANIFEST_DIR"), "/postfile");
        ab(&["-n", "40000", "-c", "4", "-p", postfile, "-T", FORM, &url])
    });
    wait_for_within("the first sales", Duration::from_secs(10), || {
        winners(&redis).len() > 100
    });
    for n in 0..15 {
        let (code, said) = audit_with(&redis, &[]);
        assert_eq!(code, 0, "audit {n} during the sale:\n{said}");
        assert!(!said.contains("MISMATCH"), "audit {n}:\n{said}");
    }
    let during = winners(&redis).len();
    load.join().unwrap();
    assert!(during > 100, "the sale went on through the audits");
    // An order of a buyer no sale made, with an entry from before the audit.
    let db = rusqlite::Connection::open(common::orders::database(&redis)).unwrap();
    let sale: String = redis.con().get("commodity:sale").unwrap();
    db.execute(
        "INSERT INTO seckill_orders VALUES (?1, 'ghost', 0, 'nobody', '1000-0')",
        [&sale],
    )
    .unwrap();
    let (code, said) = audit_with(&redis, &[]);
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("1 orders without a winner (ghost)"), "{said}");
}

/// A sale of 1.5 million winners: the stop prints every one and the
/// verdict, and the audit agrees (each read in pages: one SMEMBERS reply
/// took longer than a reply may).
#[test]
fn a_sale_of_a_million_and_a_half_is_reported_and_audited() {
    const WINNERS: usize = 1_500_000;
    let redis = Redis::start();
    let mut server = Seckill::start(&redis, &["--stock", "2000000", "--quiet"]);
    let sale: String = redis.con().get("commodity:sale").unwrap();
    // The winners made in Redis, the orders in the database, as a sale would.
    let fill = "for i = 1, tonumber(ARGV[1]) do redis.call('SADD', KEYS[1], 'w' .. i) end \
                redis.call('DECRBY', KEYS[2], ARGV[1])";
    let _: () = redis::cmd("EVAL")
        .arg(fill)
        .arg(2)
        .arg("user:id")
        .arg("commodity:num")
        .arg(WINNERS)
        .query(&mut redis.con())
        .unwrap();
    let mut db = rusqlite::Connection::open(common::orders::database(&redis)).unwrap();
    let tx = db.transaction().unwrap();
    {
        let mut insert = tx
            .prepare("INSERT INTO seckill_orders VALUES (?1, ?2, 0, 'test', '1000-0')")
            .unwrap();
        for i in 1..=WINNERS {
            insert.execute((&sale, format!("w{i}"))).unwrap();
        }
    }
    tx.commit().unwrap();
    // A debug build reads and checks 1.5 million winners in 20 to 40 s on
    // two cores (the stop, and the audit), a release build in a few.
    server.terminate();
    let status = server.wait(Duration::from_secs(120));
    let out = server.stdout();
    assert!(
        status.success(),
        "{}",
        &out[out.len().saturating_sub(2000)..]
    );
    let report = out
        .split_once("Winners (1500000):\n")
        .expect("the winners' line")
        .1;
    let names: Vec<&str> = report.lines().take(WINNERS).collect();
    assert_eq!(names.len(), WINNERS);
    assert_eq!(
        names.iter().collect::<HashSet<_>>().len(),
        WINNERS,
        "each once"
    );
    let rest: String = report.lines().skip(WINNERS).collect::<Vec<_>>().join("\n");
    assert!(rest.contains("winners:       1500000"), "{rest}");
    assert!(
        rest.contains("verdict:       LEFTOVER: 500000 unsold"),
        "{rest}"
    );
    assert!(
        rest.contains("orders:        1500000 written for 1500000 winners"),
        "{rest}"
    );
    let mut audit = seckill();
    audit.args(["--audit", "--redis", &redis.url()]);
    let out = output_within(&mut audit, Duration::from_secs(120)).unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("1500000 written for 1500000 winners"),
        "{said}"
    );
}

/// PostgreSQL frozen whole (SIGSTOP: its kernel still takes connections
/// and data) with an order waiting: the stats answer at once, buyers are
/// served even at a small --max-connections, the log says the database
/// does not answer, and once it thaws the order is written.
#[test]
fn a_frozen_postgresql_holds_no_request_and_is_told() {
    let redis = Redis::start();
    let postgres = Postgres::start();
    let url = postgres.url();
    let flags = [
        "--suffix-max",
        "0",
        "--orders",
        &url,
        "--max-connections",
        "20",
    ];
    let server = Seckill::start(&redis, &flags);
    assert_eq!(buy(server.addr, "ann").code(), 1);
    wait_for_written(&server, 1);
    postgres.freeze();
    assert_eq!(buy(server.addr, "bob").code(), 1);
    let asking: Vec<_> = (0..20)
        .map(|_| {
            let addr = server.addr;
            thread::spawn(move || {
                let started = Instant::now();
                let status = get(addr, "/seckill/stats").status;
                (status, started.elapsed())
            })
        })
        .collect();
    for asked in asking {
        let (status, took) = asked.join().unwrap();
        assert_eq!(status, 200);
        assert!(
            took < Duration::from_secs(2),
            "/seckill/stats took {took:?}"
        );
    }
    for id in ["cat", "dan"] {
        assert_eq!(
            buy(server.addr, id).code(),
            1,
            "served while the database is frozen"
        );
    }
    let log = server.wait_for_stderr("has not answered for 5 s");
    assert!(log.contains("is it frozen"), "{log}");
    let stats = get(server.addr, "/seckill/stats").json();
    assert!(
        stats["orders_counted_ms_ago"].as_u64().unwrap() >= 5000,
        "{stats}"
    );
    postgres.thaw();
    server.wait_for_stderr("answers again");
    wait_for_written(&server, 4);
}

/// The database's own words for a right it lacks, and what to grant;
/// never a password.
#[test]
fn a_postgresql_role_without_create_is_told_what_to_grant() {
    let redis = Redis::start();
    let postgres = Postgres::start();
    postgres.execute("CREATE ROLE shopper LOGIN PASSWORD 'pa55word'");
    postgres.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    let url = format!(
        "postgres://shopper:pa55word@127.0.0.1:{}/postgres",
        postgres.port
    );
    let (out, _) = Seckill::run_to_end(&redis, &["--orders", &url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("permission denied for schema public"), "{err}");
    assert!(
        err.contains("GRANT CREATE ON SCHEMA public TO shopper"),
        "{err}"
    );
    assert!(!err.contains("pa55word"), "{err}");
}

/// A table dropped by hand while the server runs comes back with the next
/// orders.
#[test]
fn a_dropped_table_comes_back() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--suffix-max", "0"]);
    assert_eq!(buy(server.addr, "ann").code(), 1);
    wait_for_written(&server, 1);
    let db = rusqlite::Connection::open(common::orders::database(&redis)).unwrap();
    db.execute("DROP TABLE seckill_orders", []).unwrap();
    assert_eq!(buy(server.addr, "bob").code(), 1);
    let path = common::orders::database(&redis);
    wait_for_within(
        "bob's order in a new table",
        Duration::from_secs(15),
        || ordered_in(&path) == ["bob"],
    );
}

/// A value in `commodity:opens` that is not a time: `--join` says what
/// it holds and what to do, not that Redis cannot be reached.
#[test]
fn an_opening_that_is_not_a_time_is_named_at_join() {
    let redis = Redis::start();
    let _first = Seckill::start(&redis, &["--orders", "off"]);
    let _: () = redis.con().set("commodity:opens", "soon").unwrap();
    let (out, _) = Seckill::run_to_end(&redis, &["--join"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("commodity:opens holds \"soon\""), "{err}");
    assert!(!err.contains("cannot reach Redis"), "{err}");
}

/// The Lua script and the Rust XADD write the same fields, in the same
/// order (`orders::stream::FIELDS`).
#[test]
fn lua_and_the_transaction_write_the_same_order() {
    let redis = Redis::start();
    let lua = Seckill::start(&redis, &["--strategy", "lua", "--suffix-max", "0"]);
    let watch = Seckill::start(
        &redis,
        &["--join", "--strategy", "watch", "--suffix-max", "0"],
    );
    // The database held, so the entries stay in the stream to be read.
    let holder = rusqlite::Connection::open(common::orders::database(&redis)).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    assert_eq!(buy(lua.addr, "by-lua").code(), 1);
    assert_eq!(buy(watch.addr, "by-watch").code(), 1);
    // Each entry's fields in the order written: [field, value, field, value, ...].
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg("seckill:orders")
        .arg("-")
        .arg("+")
        .query(&mut redis.con())
        .unwrap();
    holder.execute_batch("ROLLBACK").unwrap();
    let fields = |user: &str| -> Vec<String> {
        let (_, entry) = entries
            .iter()
            .find(|(_, fields)| fields.get(1).map(String::as_str) == Some(user))
            .unwrap_or_else(|| panic!("no entry of {user} in {entries:?}"));
        entry.iter().step_by(2).cloned().collect()
    };
    let expected = ["user", "sale", "left", "seller"];
    assert_eq!(fields("by-lua"), expected);
    assert_eq!(fields("by-watch"), expected);
}
