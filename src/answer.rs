//! The answer to a purchase: the tutorial's `response_num`.

/// What a buyer is told. The codes are the tutorial's, plus -3 for a lost race.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 1: bought one. Python: `jsonify(user_id=userid, response_num=1)`.
    Bought { remaining: i64 },
    /// -1: nothing left. Python: `print('The second kill is over')`.
    SoldOut,
    /// -2: this user id already bought. Python: `rpipe.sismember('user:id', userid)`.
    Repeat,
    /// -3: another buyer changed the stock between WATCH and EXEC, so Redis
    /// refused the transaction. The Python has no answer for it (`execute()`
    /// raises WatchError and Flask answers 500); it is how stock stays unsold.
    Conflict,
}

impl Answer {
    /// The `response_num` sent to the buyer.
    pub fn code(self) -> i64 {
        match self {
            Answer::Bought { .. } => 1,
            Answer::SoldOut => -1,
            Answer::Repeat => -2,
            Answer::Conflict => -3,
        }
    }

    /// The answer for a code and the stock after it, as the Lua script
    /// returns them.
    pub fn from_code(code: i64, stock: i64) -> Option<Answer> {
        [
            Answer::Bought { remaining: stock },
            Answer::SoldOut,
            Answer::Repeat,
            Answer::Conflict,
        ]
        .into_iter()
        .find(|answer| answer.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for answer in [
            Answer::Bought { remaining: 7 },
            Answer::SoldOut,
            Answer::Repeat,
            Answer::Conflict,
        ] {
            assert_eq!(Answer::from_code(answer.code(), 7), Some(answer));
        }
        assert_eq!(Answer::from_code(0, 7), None);
    }
}
