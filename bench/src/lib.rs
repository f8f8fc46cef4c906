//! What the reference servers share: the sale each sets up at start, as
//! seckill does, and the std-only servers' minimal HTTP/1.1 loop.

use std::io::Read;
use std::net::TcpStream;

/// The commands that set up a fresh sale of `stock` named `id`, with the
/// keys of seckill's `start.lua`.
pub fn new_sale(stock: u64, id: &str) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic()
        .set("commodity:num", stock)
        .set("commodity:initial", stock)
        .del("user:id")
        .sadd("user:id", "null")
        .set("commodity:sale", id);
    pipe
}

/// seckill's Lua purchase (src/purchase/purchase.lua) of `user` in sale `sale`.
pub fn purchase<'a>(
    script: &'a redis::Script,
    user: &str,
    sale: &str,
) -> redis::ScriptInvocation<'a> {
    let mut invocation = script.key("commodity:num");
    invocation
        .key("user:id")
        .key("commodity:sale")
        .arg(user)
        .arg(sale);
    invocation
}

/// Answers each request of a connection until it closes; keeps it open for
/// HTTP/1.1 unless asked to close (wrk), closes it for HTTP/1.0 (ab).
/// `answer` gets the head, lowercased, and the body, and writes the reply.
pub fn serve(
    mut stream: TcpStream,
    mut answer: impl FnMut(&str, &[u8], &mut TcpStream) -> std::io::Result<()>,
) -> std::io::Result<()> {
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
            answer(&head, &buf[end + 4..whole], &mut stream)?;
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
