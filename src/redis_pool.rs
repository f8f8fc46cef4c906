//! The pool of Redis connections.
//! Python: pool = redis.ConnectionPool(host='', port=6379, db=0)

use std::time::Duration;

use redis::{Client, Connection, RedisError};

/// Connections kept open: more than `ab -c 100` holds at once, so the
/// tutorial's load never waits for one.
pub const POOL_SIZE: u32 = 128;

/// How long a request waits for a free connection before answering 503.
/// The Python waits forever; a flash-sale buyer should hear back at once.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long one Redis reply may take before the request gives up on it.
const IO_TIMEOUT: Duration = Duration::from_millis(500);

/// How long opening a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub type Pool = r2d2::Pool<Manager>;

/// A pooled connection. One that saw an error is closed rather than reused:
/// after an error, whether it still WATCHes or owes a reply is unknown.
pub struct RedisConn {
    con: Connection,
    failed: bool,
}

impl RedisConn {
    /// Runs `work` on the connection; an error retires the connection.
    pub fn run<T, E>(
        &mut self,
        work: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let result = work(&mut self.con);
        self.failed |= result.is_err();
        result
    }
}

/// Opens connections for the pool through the redis crate's r2d2 support,
/// adding timeouts and retiring failed connections.
pub struct Manager {
    client: Client,
}

impl r2d2::ManageConnection for Manager {
    type Connection = RedisConn;
    type Error = RedisError;

    fn connect(&self) -> Result<RedisConn, RedisError> {
        let con = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        con.set_read_timeout(Some(IO_TIMEOUT))?;
        con.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(RedisConn { con, failed: false })
    }

    fn is_valid(&self, conn: &mut RedisConn) -> Result<(), RedisError> {
        r2d2::ManageConnection::is_valid(&self.client, &mut conn.con)
    }

    fn has_broken(&self, conn: &mut RedisConn) -> bool {
        conn.failed || r2d2::ManageConnection::has_broken(&self.client, &mut conn.con)
    }
}

/// Opens the pool. No PING on checkout: a healthy connection needs no extra
/// round trip, and a broken one fails its first command and is retired.
pub fn build(client: Client) -> Result<Pool, r2d2::Error> {
    r2d2::Pool::builder()
        .max_size(POOL_SIZE)
        .connection_timeout(CHECKOUT_TIMEOUT)
        .test_on_check_out(false)
        .error_handler(Box::new(r2d2::NopErrorHandler))
        .build(Manager { client })
}
