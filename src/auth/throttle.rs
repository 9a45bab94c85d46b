//! Failed-login throttling that holds a guesser and keeps the owner in. Failures are
//! counted three ways within a window:
//! - per user and source (`failures_per_user_address`): one address guessing one key;
//! - per source (`failures_per_address`): one address trying many users;
//! - per user (`failures_per_user`, a ceiling far above one address's limit): many
//!   addresses guessing one key together.
//!
//! An address over its limit for a user is refused before any key is looked at, right
//! key or not, so no answer depends on the key. One user's keys from one address are
//! checked one at a time, so that guesses sent together count as guesses one after
//! another do. The per-user ceiling does not apply to
//! the addresses the user logged in from lately: a stranger cannot lock the owner out.
//! IPv6 sources count by /64, the block one subscriber holds.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::config::ThrottleConfig;

/// Entries kept per map before old ones are swept, so a flood of names cannot grow memory.
const SWEEP_AT: usize = 100_000;
/// Failure times kept per key: the limits are below this.
const MAX_TIMES: usize = 1024;
/// Addresses remembered per user as the owner's, and for how long after a login.
const KNOWN_PER_USER: usize = 16;
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// Held while one user's key from one address is checked.
pub type Turn = tokio::sync::Mutex<()>;

/// Where failures come from: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Source(IpAddr);

impl Source {
    fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let block = u128::from(v6) & !((1u128 << 64) - 1);
                Source(IpAddr::V6(block.into()))
            }
            v4 => Source(v4),
        }
    }
}

#[derive(Default)]
struct State {
    pairs: HashMap<(String, Source), VecDeque<Instant>>,
    sources: HashMap<Source, VecDeque<Instant>>,
    users: HashMap<String, VecDeque<Instant>>,
    /// Where each user last logged in from, and when.
    known: HashMap<String, Vec<(Source, Instant)>>,
}

pub struct Throttle {
    cfg: ThrottleConfig,
    state: Mutex<State>,
    /// Whose key checks wait for whose (`turn`).
    turns: Mutex<HashMap<(String, Source), Weak<Turn>>>,
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Throttle {
        Throttle {
            cfg,
            state: Mutex::new(State::default()),
            turns: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Some(seconds to wait)` when attempts for `user` from `ip` are refused now.
    pub fn check(&self, user: &str, ip: IpAddr) -> Option<u64> {
        let (source, now, window) = (Source::of(ip), Instant::now(), self.cfg.window);
        let mut st = self.state();
        let by_pair = wait(
            st.pairs.get_mut(&(user.to_owned(), source)),
            self.cfg.failures_per_user_address,
            window,
            now,
        );
        let by_source = wait(
            st.sources.get_mut(&source),
            self.cfg.failures_per_address,
            window,
            now,
        );
        let owner = st.known.get(user).is_some_and(|k| {
            k.iter()
                .any(|(s, at)| *s == source && now.duration_since(*at) < KNOWN_FOR)
        });
        let by_user = if owner {
            None
        } else {
            wait(
                st.users.get_mut(user),
                self.cfg.failures_per_user,
                window,
                now,
            )
        };
        [by_pair, by_source, by_user]
            .into_iter()
            .flatten()
            .max()
            .map(|d| d.as_secs().max(1))
    }

    /// The turn of one user's key checks from one address: they run one at a time, so
    /// that guesses sent together on many connections are held to the limit as guesses
    /// one after another are (each is counted when it fails), and an owner's parallel
    /// first logins wait for the first to be checked instead of being refused.
    pub fn turn(&self, user: &str, ip: IpAddr) -> Arc<Turn> {
        let key = (user.to_owned(), Source::of(ip));
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = turns.get(&key).and_then(Weak::upgrade) {
            return t;
        }
        if turns.len() >= SWEEP_AT {
            turns.retain(|_, t| t.strong_count() > 0);
        }
        let t = Arc::new(Turn::new(()));
        turns.insert(key, Arc::downgrade(&t));
        t
    }

    pub fn failed(&self, user: &str, ip: IpAddr) {
        let (source, now, window) = (Source::of(ip), Instant::now(), self.cfg.window);
        let mut st = self.state();
        record(&mut st.pairs, (user.to_owned(), source), window, now);
        record(&mut st.sources, source, window, now);
        record(&mut st.users, user.to_owned(), window, now);
    }

    /// A successful login clears the failures of its user from its address (not the
    /// address's, nor the user's from elsewhere), and makes the address the owner's.
    /// True when that changed anything but the time the address was last seen: what
    /// other gateways on the same store are told.
    pub fn succeeded(&self, user: &str, ip: IpAddr) -> bool {
        let (source, now) = (Source::of(ip), Instant::now());
        let mut st = self.state();
        let cleared = st.pairs.remove(&(user.to_owned(), source)).is_some();
        if st.known.len() >= SWEEP_AT {
            st.known.retain(|_, k| {
                k.retain(|(_, at)| now.duration_since(*at) < KNOWN_FOR);
                !k.is_empty()
            });
        }
        let known = st.known.entry(user.to_owned()).or_default();
        let before = known.len();
        known.retain(|(s, _)| *s != source);
        let new = known.len() == before;
        if known.len() >= KNOWN_PER_USER {
            known.remove(0);
        }
        known.push((source, now));
        cleared || new
    }
}

/// How long until the oldest failure within the window leaves it, when there are
/// `limit` or more.
fn wait(
    times: Option<&mut VecDeque<Instant>>,
    limit: u32,
    window: Duration,
    now: Instant,
) -> Option<Duration> {
    let times = times?;
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        times.pop_front();
    }
    if times.len() < limit as usize {
        return None;
    }
    // the failure that must leave the window before one more attempt is allowed
    let deciding = *times.get(times.len() - limit as usize)?;
    Some(window.saturating_sub(now.duration_since(deciding)))
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
    if times.len() > MAX_TIMES {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_pair: u32, per_addr: u32, per_user: u32) -> Throttle {
        Throttle::new(ThrottleConfig {
            failures_per_user_address: per_pair,
            failures_per_address: per_addr,
            failures_per_user: per_user,
            window: Duration::from_secs(60),
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// An attempt whose key was wrong.
    fn fail(t: &Throttle, user: &str, ip: IpAddr) {
        t.failed(user, ip);
    }

    #[test]
    fn one_address_is_held_for_one_user() {
        let t = throttle(3, 100, 1000);
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(t.check("a:b", a), None);
            fail(&t, "a:b", a);
        }
        let wait = t.check("a:b", a).expect("throttled");
        assert!((1..=60).contains(&wait));
        assert_eq!(t.check("a:c", a), None, "other users are not affected");
        assert_eq!(t.check("a:b", ip("192.0.2.2")), None, "nor other addresses");
    }

    #[test]
    fn an_address_is_held_across_users() {
        let t = throttle(100, 2, 1000);
        let a = ip("::1");
        fail(&t, "a:1", a);
        fail(&t, "a:2", a);
        assert!(t.check("a:3", a).is_some());
        assert!(t.check("a:3", ip("192.0.2.2")).is_none());
    }

    #[test]
    fn ipv6_counts_by_64() {
        let t = throttle(2, 100, 1000);
        fail(&t, "a:b", ip("2001:db8::1"));
        fail(&t, "a:b", ip("2001:db8::ffff:2"));
        assert!(t.check("a:b", ip("2001:db8::3")).is_some());
        assert!(t.check("a:b", ip("2001:db8:0:1::3")).is_none());
        fail(&t, "a:c", ip("::ffff:192.0.2.9"));
        fail(&t, "a:c", ip("192.0.2.9"));
        assert!(t.check("a:c", ip("192.0.2.9")).is_some());
    }

    #[test]
    fn many_addresses_reach_the_ceiling_but_not_the_owner() {
        let t = throttle(10, 100, 20);
        let owner = ip("192.0.2.200");
        t.succeeded("a:b", owner);
        for i in 0..20 {
            fail(&t, "a:b", ip(&format!("198.51.100.{i}")));
        }
        assert!(t.check("a:b", ip("203.0.113.1")).is_some(), "a new address");
        assert_eq!(t.check("a:b", owner), None, "the owner's address");
        // and the owner is still held to its own address's limit
        for _ in 0..10 {
            fail(&t, "a:b", owner);
        }
        assert!(t.check("a:b", owner).is_some());
    }

    #[test]
    fn one_users_checks_from_one_address_take_turns() {
        let t = throttle(3, 100, 1000);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let first = t.turn("a:b", a);
        let held = first.try_lock().unwrap();
        assert!(
            t.turn("a:b", a).try_lock().is_err(),
            "the same user and address wait"
        );
        assert!(
            t.turn("a:b", b).try_lock().is_ok(),
            "another address does not"
        );
        assert!(t.turn("a:c", a).try_lock().is_ok(), "nor another user");
        drop(held);
        assert!(t.turn("a:b", a).try_lock().is_ok());
    }

    #[test]
    fn success_clears_only_its_own_address() {
        let t = throttle(2, 100, 1000);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        fail(&t, "a:b", a);
        fail(&t, "a:b", b);
        fail(&t, "a:b", b);
        t.succeeded("a:b", a);
        fail(&t, "a:b", a);
        assert_eq!(t.check("a:b", a), None);
        assert!(t.check("a:b", b).is_some());
    }
}
