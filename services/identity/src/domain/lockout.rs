//! Failed-login lockout: after `threshold` failures, each further failure locks for a delay
//! that doubles, up to a cap. Counters older than the window start over.

use chrono::{DateTime, Duration, Utc};

/// A lockout policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures allowed before the first lock.
    pub threshold: i32,
    /// The first lock's length.
    pub base_delay: Duration,
    /// The longest lock.
    pub max_delay: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
}

/// Per account: 5 failures, then 30 s, 60 s, 120 s … up to 1 h.
pub const ACCOUNT: Policy = Policy {
    threshold: 5,
    base_delay: Duration::seconds(30),
    max_delay: Duration::hours(1),
    window: Duration::hours(1),
};

/// Per client address: 20 failures (several people may share an address), then the same.
pub const ADDRESS: Policy = Policy {
    threshold: 20,
    base_delay: Duration::seconds(30),
    max_delay: Duration::hours(1),
    window: Duration::hours(1),
};

/// A counter's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Failures counted.
    pub failures: i32,
    /// Locked until then, if locked.
    pub locked_until: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Policy {
    /// How long the counter still locks, if at all.
    pub fn locked_for(&self, counter: &Counter, now: DateTime<Utc>) -> Option<Duration> {
        counter
            .locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// The counter after one more failure at `now`.
    pub fn after_failure(&self, counter: Option<Counter>, now: DateTime<Utc>) -> Counter {
        let previous = counter
            .filter(|c| now - c.updated_at < self.window || self.locked_for(c, now).is_some())
            .map_or(0, |c| c.failures);
        let failures = previous.saturating_add(1);
        let locked_until = (failures >= self.threshold).then(|| {
            let doublings = (failures - self.threshold).min(20) as u32;
            let delay = self.base_delay * 2i32.saturating_pow(doublings);
            now + delay.min(self.max_delay)
        });
        Counter {
            failures,
            locked_until,
            updated_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_failure_locks_and_each_further_one_doubles_the_delay() {
        let now = Utc::now();
        let mut c = None;
        for _ in 0..4 {
            c = Some(ACCOUNT.after_failure(c, now));
            assert_eq!(ACCOUNT.locked_for(&c.unwrap(), now), None);
        }
        c = Some(ACCOUNT.after_failure(c, now));
        assert_eq!(
            ACCOUNT.locked_for(&c.unwrap(), now),
            Some(Duration::seconds(30))
        );
        c = Some(ACCOUNT.after_failure(c, now));
        assert_eq!(
            ACCOUNT.locked_for(&c.unwrap(), now),
            Some(Duration::seconds(60))
        );
        for _ in 0..30 {
            c = Some(ACCOUNT.after_failure(c, now));
        }
        assert_eq!(
            ACCOUNT.locked_for(&c.unwrap(), now),
            Some(Duration::hours(1))
        );
    }

    #[test]
    fn old_failures_are_forgotten() {
        let now = Utc::now();
        let old = Counter {
            failures: 4,
            locked_until: None,
            updated_at: now - Duration::hours(2),
        };
        assert_eq!(ACCOUNT.after_failure(Some(old), now).failures, 1);
    }
}
