//! seckill: the Flask seckill (秒杀, flash sale) tutorial as a Rust server.
//! `main.rs` reads top to bottom like the Python script; each module here is
//! one piece of it.

pub mod answer;
pub mod config;
pub mod form;
pub mod handler;
pub mod keys;
pub mod log;
pub mod permits;
pub mod purchase;
pub mod redis_pool;
pub mod responses;
pub mod routes;
pub mod sale;
pub mod server;
pub mod static_files;
pub mod stats;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub mod thread_caches;
