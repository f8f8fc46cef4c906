//! The floor of a synchronous Lua purchase: the standard library and the
//! redis crate alone, 64 threads, each calling `accept` on one listener,
//! answering its connection itself, on a blocking Redis connection of its
//! own, with the same script (src/purchase/purchase.lua) and the same
//! answers; no tiny_http, no pool, no line per purchase. It sets up its own
//! sale of STOCK at start, as seckill does.
//!   std-lua ADDR REDIS_URL STOCK SUFFIX_MAX

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use redis::{Connection, Script};

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
    redis::pipe()
        .atomic()
        .set("commodity:num", stock)
        .set("commodity:initial", stock)
        .del("user:id")
        .sadd("user:id", "null")
        .set("commodity:sale", &id)
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
                    let _ = serve(stream, &mut con, sale);
                }
            });
        }
    });
}

/// Answers each request of a connection until it closes; keeps it open for
/// HTTP/1.1 unless asked to close (wrk), closes it for HTTP/1.0 (ab).
fn serve(mut stream: TcpStream, con: &mut Connection, sale: &Sale) -> std::io::Result<()> {
    let mut buf = [0; 4096];
    let mut filled = 0;
    loop {
        let read = stream.read(&mut buf[filled..])?;
        if read == 0 {
            return Ok(());
        }
        filled += read;
        while let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            let whole = end + 4 + length;
            if filled < whole {
                break;
            }
            let body = String::from_utf8_lossy(&buf[end + 4..whole]).into_owned();
            let answer = if head.starts_with("post /seckill") {
                buy(con, sale, &body)
            } else {
                "{\"status\":\"ok\"}".to_string()
            };
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            );
            stream.write_all(reply.as_bytes())?;
            if head.contains("http/1.0") || head.contains("connection: close") {
                return Ok(());
            }
            buf.copy_within(whole..filled, 0);
            filled -= whole;
        }
        if filled == buf.len() {
            return Ok(());
        }
    }
}

fn buy(con: &mut Connection, sale: &Sale, body: &str) -> String {
    let msg = form_urlencoded_msg(body);
    let user_id = format!("{}{}", msg.trim(), fastrand::u32(0..=sale.suffix_max));
    let reply: redis::RedisResult<Option<Vec<i64>>> = sale
        .script
        .key("commodity:num")
        .key("user:id")
        .key("commodity:sale")
        .arg(&user_id)
        .arg(&sale.id)
        .invoke(con);
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
