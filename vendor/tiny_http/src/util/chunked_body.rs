//! seckill patch: a chunked request body, decoded by chunked_transfer as in
//! tiny_http 0.12.0, with three fixes (see PATCHES.md): the bytes it may take
//! are capped (a chunk-size line had no end), a connection that ends before
//! the last chunk is an error (it was a short body), and the connection knows
//! when the body has been read to its end (an unread rest was parsed as the
//! next request).

use std::io::{Error as IoError, ErrorKind, Read, Result as IoResult};
use std::sync::Arc;

use chunked_transfer::Decoder;

use super::connection_state::{ConnectionState, UNKNOWN_LENGTH};

pub struct ChunkedBody<R: Read> {
    decoder: Decoder<Capped<R>>,
    state: Arc<ConnectionState>,
    done: bool,
}

impl<R: Read> ChunkedBody<R> {
    pub(crate) fn new(source: R, max_bytes: usize, state: Arc<ConnectionState>) -> ChunkedBody<R> {
        state.set_body_left(UNKNOWN_LENGTH);
        let source = Capped {
            inner: source,
            left: max_bytes,
        };
        ChunkedBody {
            decoder: Decoder::new(source),
            state,
            done: false,
        }
    }
}

impl<R: Read> Read for ChunkedBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let read = self.decoder.read(buf)?;
        if read == 0 {
            // The decoder ends only at the last chunk: `Capped` turns an early
            // end of the connection into an error.
            self.done = true;
            self.state.set_body_left(0);
        }
        Ok(read)
    }
}

impl<R: Read> Drop for ChunkedBody<R> {
    /// A chunked body not read to its end leaves the connection at an unknown
    /// place in the stream: no further request can be read from it.
    fn drop(&mut self) {
        if !self.done {
            self.state.close();
        }
    }
}

/// The socket under a chunked body: at most `left` more bytes, and no early end.
struct Capped<R> {
    inner: R,
    left: usize,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let why = "the chunked body is larger than the server takes";
            return Err(IoError::new(ErrorKind::InvalidData, why));
        }
        let want = buf.len().min(self.left);
        let read = self.inner.read(&mut buf[..want])?;
        if read == 0 {
            let why = "the connection ended before the body's last chunk";
            return Err(IoError::new(ErrorKind::UnexpectedEof, why));
        }
        self.left -= read;
        Ok(read)
    }
}
