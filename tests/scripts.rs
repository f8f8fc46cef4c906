//! The development scripts a teacher runs: a Redis where `--redis` or
//! `REDIS_URL` points, with its data kept per port; a PostgreSQL for the
//! orders in one command. Each on a free port, its data in a folder of the
//! test's own, stopped at the end, also when the test fails.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::time::Duration;

use common::process::output_within;
use common::redis_server::free_port;

fn script(name: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command =
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/").to_string() + name);
    command.args(args).envs(env.iter().copied());
    output_within(&mut command, Duration::from_secs(120)).expect("cannot run the script")
}

fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A folder anyone may enter: PostgreSQL runs as its own user under root.
fn data_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Stops the Redis on `port` when dropped.
struct StopRedis(u16);

impl Drop for StopRedis {
    fn drop(&mut self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.0.to_string(), "shutdown", "nosave"])
            .output();
    }
}

#[test]
fn redis_dev_starts_redis_where_the_url_points_with_its_own_data() {
    let data = data_folder();
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let env = [
        ("REDIS_URL", url.as_str()),
        ("SECKILL_DATA", data.path().to_str().unwrap()),
    ];
    let _stop = StopRedis(port);
    let out = script("redis-dev.sh", &env, &[]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains(&format!("started redis-server on 127.0.0.1:{port}")),
        "{}",
        said(&out)
    );
    assert!(data.path().join(format!("redis-{port}/redis.log")).exists());
    let mut con = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    // Run again: the Redis there is used, and said as a fact, not a warning.
    let again = script("redis-dev.sh", &env, &[]);
    assert!(again.status.success());
    assert_eq!(
        said(&again).trim(),
        format!("using the Redis that answers at {url}")
    );
}

#[test]
fn run_sh_follows_the_redis_flag_and_redis_url() {
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib.sh");
    for (env, args, url) in [
        (
            None,
            "--bind 0.0.0.0:5000 --redis redis://127.0.0.1:6390/0",
            "redis://127.0.0.1:6390/0",
        ),
        (
            None,
            "--redis=redis://127.0.0.1:6391/0 --join",
            "redis://127.0.0.1:6391/0",
        ),
        (
            Some("redis://127.0.0.1:6392/0"),
            "--stock 5",
            "redis://127.0.0.1:6392/0",
        ),
        (None, "--stock 5", "redis://127.0.0.1:6379/0"),
    ] {
        let mut command = Command::new("bash");
        command.args(["-c", &format!(". {lib}; redis_url_of {args}")]);
        command.env_remove("REDIS_URL");
        if let Some(env) = env {
            command.env("REDIS_URL", env);
        }
        let out = output_within(&mut command, Duration::from_secs(10)).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), url, "{args}");
    }
}

/// Stops the PostgreSQL of postgres-dev.sh when dropped.
struct StopPostgres<'a>(&'a [(&'a str, &'a str)]);

impl Drop for StopPostgres<'_> {
    fn drop(&mut self) {
        let _ = script("postgres-dev.sh", self.0, &["stop"]);
    }
}

#[test]
fn postgres_dev_starts_a_private_cluster_and_stops_it() {
    let data = data_folder();
    let port = free_port().to_string();
    let env = [
        ("PGPORT", port.as_str()),
        ("SECKILL_DATA", data.path().to_str().unwrap()),
    ];
    let stop = StopPostgres(&env);
    let out = script("postgres-dev.sh", &env, &[]);
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    assert!(text.contains(&format!("--orders {url}")), "{text}");
    assert!(
        text.contains(&format!("PGPORT={port}")) && text.contains("stop"),
        "{text}"
    );
    let mut psql = Command::new("psql");
    psql.args(["-X", "-tA", "-c", "SELECT 1", &url]);
    let answer = output_within(&mut psql, Duration::from_secs(30)).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&answer.stdout).trim(),
        "1",
        "{}",
        said(&answer)
    );
    drop(stop);
    let answer = output_within(&mut psql, Duration::from_secs(30)).unwrap();
    assert!(!answer.status.success(), "stopped, it answers no more");
}
