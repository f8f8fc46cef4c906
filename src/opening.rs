//! The moment a sale opens (`--opens-in`, `--opens-at`): real flash sales
//! open at a set time, and a class wants to see every click land in the
//! same second. The tutorial's sale is open from the start.
//!
//! The moment is kept in Redis with the sale (`commodity:opens`), as
//! Redis's clock reads it, so servers that `--join` agree. Each server reads
//! it with Redis's clock at start or join, and again each second with its
//! mark on the sale, and counts on its own steady clock in between: a
//! purchase costs no extra round trip, no server's wall clock is asked, and
//! an opening changed in Redis (`redis-cli set commodity:opens MS`) reaches
//! every server within a second.

use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, NaiveTime, SecondsFormat, TimeZone, Timelike};

/// When a fresh sale opens, as asked at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opens {
    /// At once, as in the tutorial.
    Now,
    /// This many ms after the start, by Redis's clock.
    In(u64),
    /// At this time, in ms since the Unix epoch.
    At(i64),
}

/// A sale's opening as one server sees it.
#[derive(Clone, Copy, Debug)]
pub struct Opening {
    /// In ms since the Unix epoch, by Redis's clock.
    pub at_ms: i64,
    /// The same moment on this server's steady clock.
    at: Instant,
}

impl Opening {
    /// The opening at `at_ms`, seen when Redis's clock read `redis_now_ms`.
    pub fn new(at_ms: i64, redis_now_ms: i64) -> Opening {
        let now = Instant::now();
        let ahead = Duration::from_millis(at_ms.saturating_sub(redis_now_ms).max(0) as u64);
        Opening {
            at_ms,
            at: now + ahead,
        }
    }

    /// How long until it opens; None once open.
    pub fn wait(&self) -> Option<Duration> {
        let left = self.at.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// When it opens, as RFC 3339 in this machine's time zone.
    pub fn to_rfc3339(&self) -> String {
        Local.timestamp_millis_opt(self.at_ms).single().map_or_else(
            || self.at_ms.to_string(),
            |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
        )
    }
}

/// The opening as this server knows it now, read again each second.
#[derive(Debug, Default)]
pub struct Schedule(RwLock<Option<Opening>>);

impl Schedule {
    pub fn new(opening: Option<Opening>) -> Schedule {
        Schedule(RwLock::new(opening))
    }

    pub fn get(&self) -> Option<Opening> {
        *self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set(&self, opening: Option<Opening>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = opening;
    }
}

/// How far ahead `--opens-at` may be: a sale is opened by a server that
/// runs, and the page shows times within its years.
const FURTHEST: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// `--opens-in`: a number of seconds, at most a day; in ms.
pub fn seconds_from_now(text: &str) -> Result<u64, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if (0.0..=86_400.0).contains(&seconds) {
        Ok((seconds * 1000.0).round() as u64)
    } else {
        Err(format!(
            "{text} s: give a number of seconds from 0 to a day"
        ))
    }
}

/// `--opens-at`: a time of day (`14:30`, `14:30:15`: its next coming, in
/// this machine's time zone) or RFC 3339 (`2026-11-30T14:30:00+01:00`); in
/// ms since the Unix epoch. A moment past is refused.
pub fn time(text: &str) -> Result<i64, String> {
    let now = Local::now();
    // chrono reads a 60th second as a leap second, and means the next minute.
    let leap = || format!("`{text}`: no minute has a 60th second here; give 0 to 59");
    let at = if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        if at.nanosecond() >= 1_000_000_000 {
            return Err(leap());
        }
        at.timestamp_millis()
    } else {
        let time = NaiveTime::parse_from_str(text, "%H:%M:%S")
            .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
            .map_err(|_| {
                format!(
                    "`{text}` is neither a time of day (14:30 or 14:30:15) nor RFC 3339 \
                     (2026-11-30T14:30:00+01:00)"
                )
            })?;
        if time.nanosecond() >= 1_000_000_000 {
            return Err(leap());
        }
        let today = now.date_naive().and_time(time);
        let next = [today, today + chrono::Days::new(1)]
            .into_iter()
            .filter_map(|day| Local.from_local_datetime(&day).earliest())
            .find(|at| *at > now)
            .ok_or_else(|| format!("`{text}`: no such time of day comes in this time zone"))?;
        next.timestamp_millis()
    };
    if at <= now.timestamp_millis() {
        return Err(format!("`{text}` is past; give a time to come"));
    }
    if at > (now + FURTHEST).timestamp_millis() {
        return Err(format!(
            "`{text}` is more than {} days ahead; give a time within a week",
            FURTHEST.num_days()
        ));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_and_rfc3339_are_understood() {
        let now = Local::now().timestamp_millis();
        let at = time("23:59:59").unwrap();
        assert!(at > now && at <= now + 86_400_000, "{at} against {now}");
        assert!(time("12:00").unwrap() > now);
        let in_a_day = (Local::now() + chrono::TimeDelta::days(1)).to_rfc3339();
        assert!(time(&in_a_day).unwrap() > now);
        assert!(time("2000-01-01T00:00:00Z").unwrap_err().contains("past"));
        assert!(time("noon").unwrap_err().contains("neither"));
        assert!(time("23:59:60").unwrap_err().contains("60th second"));
        assert!(
            time("2999-01-01T00:00:60Z")
                .unwrap_err()
                .contains("60th second")
        );
        assert!(
            time("9999-12-31T23:59:59-12:00")
                .unwrap_err()
                .contains("within a week")
        );
    }

    #[test]
    fn seconds_are_read_as_ms() {
        assert_eq!(seconds_from_now("30"), Ok(30_000));
        assert_eq!(seconds_from_now("0.5"), Ok(500));
        assert!(seconds_from_now("-1").is_err());
        assert!(seconds_from_now("ten").is_err());
    }

    #[test]
    fn an_opening_counts_down_then_is_open() {
        let opening = Opening::new(10_000, 9_950);
        let wait = opening.wait().expect("50 ms to go");
        assert!(wait <= Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(opening.wait(), None);
    }
}
