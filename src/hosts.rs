//! The names this server answers to: a request whose `Host` names another
//! is refused (421), against DNS rebinding. A page of another site whose
//! own name the attacker points at this server's address would otherwise
//! be the same site to the visitor's browser, and could buy and read the
//! stats through it; its requests carry that name in `Host`.
//!
//! An address written out (`192.0.2.2`, `[::1]`) is always answered:
//! rebinding needs a name, and a page loaded from this server's address is
//! this server's own page. So are `localhost`, this machine's own name, and
//! the names given with `--allowed-host`.

use std::net::IpAddr;

use tiny_http::ResponseBox;

use crate::http::{self, Cause};

/// The names a `Host` may hold.
pub struct Hosts {
    names: Vec<String>,
}

impl Hosts {
    /// `localhost`, this machine's name (and `NAME.local`, as mDNS gives
    /// it), and `allowed` (`--allowed-host`).
    pub fn new(allowed: &[String]) -> Hosts {
        let mut names = vec!["localhost".to_string()];
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let machine = machine.trim().to_ascii_lowercase();
        if !machine.is_empty() {
            names.push(format!("{machine}.local"));
            names.push(machine);
        }
        names.extend(allowed.iter().map(|name| normal(name).to_string()));
        Hosts { names }
    }

    /// The 421 for a request whose `Host` names no name of this server's;
    /// none for one that may be answered (also one without a `Host`, as an
    /// HTTP/1.0 client may send: a browser always sends one).
    pub fn refusal(&self, host: Option<&str>) -> Option<ResponseBox> {
        let name = normal(host?);
        let answered = name.parse::<IpAddr>().is_ok()
            || name.ends_with(".localhost")
            || self.names.contains(&name);
        if answered {
            return None;
        }
        let words = format!(
            "this server does not answer to the name {name}: a page of another site may have \
             pointed that name at it (DNS rebinding). It answers to its addresses and to {}; \
             to open the sale by this name, start seckill with --allowed-host {name}",
            self.names.join(", ")
        );
        Some(http::error(421, Cause::WrongHost, words))
    }
}

/// A `Host` value's name: no port, no brackets, no final dot, lower case.
fn normal(host: &str) -> String {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        // [::1]:5000
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        },
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_this_server_and_addresses_are_answered_others_are_not() {
        let hosts = Hosts::new(&["Shop.Example".to_string()]);
        for host in [
            "127.0.0.1:5000",
            "192.0.2.2",
            "[::1]:5000",
            "localhost:5000",
            "LOCALHOST",
            "app.localhost",
            "shop.example.",
            "shop.example:5000",
        ] {
            assert!(hosts.refusal(Some(host)).is_none(), "{host}");
        }
        assert!(hosts.refusal(None).is_none(), "no Host: HTTP/1.0");
        for host in [
            "evil.test:5000",
            "evil.test",
            "localhost.evil.test",
            "shop.example.evil",
        ] {
            assert!(hosts.refusal(Some(host)).is_some(), "{host}");
        }
    }
}
