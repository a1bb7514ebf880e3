//! Limits on what anyone can make the service do: the server's connections, timeouts and
//! load, and the rate of webhook deliveries.
//!
//! Webhooks are limited twice. Refusals (a bad signature, an unknown account, a malformed
//! request) are counted per client address: past that budget a refused delivery is answered
//! "too many" and not even archived, so junk can neither fill the archive nor keep the writers
//! busy. Verified deliveries are counted per account, with a budget far above what a school's
//! bank sends, so a leaked secret cannot flood the ledger. A sender's real deliveries never
//! spend the refusal budget of the address they come from.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The server's limits; every one is a flag and an environment variable (`config.rs`).
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections open at once; past it a new connection gets `503` and is closed.
    pub max_connections: usize,
    /// Time to send a request's headers, and the longest a kept-alive connection may sit idle
    /// between requests (the same timer covers both).
    pub header_read_timeout: Duration,
    /// Time to send a request's body.
    pub body_read_timeout: Duration,
    /// API requests in progress at once; past it `503` with `Retry-After`.
    pub max_in_flight: usize,
    /// On SIGTERM: how long requests in flight may take before their connections are closed.
    pub shutdown_grace: Duration,
    /// Most bytes of a request's head (request line and headers) the server reads.
    pub max_head_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_in_flight: 256,
            shutdown_grace: Duration::from_secs(10),
            max_head_bytes: 64 * 1024,
        }
    }
}

/// Webhook budgets.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRates {
    /// Refused deliveries per client address: a burst, then this many per second.
    pub refusals_burst: u32,
    pub refusals_per_second: u32,
    /// Verified deliveries per provider account: a burst, then this many per second.
    pub account_burst: u32,
    pub account_per_second: u32,
}

impl Default for WebhookRates {
    fn default() -> Self {
        Self {
            refusals_burst: 100,
            refusals_per_second: 10,
            account_burst: 2_000,
            account_per_second: 1_000,
        }
    }
}

/// The address a request came from, as the server saw it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

#[derive(Clone)]
pub struct WebhookLimits {
    refusals: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    accounts: Arc<DefaultKeyedRateLimiter<i64>>,
    checks: Arc<AtomicU64>,
}

impl Default for WebhookLimits {
    fn default() -> Self {
        Self::new(WebhookRates::default())
    }
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let one = NonZeroU32::MIN;
    Quota::per_second(NonZeroU32::new(per_second).unwrap_or(one))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(one))
}

/// Keys an address: IPv6 by its /64, which one host is usually given whole, so rotating
/// addresses inside it buys no budget.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl WebhookLimits {
    pub fn new(rates: WebhookRates) -> Self {
        Self {
            refusals: Arc::new(RateLimiter::keyed(quota(
                rates.refusals_per_second,
                rates.refusals_burst,
            ))),
            accounts: Arc::new(RateLimiter::keyed(quota(
                rates.account_per_second,
                rates.account_burst,
            ))),
            checks: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Spends one refusal of `ip`'s budget; false once it is spent.
    pub fn refusal(&self, ip: IpAddr) -> bool {
        self.tidy();
        self.refusals.check_key(&address_key(ip)).is_ok()
    }

    /// Spends one verified delivery of `account`'s budget; false once it is spent.
    pub fn delivery(&self, account: i64) -> bool {
        self.tidy();
        self.accounts.check_key(&account).is_ok()
    }

    /// Now and then, forgets keys whose budget is whole again, so the maps stay as small as
    /// the traffic of the last few seconds.
    fn tidy(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.refusals.retain_recent();
            self.accounts.retain_recent();
        }
    }
}

/// Failed attempts counted per key in fixed windows: past `max` failures in a window, the key
/// is refused until the window ends. Only failures count, so parents behind one address (a
/// school's or a carrier's NAT) who open their own links never spend it.
pub struct FailureBudget<K> {
    max: u32,
    window: Duration,
    windows: std::sync::Mutex<std::collections::HashMap<K, (std::time::Instant, u32)>>,
}

/// Keys kept at most; past it, windows that ended are forgotten first, then the map is cleared
/// (a flood of distinct keys must not grow memory without bound).
const MAX_KEYS: usize = 100_000;

impl<K: std::hash::Hash + Eq + Clone> FailureBudget<K> {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max: max.max(1),
            window,
            windows: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// How long `key` is still refused, if its budget is spent.
    pub fn refused_for(&self, key: &K) -> Option<Duration> {
        let now = std::time::Instant::now();
        let map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let (start, n) = map.get(key)?;
        let left = self.window.checked_sub(now.duration_since(*start))?;
        (*n >= self.max).then_some(left)
    }

    /// Counts one failure of `key`.
    pub fn fail(&self, key: K) {
        let now = std::time::Instant::now();
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS && !map.contains_key(&key) {
            let window = self.window;
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let entry = map.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

/// Budgets of failed parent-link attempts: per client address (IPv6 by its /64) and per link
/// prefix (so guesses aimed at one printed link are slowed whatever address they come from).
#[derive(Clone)]
pub struct LinkLimits {
    addresses: Arc<FailureBudget<IpAddr>>,
    prefixes: Arc<FailureBudget<String>>,
}

impl Default for LinkLimits {
    fn default() -> Self {
        Self::new(20, 5, Duration::from_secs(600))
    }
}

impl LinkLimits {
    pub fn new(per_address: u32, per_prefix: u32, window: Duration) -> Self {
        Self {
            addresses: Arc::new(FailureBudget::new(per_address, window)),
            prefixes: Arc::new(FailureBudget::new(per_prefix, window)),
        }
    }

    /// How long an attempt from `ip` at a link starting `prefix` is still refused.
    pub fn refused_for(&self, ip: IpAddr, prefix: &str) -> Option<Duration> {
        let a = self.addresses.refused_for(&address_key(ip));
        let p = self.prefixes.refused_for(&prefix.to_string());
        a.into_iter().chain(p).max()
    }

    pub fn fail(&self, ip: IpAddr, prefix: &str) {
        self.addresses.fail(address_key(ip));
        self.prefixes.fail(prefix.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_budgeted_per_address_and_per_prefix() {
        let limits = LinkLimits::new(3, 2, Duration::from_secs(60));
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "203.0.113.8".parse().unwrap();
        assert!(limits.refused_for(a, "abc").is_none());
        limits.fail(a, "abc");
        limits.fail(a, "abc");
        assert!(
            limits.refused_for(a, "xyz").is_none(),
            "the address has one left"
        );
        assert!(
            limits.refused_for(b, "abc").is_some(),
            "the prefix is spent"
        );
        limits.fail(a, "xyz");
        assert!(
            limits.refused_for(a, "new").is_some(),
            "the address is spent"
        );
        assert!(limits.refused_for(b, "new").is_none());
    }

    #[test]
    fn a_window_ends() {
        let budget = FailureBudget::new(1, Duration::from_millis(30));
        budget.fail(1);
        assert!(budget.refused_for(&1).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(budget.refused_for(&1).is_none());
        budget.fail(1);
        assert!(
            budget.refused_for(&1).is_some(),
            "a new window counts afresh"
        );
    }

    #[test]
    fn refusals_are_budgeted_per_address_and_ipv6_per_64() {
        let limits = WebhookLimits::new(WebhookRates {
            refusals_burst: 3,
            refusals_per_second: 1,
            ..WebhookRates::default()
        });
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "203.0.113.8".parse().unwrap();
        assert!((0..3).all(|_| limits.refusal(a)));
        assert!(!limits.refusal(a), "the fourth refusal in a burst of three");
        assert!(limits.refusal(b), "another address has its own budget");
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!((0..3).all(|_| limits.refusal(v6a)));
        assert!(!limits.refusal(v6b), "the same /64 shares one budget");
    }

    #[test]
    fn accounts_have_budgets_of_their_own() {
        let limits = WebhookLimits::new(WebhookRates {
            account_burst: 2,
            account_per_second: 1,
            ..WebhookRates::default()
        });
        assert!(limits.delivery(1) && limits.delivery(1));
        assert!(!limits.delivery(1));
        assert!(limits.delivery(2));
    }
}
