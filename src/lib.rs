//! seckill: the Flask seckill (秒杀, flash sale) tutorial as a Rust server.
//!
//! # Layout
//!
//! `main.rs` reads like the Python script, top to bottom. Each module here is
//! one piece of it:
//!
//! | module | what | in the Python |
//! | --- | --- | --- |
//! | [`config`] | the flags | the values written in the script |
//! | [`pool`] | where Redis is (one server, or the master its sentinels name), the pool of connections, and why Redis gave no answer (`Trouble`, the words of its 503) | `redis.Redis(...)`, `redis.ConnectionPool(...)` |
//! | [`sale`] | the keys; starting (`start.lua`) or joining the sale; reading it back | `pyredis.set('commodity:num', 500)`, the prints at the end |
//! | [`handler`] | one request, from its route to its answer | `def fun_send()` |
//! | [`form`] | the field `msg`, and the user id made from it | `request.form.get('msg')`, `random.randint(...)` |
//! | [`purchase`] | the answers, and four ways to buy (`purchase.lua` the fourth) | the POST branch of `fun_send` |
//! | [`http`] | routes, JSON answers, the page | `@app.route`, `jsonify`, `render_template` |
//! | [`report`] | what is told of each purchase, and the counters | the `print`s |
//! | [`output`] | stdout and stderr, written by a thread of their own | `print` itself |
//! | [`server`] | a thread per connection, its limits, the stop | `app.run(host='', port=5000)` |
//! | [`seller`] | this server's mark on its sale (`mark.lua`), and /readyz's test | |
//! | [`replicas`] | `--replicas`: a sale confirmed by replicas (WAIT) | |
//! | [`sentinel`] | which server is the master, asked of Redis Sentinel | |
//! | [`permits`] | turns, first come first served | |
//!
//! The HTTP layer is tiny_http 0.12.0 with the patches of
//! `vendor/tiny_http/PATCHES.md`, so that no client can stop or hang it.

pub mod config;
pub mod form;
pub mod handler;
pub mod http;
pub mod output;
pub mod permits;
pub mod pool;
pub mod purchase;
pub mod replicas;
pub mod report;
pub mod sale;
pub mod seller;
pub mod sentinel;
pub mod server;
