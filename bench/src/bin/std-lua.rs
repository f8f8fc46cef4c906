//! The floor of a synchronous Lua purchase: the standard library and the
//! redis crate alone, 64 threads, each calling `accept` on one listener,
//! answering its connection itself, on a blocking Redis connection of its
//! own, with the same script (src/purchase/purchase.lua) and the same
//! answers; no tiny_http, no pool, no line per purchase. It sets up its own
//! sale of STOCK at start, as seckill does.
//!   std-lua ADDR REDIS_URL STOCK SUFFIX_MAX

use std::io::Write;
use std::net::TcpListener;
use std::thread;

use redis::{Connection, Script};
use seckill_references::{new_sale, purchase, serve};

const THREADS: usize = 64;

struct Sale {
    script: Script,
    id: String,
    suffix_max: u32,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |n: usize, default: &str| args.get(n).cloned().unwrap_or_else(|| default.into());
    let (addr, url) = (arg(1, "127.0.0.1:5300"), arg(2, "redis://127.0.0.1:6379/0"));
    let stock: u64 = arg(3, "500").parse().expect("STOCK");
    let suffix_max: u32 = arg(4, "100000").parse().expect("SUFFIX_MAX");
    let client = redis::Client::open(url).expect("REDIS_URL");
    let mut con = client.get_connection().expect("cannot reach Redis");
    let id = format!("reference-{}", fastrand::u32(..));
    new_sale(stock, &id)
        .exec(&mut con)
        .expect("cannot set up the sale");
    let sale = Sale {
        script: Script::new(include_str!("../../../src/purchase/purchase.lua")),
        id,
        suffix_max,
    };
    let listener = TcpListener::bind(&addr).expect("cannot listen");
    println!("listening on {addr}");
    thread::scope(|scope| {
        for _ in 0..THREADS {
            let mut con = client.get_connection().expect("cannot reach Redis");
            let (listener, sale) = (&listener, &sale);
            scope.spawn(move || {
                while let Ok((stream, _)) = listener.accept() {
                    let _ = serve(stream, |head, body, out| {
                        out.write_all(answer(head, body, &mut con, sale).as_bytes())
                    });
                }
            });
        }
    });
}

/// The reply to one request: a purchase, or /healthz's.
fn answer(head: &str, body: &[u8], con: &mut Connection, sale: &Sale) -> String {
    let answer = if head.starts_with("post /seckill") {
        buy(con, sale, &String::from_utf8_lossy(body))
    } else {
        "{\"status\":\"ok\"}".to_string()
    };
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
        answer.len()
    )
}

fn buy(con: &mut Connection, sale: &Sale, body: &str) -> String {
    let msg = form_urlencoded_msg(body);
    let user_id = format!("{}{}", msg.trim(), fastrand::u32(0..=sale.suffix_max));
    let reply: redis::RedisResult<Option<Vec<i64>>> =
        purchase(&sale.script, &user_id, &sale.id).invoke(con);
    match reply {
        Ok(Some(answer)) => format!(
            "{{\"user_id\":\"{user_id}\",\"response_num\":{}}}",
            answer.first().copied().unwrap_or(0)
        ),
        Ok(None) => "{\"error\":\"no sale\"}".to_string(),
        Err(err) => format!("{{\"error\":\"{err}\"}}"),
    }
}

/// The field `msg` of a form (the postfile's `msg=%23ABCD`), decoded as
/// far as the tutorial's ids need.
fn form_urlencoded_msg(body: &str) -> String {
    let value = body
        .split('&')
        .find_map(|pair| pair.strip_prefix("msg="))
        .unwrap_or("");
    value.replace("%23", "#").replace('+', " ")
}
