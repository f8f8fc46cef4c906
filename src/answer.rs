//! What a buyer is told, in one place: the tutorial's `response_num`, the
//! line the Python prints for it, and its `jsonify`. The strategies of
//! `purchase` decide which; `report` prints the line, `handler` sends the JSON.

use serde::Serialize;

/// What a buyer is told: the tutorial's `response_num`, plus -3 and -4.
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
    /// -4: the sale opens later (`--opens-in`, `--opens-at`), in the ms it
    /// holds; nothing was bought. The tutorial's sale is open at once.
    NotOpen { opens_in_ms: u64 },
}

impl Answer {
    /// The `response_num` sent to the buyer.
    pub fn code(self) -> i64 {
        match self {
            Answer::Bought { .. } => 1,
            Answer::SoldOut => -1,
            Answer::Repeat => -2,
            Answer::Conflict => -3,
            Answer::NotOpen { .. } => -4,
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
            Answer::NotOpen { opens_in_ms } => {
                format!(
                    "not open yet; opens in {:.1} s",
                    opens_in_ms as f64 / 1000.0
                )
            }
        }
    }

    /// The buyer's answer. Python: return jsonify(user_id=userid, response_num=...)
    pub fn json(self, user_id: &str) -> BuyerAnswer<'_> {
        let opens_in_ms = match self {
            Answer::NotOpen { opens_in_ms } => Some(opens_in_ms),
            _ => None,
        };
        BuyerAnswer {
            opens_in_ms,
            response_num: self.code(),
            user_id,
        }
    }
}

/// What a buyer reads, its keys in the order jsonify sorts them. A struct,
/// not a `json!` map: a map took four allocations a purchase.
#[derive(Serialize)]
pub struct BuyerAnswer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    opens_in_ms: Option<u64>,
    response_num: i64,
    user_id: &'a str,
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
