//! Which of some commands a Redis user may not run (Redis ACLs). Each is
//! queued in a MULTI that is then discarded, so none runs, and each is
//! checked with its keys as it would be run. WATCH cannot wait in a MULTI:
//! it is run alone, on the keys it names, and undone.

use redis::{Cmd, Connection, RedisResult, Value};

/// Of `commands` (each with the words that name it), those the user of
/// `con` may not run, and those of `watched` it may not WATCH.
pub fn refused(
    con: &mut Connection,
    commands: &[(String, Cmd)],
    watched: &[&str],
) -> RedisResult<Vec<String>> {
    let mut refused = Vec::new();
    if !watched.is_empty() {
        let replies: Vec<RedisResult<Value>> = redis::pipe()
            .cmd("WATCH")
            .arg(watched)
            .cmd("UNWATCH")
            .ignore_errors()
            .query(con)?;
        if replies.first().is_some_and(no_permission) {
            refused.push(format!("WATCH on {}", watched.join(" ")));
        }
    }
    // Without MULTI, the commands after it would run: it is asked alone.
    let multi: Vec<RedisResult<Value>> = redis::pipe().cmd("MULTI").ignore_errors().query(con)?;
    if multi.first().is_some_and(no_permission) {
        refused.push("MULTI".to_string());
        return Ok(refused);
    }
    // The first alone (give a write first): a Redis whose writes are paused
    // (CLIENT PAUSE WRITE) holds each queued write, and a pipeline waits out
    // each reply's timeout in turn; one is enough to tell.
    let mut replies: Vec<RedisResult<Value>> = Vec::new();
    let mut queued = redis::pipe();
    for (n, (_, command)) in commands.iter().enumerate() {
        queued.add_command(command.clone());
        if n == 0 {
            replies.extend(queued.ignore_errors().query::<Vec<_>>(con)?);
            queued = redis::pipe();
        }
    }
    queued.cmd("DISCARD");
    replies.extend(queued.ignore_errors().query::<Vec<_>>(con)?);
    let names = commands.iter().map(|(name, _)| name);
    refused.extend(
        names
            .zip(&replies)
            .filter(|(_, reply)| no_permission(reply))
            .map(|(name, _)| name.clone()),
    );
    Ok(refused)
}

fn no_permission(reply: &RedisResult<Value>) -> bool {
    reply
        .as_ref()
        .is_err_and(|err| err.code() == Some("NOPERM"))
}
