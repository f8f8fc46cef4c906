//! Every Redis key seckill uses, named for what it holds: the only place
//! their names are written. The sale's keys are the tutorial's; the orders'
//! are what a real flash sale adds (src/orders/).

/// The stock left. Python: `pyredis.set(name='commodity:num', value=500)`.
pub const STOCK: &str = "commodity:num";

/// The set of user ids that bought. Python: `pyredis.sadd('user:id', 'null')`.
pub const WINNERS: &str = "user:id";

/// The member the tutorial puts in `user:id` at start; it is not a winner.
pub const PLACEHOLDER: &str = "null";

/// The stock the sale started with, so an audit can tell sold from
/// oversold after the server is gone. The Python only printed it.
pub const INITIAL_STOCK: &str = "commodity:initial";

/// The id of the sale in Redis, new at each start: a server sells only
/// the sale it started or joined, never one that replaced it.
pub const SALE_ID: &str = "commodity:sale";

/// The servers selling the sale, each with the time its mark lapses
/// (ms, by Redis's clock): a server renews its mark while it runs, so a
/// fresh start can tell that others still sell.
pub const SELLERS: &str = "commodity:sellers";

/// When the sale opens, in ms since 1970 by Redis's clock; none when
/// it opened at its start.
pub const OPENS_AT: &str = "commodity:opens";

/// The orders waiting to be written to the database: a Redis Stream,
/// each entry added in the same step as its sale.
pub const ORDERS: &str = "seckill:orders";

/// The consumer group of the order writers on `ORDERS`: each entry goes
/// to one of them.
pub const ORDERS_GROUP: &str = "order-writers";

/// Entries of `ORDERS` that held no order, with why.
pub const ORDERS_DEAD: &str = "seckill:orders:dead";

/// Where the orders of the sale in Redis go (`--orders`, named without
/// its password, or `off`): set with the sale, read by the servers that
/// join it, `seckill orders` and `--audit`.
pub const ORDERS_DATABASE: &str = "seckill:orders:database";
