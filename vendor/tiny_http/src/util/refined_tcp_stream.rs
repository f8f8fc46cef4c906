use std::io::Result as IoResult;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

use super::{timed_out, ConnectionState};

use crate::connection::Connection;
#[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
use crate::ssl::SslStream;

pub(crate) enum Stream {
    // seckill patch: shared by the two halves, not duplicated with
    // `try_clone`: one descriptor per connection instead of two, and no
    // `try_clone().unwrap()` to panic the accept loop on "too many open
    // files" (tiny-http issue #195).
    Http(Arc<Connection>),
    #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
    Https(SslStream),
}

impl Clone for Stream {
    fn clone(&self) -> Self {
        match self {
            Stream::Http(tcp_stream) => Stream::Http(Arc::clone(tcp_stream)),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => Stream::Https(ssl_stream.clone()),
        }
    }
}

impl Stream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.set_read_timeout(timeout),
            // The TLS streams give no access to their socket's options here.
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(_) => Ok(()),
        }
    }
}

impl From<Connection> for Stream {
    fn from(tcp_stream: Connection) -> Self {
        Stream::Http(Arc::new(tcp_stream))
    }
}

// seckill patch: a socket already shared with the count of open connections,
// which may shut it down (see `OpenConnections::open`).
impl From<Arc<Connection>> for Stream {
    fn from(tcp_stream: Arc<Connection>) -> Self {
        Stream::Http(tcp_stream)
    }
}

impl Stream {
    fn secure(&self) -> bool {
        match self {
            Stream::Http(_) => false,
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(_) => true,
        }
    }

    fn shutdown(&mut self, how: Shutdown) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.shutdown(how),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        match self {
            Stream::Http(tcp_stream) => (&**tcp_stream).read(buf),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        match self {
            Stream::Http(tcp_stream) => (&**tcp_stream).write(buf),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.write(buf),
        }
    }

    fn flush(&mut self) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => (&**tcp_stream).flush(),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.flush(),
        }
    }
}

pub struct RefinedTcpStream {
    stream: Stream,
    // seckill patch: only the writing half shuts its side (the FIN) when it
    // drops. The reading half shut its own too: no packet, and a system
    // call a connection that mostly failed, the client having closed.
    close_write: bool,
    // seckill patch: the reading half reads no later than the connection's
    // deadline (head, body or idle wait). Reads had no time limit at all.
    state: Option<Arc<ConnectionState>>,
}

impl RefinedTcpStream {
    pub(crate) fn new<S>(
        stream: S,
        state: Arc<ConnectionState>,
    ) -> (RefinedTcpStream, RefinedTcpStream)
    where
        S: Into<Stream>,
    {
        let stream: Stream = stream.into();

        let (read, write) = (stream.clone(), stream);

        let read = RefinedTcpStream {
            stream: read,
            close_write: false,
            state: Some(state),
        };

        let write = RefinedTcpStream {
            stream: write,
            close_write: true,
            state: None,
        };

        (read, write)
    }

    /// Returns true if this struct wraps around a secure connection.
    #[inline]
    pub(crate) fn secure(&self) -> bool {
        self.stream.secure()
    }
}

impl Drop for RefinedTcpStream {
    fn drop(&mut self) {
        if self.close_write {
            self.stream.shutdown(Shutdown::Write).ok();
        }
    }
}

impl Read for RefinedTcpStream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        // seckill patch: each read waits no longer than the time left; and
        // waits again if the deadline moved meanwhile (an answer written).
        let Some(state) = &self.state else {
            return self.stream.read(buf);
        };
        loop {
            self.stream.set_read_timeout(state.time_left()?)?;
            match self.stream.read(buf) {
                Err(err) if err.kind() == ErrorKind::WouldBlock => continue,
                read => return read,
            }
        }
    }
}

/// seckill patch: a socket timeout shows as WouldBlock; it is a timeout.
fn name_timeout(err: std::io::Error) -> std::io::Error {
    match err.kind() {
        ErrorKind::WouldBlock => timed_out(),
        _ => err,
    }
}

impl Write for RefinedTcpStream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        self.stream.write(buf).map_err(name_timeout)
    }

    fn flush(&mut self) -> IoResult<()> {
        self.stream.flush()
    }
}
