//! The Redis keys of a sale: the only place their names are written.

/// The stock left. Python: `pyredis.set(name='commodity:num', value=500)`.
pub const STOCK: &str = "commodity:num";

/// The set of user ids that bought. Python: `pyredis.sadd('user:id', 'null')`.
pub const WINNERS: &str = "user:id";

/// The member the tutorial puts in `user:id` at start; it is not a winner.
pub const SENTINEL: &str = "null";

/// The stock the sale started with, so an audit can tell sold from oversold
/// after the server is gone. Not in the Python, which only printed it.
pub const INITIAL_STOCK: &str = "commodity:initial";
