//! What a buyer is told, in one place: the tutorial's `response_num`, the
//! line the Python prints for it, and its `jsonify`. The strategies of
//! `purchase` decide which; `report` prints the line, `handler` sends the JSON.

use serde_json::{Value, json};

/// What a buyer is told: the tutorial's `response_num`, plus -3.
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

    /// The line the server prints for it, as the Python prints.
    pub fn line(self) -> String {
        match self {
            // Python: print(f'user{userid}Successful Secondary Kill!')
            //         print('Current Remaining Merchandise Number:%d' % ...)
            Answer::Bought { remaining } => format!("bought; {remaining} left"),
            // Python: print('The second kill is over')
            Answer::SoldOut => "sold out".into(),
            // Python: print(f'user%{userid}Commodity has been killed in seconds, no repetition!')
            Answer::Repeat => "already bought; one each".into(),
            Answer::Conflict => "lost the race; the stock changed after WATCH".into(),
        }
    }

    /// The buyer's answer. Python: return jsonify(user_id=userid, response_num=...)
    pub fn json(self, user_id: &str) -> Value {
        json!({ "user_id": user_id, "response_num": self.code() })
    }
}

/// A purchase's answer, and how many of its EXECs a WATCH aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub answer: Answer,
    pub conflicts: u32,
}

impl From<Answer> for Outcome {
    fn from(answer: Answer) -> Outcome {
        let conflicts = u32::from(answer == Answer::Conflict);
        Outcome { answer, conflicts }
    }
}
