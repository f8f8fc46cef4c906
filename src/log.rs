//! The server's log: a line per purchase on stdout, as the Python prints.

use crate::answer::Answer;

pub struct Log {
    quiet: bool,
}

impl Log {
    pub fn new(quiet: bool) -> Log {
        Log { quiet }
    }

    /// One line for an answered purchase.
    pub fn answer(&self, user_id: &str, answer: Answer) {
        if self.quiet {
            return;
        }
        match answer {
            // Python: print(f'user{userid}Successful Secondary Kill!')
            //         print('Current Remaining Merchandise Number:%d' % ...)
            Answer::Bought { remaining } => println!("user {user_id}: bought; {remaining} left"),
            // Python: print('The second kill is over')
            Answer::SoldOut => println!("user {user_id}: sold out"),
            // Python: print(f'user%{userid}Commodity has been killed in seconds, no repetition!')
            Answer::Repeat => println!("user {user_id}: already bought; one each"),
            Answer::Conflict => {
                println!("user {user_id}: lost the race; the stock changed after WATCH")
            }
        }
    }

    /// A failure the buyer was told about; always printed, on stderr.
    pub fn failure(&self, what: &str) {
        eprintln!("seckill: {what}");
    }
}
