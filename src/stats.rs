//! The figures of a running server, one struct read two ways: the JSON of
//! `/seckill/stats` (the page's live figures) and Prometheus's text format
//! at `/metrics`. The counters of its purchases are declared once, a line
//! each, in `counters!`; a purchase's time to its answer goes into a
//! histogram.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// Declares the counters: each variant, its name in `/seckill/stats`, and
/// what it counts (the HELP of `/metrics`).
macro_rules! counters {
    ($($variant:ident => $name:literal, $help:literal;)*) => {
        /// What this server counts of its purchases.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Count {
            $($variant,)*
        }

        impl Count {
            pub const ALL: &[Count] = &[$(Count::$variant,)*];

            /// Its name in `/seckill/stats` and in `/metrics`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Count::$variant => $name,)*
                }
            }

            /// What it counts.
            pub fn help(self) -> &'static str {
                match self {
                    $(Count::$variant => $help,)*
                }
            }
        }
    };
}

counters! {
    Requests => "requests", "purchases asked for: every POST /seckill";
    Success => "success", "purchases answered 1: bought";
    SoldOut => "sold_out", "purchases answered -1: sold out";
    Repeat => "repeat", "purchases answered -2: already bought";
    Conflicts => "conflicts", "EXECs a WATCH aborted, retried or not (-3 when not)";
    Errors => "errors", "purchases answered 4xx or 5xx for another reason than those below";
    Busy => "busy", "purchases answered 503 busy: the server overloaded";
    MaybeSold => "maybe_sold", "purchases answered 503 maybe_sold: Redis may have sold them";
    Unreplicated => "unreplicated", "purchases answered 503 unreplicated: sold on the master only";
    NotOpen => "not_open", "purchases answered -4: before the opening";
}

/// The counters, an atomic each, bumped by every request thread.
#[derive(Debug)]
pub struct Counts([AtomicU64; Count::ALL.len()]);

impl Default for Counts {
    fn default() -> Counts {
        Counts(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Counts {
    pub fn bump(&self, count: Count, by: u64) {
        self.0[count as usize].fetch_add(by, Ordering::Relaxed);
    }

    pub fn get(&self, count: Count) -> u64 {
        self.0[count as usize].load(Ordering::Relaxed)
    }

    /// The counters at one moment.
    pub fn read(&self) -> Counted {
        Counted(std::array::from_fn(|n| self.0[n].load(Ordering::Relaxed)))
    }
}

/// The counters at one moment, each by its `Count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted([u64; Count::ALL.len()]);

impl Counted {
    pub fn get(&self, count: Count) -> u64 {
        self.0[count as usize]
    }
}

/// In `/seckill/stats`, each counter a field of its own.
impl Serialize for Counted {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(Count::ALL.len()))?;
        for &count in Count::ALL {
            map.serialize_entry(count.name(), &self.get(count))?;
        }
        map.end()
    }
}

/// The upper bounds of the histogram of a purchase's time, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0];

/// How long purchases took, from the request read to its answer ready.
#[derive(Debug)]
pub struct Latency {
    /// Purchases that took at most each bound (not yet summed up).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Default for Latency {
    fn default() -> Latency {
        Latency {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl Latency {
    pub fn record(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Everything `/seckill/stats` shows, and `/metrics` with it: the sale as
/// Redis holds it, this server's counters, the opening, the orders, the
/// queue for Redis.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub strategy: String,
    pub initial_stock: i64,
    pub remaining: i64,
    pub winners: i64,
    #[serde(flatten)]
    pub counts: Counted,
    /// When the sale opens (RFC 3339), or null for a sale open from its start.
    pub opens_at: Option<String>,
    /// 0 once open.
    pub opens_in_ms: u64,
    /// As the writer last counted them; null with `--orders off`.
    pub orders_written: Option<u64>,
    pub orders_counted_ms_ago: Option<u64>,
    pub orders_waiting: Option<u64>,
    pub oldest_waiting_ms: Option<u64>,
    pub orders_dead: Option<u64>,
    /// Purchases waiting for their turn at a Redis connection now.
    pub waiting_for_redis: usize,
    pub longest_wait_ms: u64,
    /// What `/metrics` adds: the connections of the Redis pool, and those
    /// of clients open now.
    #[serde(skip)]
    pub redis_connections: u32,
    #[serde(skip)]
    pub open_connections: Option<usize>,
}

impl Stats {
    /// Prometheus's text format (version 0.0.4): the same figures, and the
    /// histogram of a purchase's time.
    pub fn metrics(&self, latency: &Latency) -> String {
        let mut text = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
            let _ = writeln!(
                text,
                "# HELP seckill_{name} {help}\n# TYPE seckill_{name} {kind}"
            );
            for (labels, value) in lines {
                let _ = writeln!(text, "seckill_{name}{labels} {value}");
            }
        };
        let one = |value: String| vec![(String::new(), value)];
        let counters: Vec<(String, String)> = Count::ALL
            .iter()
            .map(|&count| {
                let label = format!("{{outcome=\"{}\"}}", count.name());
                (label, self.counts.get(count).to_string())
            })
            .collect();
        let helps: Vec<String> = Count::ALL
            .iter()
            .map(|count| format!("{}: {}", count.name(), count.help()))
            .collect();
        metric(
            "purchases_total",
            "counter",
            &format!("What this server answered purchases ({})", helps.join("; ")),
            &counters,
        );
        let mut cumulative = 0;
        let mut buckets: Vec<(String, String)> = BUCKETS
            .iter()
            .zip(&latency.buckets)
            .map(|(bound, count)| {
                cumulative += count.load(Ordering::Relaxed);
                (format!("_bucket{{le=\"{bound}\"}}"), cumulative.to_string())
            })
            .collect();
        let count = latency.count.load(Ordering::Relaxed);
        let sum = latency.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        buckets.push(("_bucket{le=\"+Inf\"}".to_string(), count.to_string()));
        buckets.push(("_sum".to_string(), sum.to_string()));
        buckets.push(("_count".to_string(), count.to_string()));
        metric(
            "purchase_seconds",
            "histogram",
            "How long a purchase took, from its request read to its answer",
            &buckets,
        );
        let gauges = [
            (
                "stock_initial",
                "The stock the sale started with",
                Some(self.initial_stock.to_string()),
            ),
            (
                "stock_remaining",
                "The stock left in Redis",
                Some(self.remaining.to_string()),
            ),
            (
                "winners",
                "The winners in Redis",
                Some(self.winners.to_string()),
            ),
            (
                "orders_written",
                "Orders in the database, as the writer last counted them",
                self.orders_written.map(|n| n.to_string()),
            ),
            (
                "orders_waiting",
                "Orders waiting in the stream to be written",
                self.orders_waiting.map(|n| n.to_string()),
            ),
            (
                "orders_dead",
                "Entries that held no order, in the dead letters",
                self.orders_dead.map(|n| n.to_string()),
            ),
            (
                "redis_connections",
                "Connections to Redis open now, in the pool",
                Some(self.redis_connections.to_string()),
            ),
            (
                "redis_waiting",
                "Purchases waiting for their turn at a Redis connection",
                Some(self.waiting_for_redis.to_string()),
            ),
            (
                "open_connections",
                "Client connections open",
                self.open_connections.map(|n| n.to_string()),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                metric(name, "gauge", help, &one(value));
            }
        }
        text
    }
}
