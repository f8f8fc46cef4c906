//! seckill: the Flask seckill (秒杀, flash sale) tutorial as a Rust server.
//!
//! # Layout
//!
//! `main.rs` reads like the Python script, top to bottom; its flags
//! (`config.rs`) are the binary's, and the library takes plain values. The
//! modules at the top of `src/` translate the Python, one piece each:
//!
//! | module | what | in the Python |
//! | --- | --- | --- |
//! | [`keys`] | every Redis key, named for what it holds | `'commodity:num'`, `'user:id'` |
//! | [`pool`] | where Redis is (one server, or the master its sentinels name), and the pool of connections | `redis.Redis(...)`, `redis.ConnectionPool(...)` |
//! | [`sale`] | starting (`start.lua`) or joining the sale; reading it back | `pyredis.set('commodity:num', 500)` |
//! | [`lifecycle`] | the sale's beginning and end as the server tells them | the `set` before `app.run`, the prints after it |
//! | [`server`] | a thread per connection, its limits, the stop | `app.run(host='', port=5000)` |
//! | [`http`] | routes, JSON answers, the page | `@app.route`, `jsonify`, `render_template` |
//! | [`handler`] | one request, from its route to its answer | `def fun_send()` |
//! | [`form`] | the field `msg`, and the user id made from it | `request.form.get('msg')`, `random.randint(...)` |
//! | [`purchase`] | `--strategy`, and the checkout every purchase goes through | the POST branch of `fun_send` |
//! | [`purchase::strategies`] | four ways to buy, side by side (`purchase.lua` the fourth) | `rpipe.watch(...)` ... `rpipe.execute()` |
//! | [`answer`] | what a buyer is told: the code, its print, its JSON | `response_num`, the `print`s, `jsonify(...)` |
//! | [`report`] | a line per purchase, trouble told once, the counters bumped | the `print`s |
//!
//! What a real server adds, and the tutorial has no line for:
//!
//! | module | what |
//! | --- | --- |
//! | [`trouble`] | why Redis gave no answer during a request: the words and `cause` of each 503 |
//! | [`stats`] | the counters, a line each, and one struct for `/seckill/stats` and `/metrics` |
//! | [`orders`] | every winner becomes an order: a Redis Stream, written to SQLite or PostgreSQL |
//! | [`opening`] | the moment the sale opens (`--opens-in`, `--opens-at`), by Redis's clock |
//! | [`seller`] | this server's mark on its sale (`mark.lua`), so a start elsewhere sees it; /readyz's test |
//! | [`rights`] | what the sale needs of the Redis user (ACLs), checked at start |
//! | [`hosts`] | the names this server answers to (against DNS rebinding) |
//! | [`beyond::checks`] | the pool's connections, checked only when in doubt |
//! | [`beyond::clients`] | a Redis full of clients (`maxclients`), said once |
//! | [`beyond::replicas`] | `--replicas`: a sale confirmed by replicas (WAIT) |
//! | [`beyond::sentinel`] | which server is the master, asked of Redis Sentinel |
//! | [`beyond::permits`] | turns, first come first served |
//! | [`beyond::growth`] | a pool grown one connection at a time |
//! | [`beyond::outage`] | an outage told when it begins and when it ends |
//! | [`beyond::output`] | stdout, written by a thread of its own |
//! | [`beyond::logs`] | diagnostics on stderr, through `tracing` (`RUST_LOG`) |
//! | [`beyond::rights`] | which commands a Redis user may not run, asked in a discarded MULTI |
//! | [`beyond::redact`] | URLs without their passwords |
//! | [`beyond::deadline`] | work that may never end, waited for a while |
//! | [`beyond::renewal`] | a task run every period on a thread of its own |
//!
//! The pieces in `beyond/` know nothing of the sale and use no module
//! outside their folder: a reader can skip the folder and still read the
//! whole lesson, and the imports run one way, from `main` down to `beyond`
//! and `keys`. `trouble` and `seller` stay beside the lesson because they
//! speak of the sale (its keys, its stock, its id).
//!
//! The HTTP layer is tiny_http 0.12.0 with the patches of
//! `vendor/tiny_http/PATCHES.md`, so that no client can stop or hang it.
//!
//! # Errors
//!
//! Each kind of failure has its own type, because each ends differently:
//!
//! | type | when | becomes |
//! | --- | --- | --- |
//! | `String` | a start that cannot go on: a flag's value, a port in use, a pool Redis refuses, another server selling the sale | `seckill: ...` on stderr and exit status 1, in `main`; the words say what to do |
//! | [`pool::Failed`] | Redis could not be reached or failed at start or at `--audit` | the same, with the next step for its case (start `redis-server`, check the sentinels, raise `maxclients`) |
//! | [`sale::ReadError`] | reading the sale: Redis failed, or the stock is not a whole number ([`sale::BadStock`]) | a `Failed`, a `Trouble` or the audit's `BAD STOCK` verdict (exit status 2) |
//! | [`form::FormError`] | a purchase's form cannot be read | 4xx with `cause` `bad_request` or `timeout`, nothing bought |
//! | [`trouble::Trouble`] | Redis gave no answer about the sale during a request | 503 with its `cause` and words, told on stderr once per outage ([`report`]); one that may have sold carries the buyer's `user_id` |
//! | [`beyond::replicas::Unconfirmed`] | a sale too few replicas confirmed | `Trouble::Unreplicated` |
//! | `redis::RedisError` | inside a strategy | a `Trouble` by `?`; for the step that sells, `Trouble::after_sending`, as its loss may hide a sale |
//!
//! Words that name a limit are made from its constant (`span` in
//! [`beyond::output`]), so they cannot drift from it.

pub mod answer;
pub mod beyond;
pub mod form;
pub mod handler;
pub mod hosts;
pub mod http;
pub mod keys;
pub mod lifecycle;
pub mod opening;
pub mod orders;
pub mod pool;
pub mod purchase;
pub mod report;
pub mod rights;
pub mod sale;
pub mod seller;
pub mod server;
pub mod stats;
pub mod trouble;
