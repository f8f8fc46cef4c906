// seckill patch: a request answered, told to its connection.
pub(crate) use self::answered::Answered;
pub use self::chunked_body::ChunkedBody;
pub(crate) use self::connection_state::{timed_out, ConnectionState, OpenConnections};
pub use self::custom_stream::CustomStream;
pub use self::equal_reader::EqualReader;
pub use self::fused_reader::FusedReader;
pub use self::messages_queue::MessagesQueue;
pub use self::refined_tcp_stream::RefinedTcpStream;
// seckill patch: refused connections answered once their request is in.
pub(crate) use self::refusals::Refusals;
pub use self::sequential::{SequentialReader, SequentialReaderBuilder};
// seckill patch: SequentialWriter is not named outside its module, and its
// unused import printed a warning on every build.
pub use self::sequential::SequentialWriterBuilder;
pub use self::task_pool::TaskPool;
// seckill patch: requests answered on the threads that accept them.
pub(crate) use self::workers::Workers;

use std::str::FromStr;

mod answered;
mod chunked_body;
mod connection_state;
mod custom_stream;
mod equal_reader;
mod fused_reader;
mod messages_queue;
pub(crate) mod refined_tcp_stream;
mod refusals;
mod sequential;
mod task_pool;
mod workers;

/// seckill patch: the body of an answer tiny_http gives by itself (a head too
/// large, a version it does not speak, too many connections): JSON, like
/// every other error of seckill, with a `cause` a program can test.
pub(crate) fn json_error(cause: &str, message: &str) -> String {
    let quote = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "{{\"error\":\"{}\",\"cause\":\"{}\"}}",
        quote(message),
        quote(cause)
    )
}

/// Parses a the value of a header.
/// Suitable for `Accept-*`, `TE`, etc.
///
/// For example with `text/plain, image/png; q=1.5` this function would
/// return `[ ("text/plain", 1.0), ("image/png", 1.5) ]`
pub fn parse_header_value(input: &str) -> Vec<(&str, f32)> {
    input
        .split(',')
        .filter_map(|elem| {
            let mut params = elem.split(';');

            let t = params.next()?;

            let mut value = 1.0_f32;

            for p in params {
                if p.trim_start().starts_with("q=") {
                    if let Ok(val) = f32::from_str(p.trim_start()[2..].trim()) {
                        value = val;
                        break;
                    }
                }
            }

            Some((t.trim(), value))
        })
        .collect()
}

#[cfg(test)]
mod test {
    #[test]
    #[allow(clippy::float_cmp)]
    fn test_parse_header() {
        let result = super::parse_header_value("text/html, text/plain; q=1.5 , image/png ; q=2.0");

        assert_eq!(result.len(), 3);
        assert_eq!(result[0].0, "text/html");
        assert_eq!(result[0].1, 1.0);
        assert_eq!(result[1].0, "text/plain");
        assert_eq!(result[1].1, 1.5);
        assert_eq!(result[2].0, "image/png");
        assert_eq!(result[2].1, 2.0);
    }
}
