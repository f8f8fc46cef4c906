//! A failover on real processes: a master, two replicas and three sentinels
//! on loopback, seckill following them with `--sentinel`, a crowd of buyers,
//! and `kill -9` of the master in the middle of the sale.
//!
//! Replication is asynchronous, so a sale the master answered a moment
//! before it died can be missing on the replica that takes its place. To
//! make that moment certain, the master drops its replicas' links (CLIENT
//! KILL TYPE replica) while they are frozen (SIGSTOP), and sells alone
//! until it is killed; then the replicas go on. With `--replicas 1` no buyer is told 1 for such a sale;
//! without, some are, and the sale is lost. Two replicas, so that after the
//! failover the new master still has one to confirm sales.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::health::sale_in;
use common::process::seckill_output;
use common::sentinel::Topology;
use common::{Seckill, buy, get, try_buy, wait_for, wait_for_within};
use redis::Commands;

/// The failovers take the machine: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const BUYERS: usize = 200;
/// The crowd buys until this many sales were made after the kill (or for
/// `LOAD_AT_MOST`, whatever the machine's speed), so a slow build or busy
/// cores cannot end the load before the failover does.
const SOLD_AFTER_THE_KILL: usize = 200;
const LOAD_AT_MOST: Duration = Duration::from_secs(90);
/// A purchase answered 1, among the answers after the kill.
const BOUGHT: &str = "1";
/// How many sales the master makes before its replica links are cut.
const SOLD_BEFORE_THE_CUT: usize = 500;
/// How many it then makes alone before it is killed: the replicas stay
/// frozen meanwhile, and must be thawed well within the sentinels'
/// down-after (1 s), or none could be promoted.
const SOLD_ALONE: usize = 20;
const ALONE_AT_MOST: Duration = Duration::from_millis(700);

/// One purchase as a buyer saw it.
struct Attempt {
    id: String,
    started: Instant,
    ended: Instant,
    /// The status and, for a 200, the response_num.
    answer: Option<(u16, i64)>,
    /// For an error, its cause.
    cause: Option<String>,
}

/// What a sale through a failover came to.
struct Failover {
    attempts: Vec<Attempt>,
    killed: Instant,
    /// The winners, remaining and initial stock on the new master.
    winners: HashSet<String>,
    remaining: i64,
    initial: i64,
    /// The buyers with an order in the database once the stream drained.
    orders: HashSet<String>,
}

impl Failover {
    fn told_bought(&self) -> HashSet<String> {
        let bought = self
            .attempts
            .iter()
            .filter(|a| matches!(a.answer, Some((200, 1))));
        bought.map(|a| a.id.clone()).collect()
    }

    /// Seconds from the kill to the end of the first sale begun after it.
    fn recovered_after(&self) -> Option<f64> {
        let after = self.attempts.iter().filter(|a| a.started > self.killed);
        let sold = after.filter(|a| matches!(a.answer, Some((200, 1))));
        sold.map(|a| (a.ended - self.killed).as_secs_f64())
            .reduce(f64::min)
    }

    /// How many answers had the error `cause`.
    fn count_cause(&self, cause: &str) -> usize {
        let causes = self.attempts.iter().filter_map(|a| a.cause.as_deref());
        causes.filter(|c| *c == cause).count()
    }

    /// How many errors each cause had, as `cause: count, ...`.
    fn causes(&self) -> String {
        let mut counts = std::collections::BTreeMap::new();
        for cause in self.attempts.iter().filter_map(|a| a.cause.as_deref()) {
            *counts.entry(cause).or_insert(0) += 1;
        }
        let unanswered = self.attempts.iter().filter(|a| a.answer.is_none()).count();
        let counts = counts.iter().map(|(cause, n)| format!("{cause} {n}"));
        let counts: Vec<_> = counts.chain([format!("unanswered {unanswered}")]).collect();
        counts.join(", ")
    }
}

/// Sets its flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Sells through a failover with seckill's `flags`.
fn sell_through_a_failover(flags: &[&str]) -> Failover {
    let mut topology = Topology::start();
    let sentinels = topology.sentinel_flag();
    let mut all = vec!["--quiet", "--strategy", "lua", "--stock", "1000000"];
    all.extend_from_slice(&["--suffix-max", "0", "--sentinel", &sentinels]);
    all.extend_from_slice(flags);
    let server = Seckill::start(&topology.master, &all);
    let addr = server.addr;
    let began = Instant::now();
    let attempts = Mutex::new(Vec::new());
    let killed_at = OnceLock::new();
    // The answers to purchases begun after the kill, by what they were.
    let after_the_kill = Mutex::new(BTreeMap::<String, usize>::new());
    let stop = AtomicBool::new(false);
    let killed = thread::scope(|scope| {
        // The buyers stop however this closure ends, a failed wait included.
        let _stop = StopOnDrop(&stop);
        for buyer in 0..BUYERS {
            let (attempts, killed_at, stop) = (&attempts, &killed_at, &stop);
            let after_the_kill = &after_the_kill;
            scope.spawn(move || {
                let mut mine = Vec::new();
                for n in 0.. {
                    let started = Instant::now();
                    if stop.load(Ordering::Relaxed) || started - began > LOAD_AT_MOST {
                        break;
                    }
                    let id = format!("b{buyer}-{n}");
                    let reply = try_buy(addr, &id).ok();
                    let code = |r: &common::Reply| if r.status == 200 { r.code() } else { 0 };
                    let answer = reply.as_ref().map(|r| (r.status, code(r)));
                    let cause = reply.filter(|r| r.status != 200);
                    let cause = cause.and_then(|r| r.json()["cause"].as_str().map(String::from));
                    let ended = Instant::now();
                    if killed_at.get().is_some_and(|k| started > *k) {
                        let what = match (answer, &cause) {
                            (Some((200, 1)), _) => BOUGHT.to_string(),
                            (_, Some(cause)) => cause.clone(),
                            (Some((status, code)), None) => format!("{status} {code}"),
                            (None, None) => "unanswered".to_string(),
                        };
                        *after_the_kill.lock().unwrap().entry(what).or_default() += 1;
                    }
                    mine.push(Attempt {
                        id,
                        started,
                        ended,
                        answer,
                        cause,
                    });
                }
                attempts.lock().unwrap().extend(mine);
            });
        }
        let sold = |con: &mut redis::Connection| con.scard::<_, usize>("user:id").unwrap();
        let mut master = topology.master.con();
        wait_for_within("sales before the cut", Duration::from_secs(20), || {
            sold(&mut master) > SOLD_BEFORE_THE_CUT
        });
        // Frozen replicas cannot take the stream up again once it is cut.
        for replica in &topology.replicas {
            replica.freeze();
        }
        let kill_links = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("replica")
            .clone();
        kill_links.exec(&mut master).unwrap();
        wait_for("the master to have no replica", || {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut master)
                .unwrap();
            info.contains("connected_slaves:0")
        });
        let at_the_cut = sold(&mut master);
        wait_for_within("sales made alone", ALONE_AT_MOST, || {
            sold(&mut master) >= at_the_cut + SOLD_ALONE
        });
        topology.master.kill();
        let killed = *killed_at.get_or_init(Instant::now);
        for replica in &topology.replicas {
            replica.thaw();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answers = after_the_kill.lock().unwrap().clone();
            if answers
                .get(BOUGHT)
                .is_some_and(|&n| n >= SOLD_AFTER_THE_KILL)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "waited 30 s for {SOLD_AFTER_THE_KILL} sales after the kill; the answers since: {answers:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
        killed
    });
    let replicas: Vec<u16> = topology.replicas.iter().map(|r| r.port).collect();
    let named = "the sentinels to name a replica master";
    wait_for_within(named, Duration::from_secs(20), || {
        topology
            .named_master()
            .is_some_and(|port| replicas.contains(&port))
    });
    let new_master = topology.named_master().unwrap();
    let promoted = topology
        .replicas
        .iter()
        .find(|r| r.port == new_master)
        .unwrap();
    let (winners, remaining, initial) = sale_in(&mut promoted.con());
    // The orders: the writer follows the new master as the pool does, and
    // writes what waits in its stream.
    let mut con = promoted.con();
    wait_for_within("the stream to drain", Duration::from_secs(20), || {
        con.xlen::<_, usize>("seckill:orders").unwrap() == 0
    });
    let database = rusqlite::Connection::open(topology.master.dir.path().join("orders.sqlite"));
    let database = database.unwrap();
    let mut query = database
        .prepare("SELECT user_id FROM seckill_orders")
        .unwrap();
    let rows = query.query_map([], |row| row.get::<_, String>(0)).unwrap();
    let orders = rows.collect::<Result<_, _>>().unwrap();
    drop(server);
    let attempts = attempts.into_inner().unwrap();
    Failover {
        attempts,
        killed,
        winners,
        remaining,
        initial,
        orders,
    }
}

/// Every failover: the new master's sale adds up, and buyers buy again soon.
fn assert_the_sale_goes_on(failover: &Failover) {
    let Failover {
        winners,
        remaining,
        initial,
        ..
    } = failover;
    assert!(*remaining >= 0, "oversold: {remaining} left");
    assert_eq!(
        winners.len() as i64 + remaining,
        *initial,
        "winners + remaining"
    );
    let recovered = failover.recovered_after().expect("no sale after the kill");
    assert!(
        recovered <= 5.0,
        "the first sale after the kill ended {recovered:.1} s after it"
    );
}

#[test]
fn with_replicas_1_no_sale_answered_1_is_lost_in_a_failover() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let failover = sell_through_a_failover(&["--replicas", "1"]);
    let told = failover.told_bought();
    let lost: Vec<_> = told.difference(&failover.winners).collect();
    println!(
        "with --replicas 1: {} told 1, {} lost; errors: {}; the first sale after the kill {:.1} s after it",
        told.len(),
        lost.len(),
        failover.causes(),
        failover.recovered_after().unwrap_or(f64::NAN)
    );
    let unreplicated = failover.count_cause("unreplicated");
    assert!(
        unreplicated > 0,
        "the master sold alone, so some sales were answered unreplicated"
    );
    assert!(
        lost.is_empty(),
        "told 1, missing on the new master: {lost:?}"
    );
    // The writer writes an order only once the replicas have it: no order
    // for a sale the failover lost, and every winner's order written.
    let unwon: Vec<_> = failover.orders.difference(&failover.winners).collect();
    let unordered: Vec<_> = failover.winners.difference(&failover.orders).collect();
    assert!(
        unwon.is_empty(),
        "orders without a winner on the new master: {unwon:?}"
    );
    assert!(
        unordered.is_empty(),
        "winners without an order: {unordered:?}"
    );
    assert_the_sale_goes_on(&failover);
}

/// The lesson of `--replicas`: without it, the sales the master made alone
/// (at least `SOLD_ALONE`, each answered 1) are gone from the new master,
/// and their orders, written from the old master's stream, have no winner.
#[test]
fn without_replicas_a_failover_loses_sales_answered_1() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let failover = sell_through_a_failover(&[]);
    let told = failover.told_bought();
    let lost: HashSet<&String> = told.difference(&failover.winners).collect();
    println!(
        "without --replicas: {} told 1, {} of them lost in the failover; errors: {}; \
         the first sale after the kill {:.1} s after it",
        told.len(),
        lost.len(),
        failover.causes(),
        failover.recovered_after().unwrap_or(f64::NAN)
    );
    assert!(
        !lost.is_empty(),
        "the master sold at least {SOLD_ALONE} alone, answered 1, and none was lost"
    );
    // Every winner kept has its order; an order without a winner is a sale
    // the failover lost (told 1, or unanswered when the master died).
    let unordered: Vec<_> = failover.winners.difference(&failover.orders).collect();
    assert!(
        unordered.is_empty(),
        "winners without an order: {unordered:?}"
    );
    let unanswered: HashSet<&String> = failover
        .attempts
        .iter()
        .filter(|a| a.answer.is_none())
        .map(|a| &a.id)
        .collect();
    let unwon: Vec<_> = failover
        .orders
        .difference(&failover.winners)
        .filter(|id| !lost.contains(id) && !unanswered.contains(id))
        .collect();
    assert!(unwon.is_empty(), "orders of sales never made: {unwon:?}");
    assert_the_sale_goes_on(&failover);
}

/// A replica restarted empty while the master is unreachable has nothing to
/// sync from, yet the sentinels promote it: the sale is gone. seckill says
/// so (503 `no_sale`, `/readyz` 503, `--audit` names the missing keys) and
/// never starts a sale of its own on the empty master.
#[test]
fn a_replica_promoted_before_it_synced_is_no_sale_and_none_is_started() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut topology = Topology::start();
    let sentinels = topology.sentinel_flag();
    let flags = ["--suffix-max", "0", "--sentinel", &sentinels];
    let server = Seckill::start(&topology.master, &flags);
    assert_eq!(buy(server.addr, "ann").code(), 1);

    // One replica gone for good, the master unreachable, and the other
    // replica restarted without its data: the only one left to promote.
    topology.replicas[1].kill();
    topology.master.freeze();
    let empty = &mut topology.replicas[0];
    empty.kill();
    let _ = std::fs::remove_file(empty.dir.path().join("dump.rdb"));
    let master_port = topology.master.port.to_string();
    empty.restart(&["--replicaof", "127.0.0.1", &master_port]);
    let empty_port = empty.port;
    let named = "the sentinels to promote the empty replica";
    wait_for_within(named, Duration::from_secs(30), || {
        topology.named_master() == Some(empty_port)
    });

    let no_sale = "buyers to be told there is no sale";
    wait_for_within(no_sale, Duration::from_secs(10), || {
        let reply = buy(server.addr, "bob");
        reply.status == 503 && reply.json()["cause"] == "no_sale"
    });
    assert_eq!(get(server.addr, "/readyz").status, 503);
    let audit = seckill_output(&["--audit", "--sentinel", &sentinels]);
    let said = String::from_utf8_lossy(&audit.stderr);
    assert_eq!(audit.status.code(), Some(1), "{said}");
    assert!(
        said.contains("no sale in Redis")
            && said.contains("commodity:num or commodity:initial is missing"),
        "{said}"
    );
    let mut promoted = topology.replicas[0].con();
    let stock: Option<i64> = promoted.get("commodity:num").unwrap();
    assert_eq!(stock, None, "seckill started a sale of its own");
}

/// A sentinel that accepts connections but never answers (frozen, or on a
/// host that stalls) must not stop seckill from following a failover: it
/// asks the next sentinel, within the pool's timeouts.
#[test]
fn a_frozen_sentinel_does_not_stop_seckill_following_a_failover() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut topology = Topology::start();
    let sentinels = topology.sentinel_flag();
    let flags = [
        "--strategy",
        "lua",
        "--suffix-max",
        "0",
        "--sentinel",
        &sentinels,
    ];
    let server = Seckill::start(&topology.master, &flags);
    assert_eq!(buy(server.addr, "ann").code(), 1);

    // The first sentinel seckill asks stops answering; two of three still
    // agree, so the failover goes ahead without it.
    topology.sentinels[0].freeze();
    topology.master.kill();
    let killed = Instant::now();
    let mut n = 0;
    wait_for_within("a sale on the new master", Duration::from_secs(20), || {
        n += 1;
        let started = Instant::now();
        let reply = try_buy(server.addr, &format!("after-{n}"));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "a purchase took {took:?}");
        reply.is_ok_and(|r| r.status == 200 && r.code() == 1)
    });
    println!(
        "bought again {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    let named = topology.named_master_by(1);
    let promoted = topology.replicas.iter().find(|r| Some(r.port) == named);
    let (winners, _, _) = sale_in(&mut promoted.expect("a replica was promoted").con());
    assert!(
        winners.contains("ann"),
        "the sale before the failover is kept"
    );
}
