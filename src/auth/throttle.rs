//! Failed-login throttling, per user name and per source address. Each key keeps
//! the times of its recent failures; past the limit within the window, attempts
//! are refused with 429 before any key is checked.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::ThrottleConfig;

/// Entries kept per map before old ones are swept, so a flood of names cannot grow memory.
const SWEEP_AT: usize = 100_000;

pub struct Throttle {
    cfg: ThrottleConfig,
    users: Mutex<HashMap<String, VecDeque<Instant>>>,
    addresses: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Throttle {
        Throttle {
            cfg,
            users: Mutex::new(HashMap::new()),
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` when this user or address has failed too often.
    pub fn check(&self, user: &str, source: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let by_user = wait(
            &mut lock(&self.users),
            user,
            self.cfg.failures_per_user,
            self.cfg.window,
            now,
        );
        let by_addr = wait(
            &mut lock(&self.addresses),
            &source,
            self.cfg.failures_per_address,
            self.cfg.window,
            now,
        );
        by_user.max(by_addr).map(|d| d.as_secs().max(1))
    }

    pub fn failed(&self, user: &str, source: IpAddr) {
        let now = Instant::now();
        record(
            &mut lock(&self.users),
            user.to_owned(),
            self.cfg.window,
            now,
        );
        record(&mut lock(&self.addresses), source, self.cfg.window, now);
    }

    /// A successful login clears the user's failures (not the address's).
    pub fn succeeded(&self, user: &str) {
        lock(&self.users).remove(user);
    }
}

fn wait<K, Q>(
    map: &mut HashMap<K, VecDeque<Instant>>,
    key: &Q,
    limit: u32,
    window: Duration,
    now: Instant,
) -> Option<Duration>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    let times = map.get_mut(key)?;
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        times.pop_front();
    }
    if times.len() < limit as usize {
        return None;
    }
    let oldest = *times.front()?;
    Some(window.saturating_sub(now.duration_since(oldest)))
}

fn record<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, VecDeque<Instant>>,
    key: K,
    window: Duration,
    now: Instant,
) {
    if map.len() >= SWEEP_AT {
        map.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.duration_since(*t) < window)
        });
    }
    let times = map.entry(key).or_default();
    times.push_back(now);
    // only the newest `limit` failures matter; cap the queue regardless of the limit
    if times.len() > 1024 {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_user: u32, per_addr: u32) -> Throttle {
        Throttle::new(ThrottleConfig {
            failures_per_user: per_user,
            failures_per_address: per_addr,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn user_limit() {
        let t = throttle(3, 100);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(t.check("a:b", ip), None);
            t.failed("a:b", ip);
        }
        let wait = t.check("a:b", ip).expect("throttled");
        assert!((1..=60).contains(&wait));
        assert_eq!(t.check("a:c", ip), None, "other users are not affected");
        t.succeeded("a:b");
        assert_eq!(t.check("a:b", ip), None);
    }

    #[test]
    fn address_limit_spans_users() {
        let t = throttle(100, 2);
        let ip: IpAddr = "::1".parse().unwrap();
        t.failed("a:1", ip);
        t.failed("a:2", ip);
        assert!(t.check("a:3", ip).is_some());
        assert!(t.check("a:3", "127.0.0.2".parse().unwrap()).is_none());
    }
}
