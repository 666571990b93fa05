//! Slowing down password guessing: every failed login of an account or from a client
//! address doubles the wait before the next answer, and after `max_failures` the
//! account or address is locked out for a while (IMAP `NO [UNAVAILABLE]`, SMTP 454).
//! Memory is bounded: at most [`MAX_ENTRIES`] records, the oldest dropped first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mailroom_config::AuthConfig;

/// Most accounts and addresses remembered at once.
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

/// What to do with a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleVerdict {
    /// Go on, after waiting this long before answering a failure.
    Allow { delay: Duration },
    /// Refuse at once; locked out for about this long.
    Locked { retry_after: Duration },
}

/// Failed-login bookkeeping shared by all sessions of all protocols.
#[derive(Debug)]
pub struct LoginThrottle {
    base_delay: Duration,
    max_failures: u32,
    lockout: Duration,
    records: Mutex<HashMap<String, Record>>,
}

fn keys(ip: IpAddr, user: &str) -> [String; 2] {
    [format!("ip:{ip}"), format!("user:{}", user.to_lowercase())]
}

impl LoginThrottle {
    pub fn new(config: &AuthConfig) -> LoginThrottle {
        LoginThrottle {
            base_delay: config.failure_delay,
            max_failures: config.max_failures.max(1),
            lockout: config.lockout,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// The verdict for a login attempt by `user` from `ip`; loopback clients are
    /// throttled too (tests and local scripts can configure a short delay).
    pub fn check(&self, ip: IpAddr, user: &str) -> ThrottleVerdict {
        let now = Instant::now();
        let Ok(records) = self.records.lock() else {
            return ThrottleVerdict::Allow {
                delay: self.base_delay,
            };
        };
        let mut worst = 0;
        let mut locked_for = Duration::ZERO;
        for key in keys(ip, user) {
            if let Some(r) = records.get(&key) {
                let age = now.duration_since(r.last);
                if age >= self.lockout {
                    continue;
                }
                worst = worst.max(r.failures);
                if r.failures >= self.max_failures {
                    locked_for = locked_for.max(self.lockout - age);
                }
            }
        }
        if locked_for > Duration::ZERO {
            return ThrottleVerdict::Locked {
                retry_after: locked_for,
            };
        }
        ThrottleVerdict::Allow {
            delay: self.delay_after(worst + 1),
        }
    }

    /// The delay before answering the `n`th consecutive failure.
    fn delay_after(&self, n: u32) -> Duration {
        self.base_delay
            .saturating_mul(1 << n.saturating_sub(1).min(4))
    }

    /// Records a failed login; returns how long to wait before answering it.
    pub fn failure(&self, ip: IpAddr, user: &str) -> Duration {
        let now = Instant::now();
        let Ok(mut records) = self.records.lock() else {
            return self.base_delay;
        };
        if records.len() >= MAX_ENTRIES {
            let lockout = self.lockout;
            records.retain(|_, r| now.duration_since(r.last) < lockout);
            if records.len() >= MAX_ENTRIES
                && let Some(oldest) = records
                    .iter()
                    .min_by_key(|(_, r)| r.last)
                    .map(|(k, _)| k.clone())
            {
                records.remove(&oldest);
            }
        }
        let mut worst = 0;
        for key in keys(ip, user) {
            let r = records.entry(key).or_insert(Record {
                failures: 0,
                last: now,
            });
            if now.duration_since(r.last) >= self.lockout {
                r.failures = 0;
            }
            r.failures += 1;
            r.last = now;
            worst = worst.max(r.failures);
        }
        self.delay_after(worst)
    }

    /// A successful login forgets the account's failures and the address's.
    pub fn success(&self, ip: IpAddr, user: &str) {
        if let Ok(mut records) = self.records.lock() {
            for key in keys(ip, user) {
                records.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(&AuthConfig {
            failure_delay: Duration::from_millis(100),
            max_failures: 3,
            lockout: Duration::from_secs(60),
            ..AuthConfig::default()
        })
    }

    #[test]
    fn delays_grow_then_lock_out() {
        let t = throttle();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            t.check(ip, "a@x"),
            ThrottleVerdict::Allow {
                delay: Duration::from_millis(100)
            }
        );
        assert_eq!(t.failure(ip, "a@x"), Duration::from_millis(100));
        assert_eq!(t.failure(ip, "a@x"), Duration::from_millis(200));
        assert_eq!(
            t.check(ip, "A@X"),
            ThrottleVerdict::Allow {
                delay: Duration::from_millis(400)
            }
        );
        t.failure(ip, "a@x");
        assert!(matches!(t.check(ip, "a@x"), ThrottleVerdict::Locked { .. }));
        // The account is locked from another address too, and the address for another account.
        assert!(matches!(
            t.check("192.0.2.2".parse().unwrap(), "a@x"),
            ThrottleVerdict::Locked { .. }
        ));
        assert!(matches!(t.check(ip, "b@x"), ThrottleVerdict::Locked { .. }));
    }

    #[test]
    fn success_forgets() {
        let t = throttle();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        t.failure(ip, "a@x");
        t.failure(ip, "a@x");
        t.success(ip, "a@x");
        assert_eq!(
            t.check(ip, "a@x"),
            ThrottleVerdict::Allow {
                delay: Duration::from_millis(100)
            }
        );
    }
}
