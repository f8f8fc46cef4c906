//! Orders in PostgreSQL, for a real deployment. Nothing waits on it for
//! ever: connections time out, the server enforces a statement timeout,
//! and TCP keepalives and a user timeout end a connection to a database
//! cut off by the network. A server frozen whole (its kernel still
//! answering for it) can still hold the writer's thread: the writer says
//! so, and no request waits on the database at all.
//!
//! The URL may leave out the password: then PostgreSQL's own `PGPASSWORD`,
//! or the password file (`PGPASSFILE`, `~/.pgpass`), gives it.

use std::time::Duration;

use postgres::config::Host;
use postgres::error::SqlState;
use r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::postgres::NoTls;

use super::Order;
use super::store::{BUYERS, COUNT, DB_WAIT, SCHEMA, Store, pool_of};
use crate::beyond::deadline::within;
use crate::beyond::output::span;
use crate::beyond::redact::redact;

/// A batch of orders in one statement, each column an array; an order
/// already there is left as it is.
const INSERT_ALL: &str = "INSERT INTO seckill_orders (sale, user_id, stock_left, seller, entry)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])
    ON CONFLICT DO NOTHING";

/// How long a database cut off by the network may keep a connection: TCP
/// keepalives after this idle time, and written data unacknowledged for
/// this long, end it.
const CUT_OFF: Duration = Duration::from_secs(10);

/// Orders in a PostgreSQL database.
pub struct Postgres {
    pool: r2d2::Pool<PostgresConnectionManager<NoTls>>,
    user: String,
}

/// The URL parsed; its words never show the password.
fn parsed(url: &str) -> Result<postgres::Config, String> {
    url.parse()
        .map_err(|err| format!("--orders {}: {}", redact(url), described(&err)))
}

/// The URL parsed, with its password from the environment if it has none.
fn config(url: &str) -> Result<postgres::Config, String> {
    let mut config = parsed(url)?;
    if config.get_password().is_none()
        && let Some(password) = password_from_environment(&config)
    {
        config.password(password);
    }
    Ok(config)
}

/// Where `url` puts the orders, as a sale records it: without a password.
pub fn location(url: &str) -> Result<String, String> {
    let config = parsed(url)?;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    let user = config.get_user().unwrap_or("");
    let port = if ports.is_empty() {
        String::from("5432")
    } else {
        ports.join(",")
    };
    let database = config.get_dbname().unwrap_or(user);
    Ok(format!(
        "postgres://{user}@{}:{port}/{database}",
        hosts.join(",")
    ))
}

impl Postgres {
    /// The database of `url`, and where it is (no password). Refused now:
    /// a URL that does not parse, a database that refuses the user or its
    /// table. A database that does not answer is said, and the orders wait.
    pub fn open(url: &str) -> Result<(Postgres, String), String> {
        let location = location(url)?;
        let mut config = config(url)?;
        let user = config.get_user().unwrap_or("").to_string();
        let wait_ms = DB_WAIT.as_millis();
        config
            .connect_timeout(DB_WAIT)
            .keepalives(true)
            .keepalives_idle(CUT_OFF)
            .tcp_user_timeout(CUT_OFF)
            .options(&format!(
                "-c statement_timeout={wait_ms} -c lock_timeout={wait_ms}"
            ));
        let probe = PostgresConnectionManager::new(config.clone(), NoTls);
        let postgres = Postgres {
            pool: pool_of(PostgresConnectionManager::new(config, NoTls)),
            user,
        };
        // A database frozen whole would hold the start for ever.
        let ready = within(DB_WAIT * 2, move || {
            probe
                .connect()
                .and_then(|mut client| client.batch_execute(SCHEMA))
        });
        match ready {
            Some(Ok(())) => {}
            // The server answered, and refused: a mistake to say now.
            Some(Err(err)) if err.as_db_error().is_some() => {
                return Err(format!("--orders {location}: {}", postgres.words(&err)));
            }
            Some(Err(err)) => tracing::warn!(
                "--orders {location}: {}; orders wait in the stream until it answers",
                postgres.words(&err)
            ),
            None => tracing::warn!(
                "--orders {location}: no answer within {}; orders wait in the stream \
                 until it answers",
                span(DB_WAIT * 2)
            ),
        }
        Ok((postgres, location))
    }

    /// The database's own message, and for a missing right, what to grant.
    fn words(&self, err: &postgres::Error) -> String {
        let Some(db) = err.as_db_error() else {
            return described(err);
        };
        let mut words = format!("PostgreSQL says: {}", db.message());
        if db.code() == &SqlState::INSUFFICIENT_PRIVILEGE {
            words += &format!(
                "; grant the right as the database's owner (GRANT CREATE ON SCHEMA public TO \
                 {user}), or create the table seckill_orders and grant {user} INSERT and SELECT \
                 on it",
                user = self.user
            );
        }
        words
    }

    fn connection(
        &self,
    ) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, String> {
        self.pool.get().map_err(|err| err.to_string())
    }
}

impl Store for Postgres {
    fn write(&self, orders: &[Order]) -> Result<u64, String> {
        let words = |err: postgres::Error| self.words(&err);
        let mut con = self.connection()?;
        let mut tx = con.transaction().map_err(words)?;
        let insert = match tx.prepare(INSERT_ALL) {
            Ok(insert) => insert,
            // A table dropped by hand comes back.
            Err(err) if err.code() == Some(&SqlState::UNDEFINED_TABLE) => {
                drop(tx);
                con.batch_execute(SCHEMA).map_err(words)?;
                tx = con.transaction().map_err(words)?;
                tx.prepare(INSERT_ALL).map_err(words)?
            }
            Err(err) => return Err(words(err)),
        };
        // The batch in one statement, a column an array: one round trip
        // for its 500 orders, where a row each took 500.
        let column = |field: fn(&Order) -> String| orders.iter().map(field).collect::<Vec<_>>();
        let (sales, users) = (column(|o| o.sale.clone()), column(|o| o.user.clone()));
        let (sellers, entries) = (column(|o| o.seller.clone()), column(|o| o.entry.clone()));
        let lefts: Vec<i64> = orders.iter().map(|o| o.left).collect();
        let row: [&(dyn postgres::types::ToSql + Sync); 5] =
            [&sales, &users, &lefts, &sellers, &entries];
        let new = tx.execute(&insert, &row).map_err(words)?;
        tx.commit().map_err(words)?;
        Ok(new)
    }

    fn count(&self, sale: &str) -> Result<u64, String> {
        let mut con = self.connection()?;
        let row = con
            .query_one(COUNT, &[&sale])
            .map_err(|err| self.words(&err))?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn buyers(&self, sale: &str) -> Result<Vec<(String, String)>, String> {
        let mut con = self.connection()?;
        let rows = con
            .query(BUYERS, &[&sale])
            .map_err(|err| self.words(&err))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }
}

/// An error of the client, with its cause: "error connecting to server:
/// Connection refused (os error 111)".
fn described(err: &postgres::Error) -> String {
    match std::error::Error::source(err) {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    }
}

/// The password PostgreSQL's own tools would use for `config`: `PGPASSWORD`,
/// else the first matching line of the password file (`PGPASSFILE`, or
/// `~/.pgpass`): `host:port:database:user:password`, `*` matching any.
fn password_from_environment(config: &postgres::Config) -> Option<String> {
    if let Ok(password) = std::env::var("PGPASSWORD") {
        return Some(password);
    }
    let file = std::env::var("PGPASSFILE")
        .ok()
        .or_else(|| Some(format!("{}/.pgpass", std::env::var("HOME").ok()?)))?;
    let text = std::fs::read_to_string(file).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(_)) | None => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or("");
    let database = config.get_dbname().unwrap_or(user);
    let wanted = [host.as_str(), port.as_str(), database, user];
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let fields: Vec<&str> = line.splitn(5, ':').collect();
            let [h, p, d, u, password] = fields.as_slice() else {
                return None;
            };
            let matches = [h, p, d, u]
                .iter()
                .zip(wanted)
                .all(|(field, want)| **field == "*" || **field == want);
            matches.then(|| password.to_string())
        })
}
