//! A purchase and each of its answers, made deterministic with
//! `--suffix-max 0` (the id is exactly what was sent) and a small stock.

mod common;

use std::thread;

use common::relay::Relay;
use common::{FORM, Redis, Seckill, buy, post_form, request};
use redis::Commands;

#[test]
fn answers_bought_repeat_and_sold_out() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--stock", "2", "--suffix-max", "0"]);

    let first = buy(server.addr, "ann");
    assert_eq!(first.status, 200);
    assert_eq!(first.header("Content-Type"), Some("application/json"));
    assert_eq!(
        first.json(),
        serde_json::json!({ "user_id": "ann", "response_num": 1 })
    );

    assert_eq!(buy(server.addr, "ann").code(), -2, "one each");
    assert_eq!(buy(server.addr, "bob").code(), 1);
    assert_eq!(buy(server.addr, "cat").code(), -1, "the stock of 2 is gone");
    assert_eq!(
        buy(server.addr, "ann").code(),
        -1,
        "sold out is checked first, as in the Python"
    );

    let mut con = redis.con();
    assert_eq!(con.get::<_, i64>("commodity:num").unwrap(), 0);
    let mut winners: Vec<String> = con.smembers("user:id").unwrap();
    winners.sort();
    assert_eq!(winners, ["ann", "bob", "null"]);
    // The last line printed, after the others.
    let log = server.wait_for_stdout("user ann: sold out");
    assert!(log.contains("user ann: bought; 1 left"), "{log}");
    assert!(log.contains("user ann: already bought"), "{log}");
    assert!(log.contains("user cat: sold out"), "{log}");
}

/// A purchase held between its WATCH and its EXEC (the relay holds the
/// write that carries MULTI ... EXEC), while the test changes a key: the
/// stock aborts the EXEC (-3, nothing taken), another key does not (1).
/// So `commodity:num` itself is watched, as the tutorial's
/// `rpipe.watch('commodity:num')`.
#[test]
fn answers_conflict_when_the_stock_changes_between_watch_and_exec() {
    let redis = Redis::start();
    let relay = Relay::start(redis.port);
    let flags = ["--stock", "5", "--suffix-max", "0", "--orders", "off"];
    let server = Seckill::start(&redis, &[&flags[..], &["--redis", &relay.url()]].concat());
    let addr = server.addr;
    let mut con = redis.con();
    let held_buy = |id: &'static str, meanwhile: &mut dyn FnMut()| {
        relay.hold_next(b"$4\r\nEXEC\r\n");
        let buyer = thread::spawn(move || buy(addr, id));
        relay.wait_held();
        meanwhile();
        relay.release();
        buyer.join().unwrap()
    };

    // Another buyer's sale (by hand) between ann's WATCH and her EXEC.
    let reply = held_buy("ann", &mut || {
        let _: () = redis.con().set("commodity:num", 4).unwrap();
    });
    assert_eq!(
        reply.json(),
        serde_json::json!({ "user_id": "ann", "response_num": -3 })
    );
    assert_eq!(
        con.get::<_, i64>("commodity:num").unwrap(),
        4,
        "an aborted EXEC takes nothing"
    );
    assert!(!con.sismember::<_, _, bool>("user:id", "ann").unwrap());

    // A key the purchase does not watch changes: her EXEC goes through.
    let reply = held_buy("ann", &mut || {
        let _: () = redis.con().set("unrelated", 1).unwrap();
    });
    assert_eq!(reply.code(), 1, "{}", reply.text());
    assert_eq!(con.get::<_, i64>("commodity:num").unwrap(), 3);
    assert!(con.sismember::<_, _, bool>("user:id", "ann").unwrap());
    let stats = common::get(addr, "/seckill/stats").json();
    assert_eq!(stats["conflicts"], 1, "{stats}");
}

#[test]
fn the_postfile_id_is_trimmed_and_suffixed() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &["--suffix-max", "9"]);
    // The tutorial's postfile, made by `echo "msg=#ABCD" > postfile`.
    let reply = post_form(server.addr, b"msg=#ABCD\n");
    assert_eq!(reply.code(), 1);
    let id = reply.user_id();
    let suffix: u32 = id.strip_prefix("#ABCD").unwrap().parse().unwrap();
    assert!(suffix <= 9, "{id}");
    assert!(redis.con().sismember::<_, _, bool>("user:id", &id).unwrap());
}

#[test]
fn bad_forms_get_a_json_error() {
    let redis = Redis::start();
    let server = Seckill::start(&redis, &[]);
    let form = [("Content-Type", FORM)];
    let plain = [("Content-Type", "text/plain")];
    for (headers, body, status) in [
        (&form[..], &b""[..], 400),
        (&form[..], &b"user=ann"[..], 400),
        (&form[..], &b"msg=%20"[..], 400),
        (&plain[..], &b"msg=ann"[..], 415),
    ] {
        let reply = request(server.addr, "POST", "/seckill", headers, body);
        assert_eq!(reply.status, status, "{body:?}");
        assert!(reply.json()["error"].is_string(), "{}", reply.text());
    }
    assert_eq!(
        redis.con().scard::<_, i64>("user:id").unwrap(),
        1,
        "nobody bought"
    );
}
