//! What a real server adds beyond the tutorial, each a piece that knows
//! nothing of the sale: these modules use no module outside this folder, so
//! the lesson files above use them and never the other way round.

pub mod checks;
pub mod clients;
pub mod deadline;
pub mod growth;
pub mod logs;
pub mod outage;
pub mod output;
pub mod permits;
pub mod redact;
pub mod renewal;
pub mod replicas;
pub mod rights;
pub mod sentinel;
