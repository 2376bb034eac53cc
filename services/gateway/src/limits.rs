//! Rate limits: GCRA (a token bucket with burst, kept as one "theoretical arrival time" per
//! key), in memory or — so limits hold across gateway replicas — in Redis with one atomic
//! script per decision, timed by Redis's own clock.
//!
//! A policy reads `<service>[<path prefix>] <key> <limit>/<window>[ burst <n>]`, e.g.
//! `identity/api/v1/auth/login ip 10/1m burst 5` or `* subject 600/1m`. `*` is every
//! service, each with a budget of its own. Every policy matching a request applies; the
//! answer's headers describe the one closest to its limit.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::header::HeaderValue;
use redis::Script;
use redis::aio::ConnectionManager;

use crate::sharded::Sharded;

/// What a policy counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The client address.
    Ip,
    /// The token's subject, the API key, or the address when anonymous.
    Subject,
    /// The caller's tenant (skipped for anonymous requests).
    Tenant,
}

/// One policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Shown in `RateLimit-Policy`; unique.
    pub name: String,
    /// `None`: every service (each separately).
    pub service: Option<String>,
    /// Only paths starting with this.
    pub prefix: Option<String>,
    /// What is counted.
    pub key: KeyKind,
    /// Requests per window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
    /// Requests that may come at once.
    pub burst: u32,
    /// Its head lines up to the numbers `RateLimit` needs, the same on every answer:
    /// `RateLimit-Policy` and `X-RateLimit-Limit`, then `ratelimit: "<name>";r=` (see
    /// [`crate::edge::Added`]). Written into heads as they are: made only from a name that is
    /// a valid header value.
    pub lines: String,
}

/// The default policies: tight per-address limits on sign-in and reset, a budget per caller
/// and service for everything.
pub const DEFAULT_POLICIES: &str = "identity/api/v1/auth/login ip 10/1m burst 5; \
     identity/api/v1/auth/password-reset ip 5/5m burst 3; \
     identity/api/v1/auth/register ip 10/1h burst 3; \
     * subject 1200/1m burst 200";

fn parse_window(text: &str) -> Option<Duration> {
    let (n, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

impl Policy {
    /// Parses one policy; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let usage = "expected `<service>[/path] ip|subject|tenant <limit>/<window>[ burst <n>]`, window like 30s, 1m or 1h";
        let (target, key, rate) = match words.as_slice() {
            [t, k, r] | [t, k, r, "burst", _] => (*t, *k, *r),
            _ => return Err(format!("`{text}`: {usage}")),
        };
        let (service, prefix) = match target.find('/') {
            Some(i) => (&target[..i], Some(target[i..].to_owned())),
            None => (target, None),
        };
        let service = match service {
            "*" => None,
            s if !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase()) => Some(s.to_owned()),
            _ => return Err(format!("`{text}`: {usage}")),
        };
        let key = match key {
            "ip" => KeyKind::Ip,
            "subject" => KeyKind::Subject,
            "tenant" => KeyKind::Tenant,
            _ => return Err(format!("`{text}`: {usage}")),
        };
        let (limit, window) = rate
            .split_once('/')
            .and_then(|(l, w)| Some((l.parse::<u32>().ok()?, parse_window(w)?)))
            .filter(|(l, _)| *l > 0)
            .ok_or_else(|| format!("`{text}`: {usage}"))?;
        let burst = match words.as_slice() {
            [_, _, _, "burst", b] => b
                .parse::<u32>()
                .ok()
                .filter(|b| *b > 0)
                .ok_or_else(|| format!("`{text}`: burst must be a positive number"))?,
            _ => limit,
        };
        let name = format!(
            "{}{}-{}",
            service.as_deref().unwrap_or("all"),
            prefix
                .as_deref()
                .map(|p| p.replace('/', "-"))
                .unwrap_or_default(),
            match key {
                KeyKind::Ip => "ip",
                KeyKind::Subject => "subject",
                KeyKind::Tenant => "tenant",
            }
        );
        let policy = format!("\"{name}\";q={limit};w={}", window.as_secs());
        // No line break or other control character can reach a head.
        HeaderValue::from_str(&policy).map_err(|_| format!("`{text}`: {usage}"))?;
        let lines = format!(
            "ratelimit-policy: {policy}\r\nx-ratelimit-limit: {limit}\r\nratelimit: \"{name}\";r="
        );
        Ok(Self {
            lines,
            name,
            service,
            prefix,
            key,
            limit,
            window,
            burst,
        })
    }

    /// Parses `;`-separated policies.
    pub fn parse_all(text: &str) -> Result<Vec<Self>, String> {
        let list: Vec<Self> = text
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Self::parse)
            .collect::<Result<_, _>>()?;
        for (i, p) in list.iter().enumerate() {
            if list[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("two policies are both named {}", p.name));
            }
        }
        Ok(list)
    }

    /// Whether the policy covers a request to `service` at `path`.
    pub fn applies(&self, service: &str, path: &str) -> bool {
        self.service.as_deref().is_none_or(|s| s == service)
            && self.prefix.as_deref().is_none_or(|p| path.starts_with(p))
    }

    fn interval_micros(&self) -> u64 {
        (self.window.as_micros() / u128::from(self.limit)).max(1) as u64
    }
}

/// One policy's verdict for one request.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// The policy (its name, limit, window and constant headers).
    pub policy: &'a Policy,
    /// Whether the request may pass.
    pub allowed: bool,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until the budget is whole again.
    pub reset: u64,
    /// Seconds to wait when refused.
    pub retry_after: u64,
}

// GCRA on microseconds: `tat` is when the bucket would be empty again.
fn decide(tat: u64, now: u64, interval: u64, burst: u32) -> (bool, u64, u32, u64, u64) {
    let tat = tat.max(now);
    let capacity = interval.saturating_mul(u64::from(burst));
    let new_tat = tat + interval;
    if new_tat.saturating_sub(now) > capacity {
        let retry = new_tat - capacity - now;
        return (false, tat, 0, tat - now, retry);
    }
    let used = new_tat - now;
    let remaining = ((capacity - used) / interval) as u32;
    (true, new_tat, remaining, used, 0)
}

const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local capacity = interval * burst
local new_tat = tat + interval
if new_tat - now > capacity then
  return {0, 0, tat - now, new_tat - capacity - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, math.floor((capacity - (new_tat - now)) / interval), new_tat - now, 0}
";

/// Where the limiter keeps its state.
pub enum Store {
    /// This process only.
    Memory(Sharded<u64>),
    /// Redis, shared by every replica.
    Redis {
        /// Reconnects by itself.
        conn: ConnectionManager,
        /// The GCRA script.
        script: Script,
    },
}

/// The limiter.
pub struct Limiter {
    /// The policies.
    pub policies: Vec<Policy>,
    store: Store,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Limiter {
    /// An in-memory limiter.
    pub fn in_memory(policies: Vec<Policy>) -> Self {
        Self {
            policies,
            store: Store::Memory(Sharded::default()),
        }
    }

    /// A limiter sharing its state through Redis at `url`.
    pub async fn redis(policies: Vec<Policy>, url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let conn = ConnectionManager::new(client)
            .await
            .map_err(|e| format!("cannot connect to Redis: {e}"))?;
        Ok(Self {
            policies,
            store: Store::Redis {
                conn,
                script: Script::new(GCRA_LUA),
            },
        })
    }

    /// Whether the state is shared (Redis).
    pub fn shared(&self) -> bool {
        matches!(self.store, Store::Redis { .. })
    }

    /// Takes one request from `key`'s budget under `policy`.
    pub async fn check<'a>(&self, policy: &'a Policy, key: &str) -> Result<Decision<'a>, String> {
        let interval = policy.interval_micros();
        let (allowed, remaining, reset_us, retry_us) = match &self.store {
            Store::Memory(shards) => {
                let now = now_micros();
                let mut map = shards
                    .shard(key)
                    .ok_or_else(|| "limiter state poisoned".to_owned())?;
                if map.len() > 100_000 {
                    map.retain(|_, tat| *tat > now);
                }
                // One lookup for a key seen before; the key is copied only when new.
                let (allowed, _, remaining, reset, retry) = match map.get_mut(key) {
                    Some(tat) => {
                        let d = decide(*tat, now, interval, policy.burst);
                        *tat = d.1;
                        d
                    }
                    None => {
                        let d = decide(0, now, interval, policy.burst);
                        map.insert(key.to_owned(), d.1);
                        d
                    }
                };
                (allowed, remaining, reset, retry)
            }
            Store::Redis { conn, script } => {
                let mut conn = conn.clone();
                // Boxed: the Redis call's future is large, and inline it would grow every
                // request's future, in-memory limits or not.
                let (allowed, remaining, reset, retry): (i64, i64, i64, i64) =
                    Box::pin(async move {
                        script
                            .key(key)
                            .arg(interval)
                            .arg(policy.burst)
                            .invoke_async(&mut conn)
                            .await
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                (
                    allowed == 1,
                    u32::try_from(remaining).unwrap_or(0),
                    u64::try_from(reset).unwrap_or(0),
                    u64::try_from(retry).unwrap_or(0),
                )
            }
        };
        Ok(Decision {
            policy,
            allowed,
            remaining,
            reset: reset_us.div_ceil(1_000_000),
            retry_after: retry_us.div_ceil(1_000_000).max(u64::from(!allowed)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_with_clear_errors() {
        let p = Policy::parse("identity/api/v1/auth/login ip 10/1m burst 5").unwrap();
        assert_eq!(p.service.as_deref(), Some("identity"));
        assert_eq!(p.prefix.as_deref(), Some("/api/v1/auth/login"));
        assert_eq!(
            (p.limit, p.window, p.burst),
            (10, Duration::from_secs(60), 5)
        );
        assert!(p.applies("identity", "/api/v1/auth/login"));
        assert!(!p.applies("tickets", "/api/v1/auth/login"));
        assert_eq!(
            p.lines,
            "ratelimit-policy: \"identity-api-v1-auth-login-ip\";q=10;w=60\r\n\
             x-ratelimit-limit: 10\r\nratelimit: \"identity-api-v1-auth-login-ip\";r="
        );
        let all = Policy::parse("* subject 600/1m").unwrap();
        assert_eq!(all.burst, 600);
        assert!(all.applies("tickets", "/api/v1/tickets"));
        for bad in [
            "x ip 10",
            "* who 1/1m",
            "* ip 0/1m",
            "* ip 5/1d",
            "* ip 5/1m burst 0",
            "X ip 1/1s",
            // A control character would reach the heads of answers.
            "identity/api/v1/x\u{7f} ip 1/1s",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
        assert!(Policy::parse_all(DEFAULT_POLICIES).unwrap().len() == 4);
        assert!(Policy::parse_all("* ip 1/1s; * ip 2/1s").is_err());
    }

    #[test]
    fn gcra_allows_the_burst_then_one_per_interval() {
        let interval = 1_000_000; // one per second
        let mut tat = 0;
        let now = 10_000_000;
        for i in 0..3 {
            let (ok, t, remaining, _, _) = decide(tat, now, interval, 3);
            assert!(ok, "burst request {i}");
            assert_eq!(remaining, 2 - i);
            tat = t;
        }
        let (ok, _, _, _, retry) = decide(tat, now, interval, 3);
        assert!(!ok);
        assert_eq!(retry, 1_000_000);
        let (ok, _, _, _, _) = decide(tat, now + 1_000_000, interval, 3);
        assert!(ok, "one more after an interval");
    }
}
