//! Per-key request rates and token budgets → HTTP 429 `rate_limit_exceeded` with
//! `Retry-After` (seconds).
//!
//! * **Requests per minute** (`auth.keys[].requests_per_minute = N`): GCRA, the generic cell
//!   rate algorithm (ITU-T I.371), from the `governor` crate; bursts up to `N`, then one
//!   request every `60/N` s. Checked right after the key is identified, before the body is
//!   read.
//! * **Tokens per minute** (`tokens_per_minute = T`): a token bucket of capacity `T`
//!   refilled at `T/60` per second. **Tokens per day** (`tokens_per_day = D`): a fixed
//!   window per UTC day. Before forwarding, the request's tokens are *estimated*
//!   ([`estimate_tokens`]: a quarter of the body's bytes, the usual rule of thumb for
//!   English with BPE tokenizers) and reserved; the request is refused when the reservation
//!   does not fit. When the request ends the reservation is replaced by what the upstream
//!   reported in `usage` (`total_tokens`, or `prompt_tokens + completion_tokens`, or
//!   `input_tokens + output_tokens`); without `usage` (a stream without
//!   `stream_options.include_usage`), by the estimate plus a quarter of the answer's code
//!   points. The bucket may go below zero: a request that used more than reserved delays the
//!   next ones (`Retry-After` says how long).
//!
//! Limits are in memory, per gateway process (a shared store for several replicas is future
//! work).

use crate::config::ApiKey;
use crate::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest accepted `requests_per_minute`, `tokens_per_minute` or `tokens_per_day`.
pub const MAX_LIMIT: u64 = 1 << 40;

/// Checks one key's limit fields; `Err((field, message))`.
///
/// # Errors
/// A zero or absurdly large limit.
pub fn validate_key_limits(k: &ApiKey) -> Result<(), (&'static str, String)> {
    let fields = [
        ("requests_per_minute", k.requests_per_minute.map(u64::from)),
        ("tokens_per_minute", k.tokens_per_minute),
        ("tokens_per_day", k.tokens_per_day),
    ];
    for (name, v) in fields {
        match v {
            Some(0) => return Err((name, "must be > 0 (omit it for no limit)".into())),
            Some(n) if n > MAX_LIMIT => return Err((name, format!("must be ≤ {MAX_LIMIT}"))),
            _ => {}
        }
    }
    Ok(())
}

/// The token estimate for a request body of `body_bytes` bytes: `ceil(bytes / 4)`.
pub fn estimate_tokens(body_bytes: usize) -> u64 {
    (body_bytes as u64).div_ceil(4)
}

/// Tokens a finished request used, from the upstream's `usage` numbers.
pub fn tokens_used(usage: &BTreeMap<String, u64>) -> Option<u64> {
    if let Some(t) = usage.get("total_tokens") {
        return Some(*t);
    }
    let pair = |a: &str, b: &str| match (usage.get(a), usage.get(b)) {
        (None, None) => None,
        (x, y) => Some(x.copied().unwrap_or(0) + y.copied().unwrap_or(0)),
    };
    pair("prompt_tokens", "completion_tokens").or_else(|| pair("input_tokens", "output_tokens"))
}

/// A token bucket that may go into debt (see the module doc). Times are passed in so the
/// arithmetic is testable.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_sec: f64,
    level: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket of `per_minute` tokens at `now`.
    pub fn new(per_minute: u64, now: Instant) -> Self {
        TokenBucket {
            capacity: per_minute as f64,
            per_sec: per_minute as f64 / 60.0,
            level: per_minute as f64,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + dt * self.per_sec).min(self.capacity);
        self.at = now;
    }

    /// Takes `n` tokens if available (`n` above the capacity is allowed into a full bucket,
    /// so one large request is not refused forever); otherwise the wait until it fits.
    ///
    /// # Errors
    /// The time to wait.
    pub fn take(&mut self, n: u64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        let need = (n as f64).min(self.capacity);
        if self.level >= need {
            self.level -= n as f64;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((need - self.level) / self.per_sec))
        }
    }

    /// Adds `delta` tokens back (negative: charges more); never above capacity.
    pub fn adjust(&mut self, delta: f64, now: Instant) {
        self.refill(now);
        self.level = (self.level + delta).min(self.capacity);
    }
}

#[derive(Debug)]
struct DayWindow {
    limit: u64,
    day: u64,
    used: u64,
}

/// Seconds since the Unix epoch now.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DayWindow {
    fn roll(&mut self, unix: u64) {
        let day = unix / 86_400;
        if day != self.day {
            self.day = day;
            self.used = 0;
        }
    }
    fn take(&mut self, n: u64, unix: u64) -> Result<(), u64> {
        self.roll(unix);
        // a single request larger than the whole budget is admitted into an empty day
        if self.used + n <= self.limit || self.used == 0 {
            self.used += n;
            Ok(())
        } else {
            Err(86_400 - unix % 86_400)
        }
    }
}

struct KeyLimits {
    requests: Option<DefaultDirectRateLimiter>,
    tokens: Option<Mutex<(TokenBucket, Option<DayWindow>)>>,
}

/// Every key's limiter state.
pub struct Limiter {
    keys: HashMap<String, KeyLimits>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("keys", &self.keys.len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Limiter {
    /// Limiters for the keys that declare limits (validated by the configuration).
    pub fn new(keys: &[ApiKey]) -> Limiter {
        let now = Instant::now();
        let mut map = HashMap::new();
        for k in keys {
            let requests = k
                .requests_per_minute
                .and_then(NonZeroU32::new)
                .map(|n| RateLimiter::direct(Quota::per_minute(n)));
            let tpm = k.tokens_per_minute.unwrap_or(0);
            let day = k.tokens_per_day.map(|limit| DayWindow {
                limit,
                day: 0,
                used: 0,
            });
            let tokens = (tpm > 0 || day.is_some()).then(|| {
                // no per-minute limit: a bucket too large to ever run dry
                let per_minute = if tpm > 0 { tpm } else { u64::MAX >> 12 };
                Mutex::new((TokenBucket::new(per_minute, now), day))
            });
            if requests.is_some() || tokens.is_some() {
                map.insert(k.id.clone(), KeyLimits { requests, tokens });
            }
        }
        Limiter { keys: map }
    }

    /// Counts one request for `key`.
    ///
    /// # Errors
    /// 429 (`type: requests`) with the seconds until the next request is allowed.
    pub fn check_request(&self, key: &str) -> Result<(), ApiError> {
        let Some(r) = self.keys.get(key).and_then(|k| k.requests.as_ref()) else {
            return Ok(());
        };
        r.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::rate_limited(
                format!("Rate limit reached for key `{key}`: requests per minute"),
                retry_secs(wait),
            )
        })
    }

    /// Reserves `estimate` tokens against `key`'s budgets.
    ///
    /// # Errors
    /// 429 (`type: tokens`) with the seconds until the reservation would fit.
    pub fn reserve_tokens(&self, key: &str, estimate: u64) -> Result<(), ApiError> {
        let Some(t) = self.keys.get(key).and_then(|k| k.tokens.as_ref()) else {
            return Ok(());
        };
        let mut g = lock(t);
        let (bucket, day) = &mut *g;
        let now = Instant::now();
        let refuse = |what: &str, secs: u64| {
            let mut e = ApiError::rate_limited(
                format!("Rate limit reached for key `{key}`: {what} (this request needs about {estimate} tokens)"),
                secs,
            );
            e.kind = "tokens";
            e
        };
        if let Some(d) = day.as_mut() {
            d.roll(unix_now());
            if d.used > 0 && d.used + estimate > d.limit {
                return Err(refuse("tokens per day", 86_400 - unix_now() % 86_400));
            }
        }
        bucket
            .take(estimate, now)
            .map_err(|wait| refuse("tokens per minute", retry_secs(wait)))?;
        if let Some(d) = day.as_mut() {
            // checked above; cannot fail now
            let _ = d.take(estimate, unix_now());
        }
        Ok(())
    }

    /// Replaces a reservation of `reserved` tokens by the `used` count.
    pub fn settle(&self, key: &str, reserved: u64, used: u64) {
        let Some(t) = self.keys.get(key).and_then(|k| k.tokens.as_ref()) else {
            return;
        };
        if reserved == 0 && used == 0 {
            return;
        }
        let mut g = lock(t);
        let (bucket, day) = &mut *g;
        bucket.adjust(reserved as f64 - used as f64, Instant::now());
        if let Some(d) = day.as_mut() {
            d.roll(unix_now());
            d.used = (d.used + used).saturating_sub(reserved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_and_goes_into_debt() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(600, t0); // 10 tokens per second
        assert_eq!(b.take(500, t0), Ok(()));
        let wait = b.take(200, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10)); // needs 100 more at 10/s
        b.adjust(-300.0, t0); // the request used 300 more than reserved: level -200
        assert_eq!(
            b.take(100, t0 + Duration::from_secs(5)).unwrap_err(),
            Duration::from_secs(25)
        );
        assert_eq!(b.take(100, t0 + Duration::from_secs(30)), Ok(()));
        // a request larger than the capacity fits into a full bucket only
        let mut b = TokenBucket::new(60, t0);
        assert_eq!(b.take(100, t0), Ok(()));
        assert!(b.take(1, t0 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn day_window_resets_at_utc_midnight() {
        let mut d = DayWindow {
            limit: 100,
            day: 0,
            used: 0,
        };
        let noon = 20_000 * 86_400 + 43_200;
        assert_eq!(d.take(80, noon), Ok(()));
        assert_eq!(d.take(30, noon), Err(43_200));
        assert_eq!(d.take(30, noon + 43_200), Ok(()));
    }

    #[test]
    fn usage_counts() {
        let m = |v: &[(&str, u64)]| v.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        assert_eq!(
            tokens_used(&m(&[("total_tokens", 9), ("prompt_tokens", 1)])),
            Some(9)
        );
        assert_eq!(
            tokens_used(&m(&[("prompt_tokens", 4), ("completion_tokens", 3)])),
            Some(7)
        );
        assert_eq!(
            tokens_used(&m(&[("input_tokens", 4), ("output_tokens", 6)])),
            Some(10)
        );
        assert_eq!(tokens_used(&m(&[])), None);
        assert_eq!(estimate_tokens(1025), 257);
    }
}
