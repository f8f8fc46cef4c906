use std::io::Read;
use std::io::Result as IoResult;
use std::io::{Error as IoError, ErrorKind};
use std::sync::mpsc::channel;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use super::ConnectionState;

/// A `Reader` that reads exactly the number of bytes from a sub-reader.
///
/// If the limit is reached, it returns EOF. If the limit is not reached
/// when the destructor is called, the remaining bytes will be read and
/// thrown away.
pub struct EqualReader<R>
where
    R: Read,
{
    reader: R,
    size: usize,
    last_read_signal: Sender<IoResult<()>>,
    // seckill patch: the connection learns how much of the body is unread,
    // and a rest larger than `max_drain` closes it instead of being read.
    state: Arc<ConnectionState>,
    max_drain: usize,
}

impl<R> EqualReader<R>
where
    R: Read,
{
    pub(crate) fn new(
        reader: R,
        size: usize,
        state: Arc<ConnectionState>,
        max_drain: usize,
    ) -> (EqualReader<R>, Receiver<IoResult<()>>) {
        let (tx, rx) = channel();
        state.set_body_left(size);

        let r = EqualReader {
            reader,
            size,
            last_read_signal: tx,
            state,
            max_drain,
        };

        (r, rx)
    }
}

impl<R> Read for EqualReader<R>
where
    R: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if self.size == 0 {
            return Ok(0);
        }

        let buf = if buf.len() < self.size {
            buf
        } else {
            &mut buf[..self.size]
        };

        match self.reader.read(buf) {
            // seckill patch: the connection ended before the Content-Length
            // did. This was an Ok(0), and a short body passed for a whole one.
            Ok(0) if !buf.is_empty() => {
                self.state.close();
                Err(IoError::new(
                    ErrorKind::UnexpectedEof,
                    "the body ended before its Content-Length",
                ))
            }
            Ok(len) => {
                self.size -= len;
                self.state.set_body_left(self.size);
                Ok(len)
            }
            // seckill patch: after a failed read (a timeout) the connection
            // is not used again.
            Err(err) => {
                self.state.close();
                Err(err)
            }
        }
    }
}

impl<R> Drop for EqualReader<R>
where
    R: Read,
{
    fn drop(&mut self) {
        let mut remaining_to_read = self.size;

        // seckill patch: a rest larger than `max_drain` is not read at all:
        // the connection closes instead. Reading a declared terabyte would
        // hold the thread for as long as the client likes.
        if remaining_to_read > self.max_drain || self.state.is_closing() {
            self.state.close();
            return;
        }

        // seckill patch: a fixed buffer. This was `vec![0; remaining_to_read]`,
        // so `Content-Length: 1000000000000` ended the process when the
        // allocation failed (tiny-http PR #290).
        let mut buf = [0; 4096];
        while remaining_to_read > 0 {
            let want = remaining_to_read.min(buf.len());

            match self.reader.read(&mut buf[..want]) {
                Err(e) => {
                    self.state.close();
                    self.last_read_signal.send(Err(e)).ok();
                    break;
                }
                Ok(0) => {
                    self.state.close();
                    self.last_read_signal.send(Ok(())).ok();
                    break;
                }
                Ok(other) => {
                    remaining_to_read -= other;
                }
            }
        }
        self.state.set_body_left(remaining_to_read);
    }
}

#[cfg(test)]
mod tests {
    use super::{ConnectionState, EqualReader};
    use std::io::Read;

    #[test]
    fn test_limit() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let (mut equal_reader, _) = EqualReader::new(
                org_reader.by_ref(),
                5,
                ConnectionState::new(None, None),
                4096,
            );

            let mut string = String::new();
            equal_reader.read_to_string(&mut string).unwrap();
            assert_eq!(string, "hello");
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }

    #[test]
    fn test_not_enough() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let (mut equal_reader, _) = EqualReader::new(
                org_reader.by_ref(),
                5,
                ConnectionState::new(None, None),
                4096,
            );

            let mut vec = [0];
            equal_reader.read_exact(&mut vec).unwrap();
            assert_eq!(vec[0], b'h');
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }
}
