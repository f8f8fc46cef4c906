//! The purchase: the POST branch of the Python `fun_send`, run on one pooled
//! connection.

use redis::{Commands, Connection};

use crate::answer::Answer;
use crate::keys;

/// Why a purchase has no answer for the buyer.
#[derive(Debug)]
pub enum PurchaseError {
    /// `commodity:num` is missing: no sale was started, or Redis lost it.
    NoSale,
    /// Redis could not be reached, or answered with an error.
    Redis(redis::RedisError),
}

impl From<redis::RedisError> for PurchaseError {
    fn from(err: redis::RedisError) -> Self {
        PurchaseError::Redis(err)
    }
}

/// The tutorial's optimistic lock: WATCH the stock, check it and the buyer,
/// then MULTI/DECR/SADD/EXEC. Redis refuses the EXEC (nil) when anyone changed
/// the stock after our WATCH, so two buyers can never take the last item.
pub fn watch(con: &mut Connection, user_id: &str) -> Result<Answer, PurchaseError> {
    // Python: rpipe.watch('commodity:num')
    redis::cmd("WATCH").arg(keys::STOCK).exec(con)?;
    // Python: if int(rpipe.get('commodity:num')) < 1:
    let stock: Option<i64> = con.get(keys::STOCK)?;
    let early = match stock {
        None => Some(Err(PurchaseError::NoSale)),
        Some(stock) if stock < 1 => Some(Ok(Answer::SoldOut)),
        // Python: elif rpipe.sismember('user:id', userid):
        Some(_) if con.sismember(keys::WINNERS, user_id)? => Some(Ok(Answer::Repeat)),
        Some(_) => None,
    };
    if let Some(early) = early {
        // The Python returns here still watching; a pooled connection must not.
        redis::cmd("UNWATCH").exec(con)?;
        return early;
    }
    // Python: rpipe.multi(); rpipe.decr('commodity:num', amount=1);
    //         rpipe.sadd('user:id', userid); reslist = rpipe.execute()
    let exec: Option<(i64, i64)> = redis::pipe()
        .atomic()
        .decr(keys::STOCK, 1)
        .sadd(keys::WINNERS, user_id)
        .query(con)?;
    Ok(match exec {
        Some((remaining, _added)) => Answer::Bought { remaining },
        None => Answer::Conflict,
    })
}
