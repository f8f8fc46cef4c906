//! Every winner becomes an order: where the tutorial stops (a set of
//! winners, printed at the end), a real flash sale goes on to a database,
//! without putting the database in the buyer's path.
//!
//! Each sale adds an entry to a Redis Stream in the same atomic step as the
//! sale (`stream::add`, inside the WATCH transaction or the Lua script), so
//! there is no sale without its order entry, nor the other way round. A
//! writer thread reads the stream as one of a consumer group, writes each
//! batch to the database in one transaction, and only then acknowledges
//! it: at least once delivered, written once (the order's key is unique).
//! A writer that died leaves its entries pending; another claims them.
//!
//! | file | what |
//! | --- | --- |
//! | `stream.rs` | the Redis side: the stream's keys, an order's fields, the group's reads |
//! | `writer.rs` | the thread that writes the stream into the database and counts what it holds |
//! | `database.rs` | where orders go (`--orders`), named without a password |
//! | `store.rs` | what a store does, and the SQL both share |
//! | `sqlite.rs`, `postgres.rs` | the two stores |

pub mod database;
pub mod postgres;
pub mod sqlite;
pub mod store;
pub mod stream;
pub mod writer;

pub use database::{Database, Location};
pub use writer::{Writer, Written};

/// One order, as its stream entry holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    /// The stream entry's id, kept with the order to trace it.
    pub entry: String,
    pub user: String,
    pub sale: String,
    /// The stock left after this sale.
    pub left: i64,
    /// The server that sold it.
    pub seller: String,
}
