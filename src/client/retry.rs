//! Retry policy: exponential backoff with jitter, bounded by count and total time.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff parameters.
///
/// The n-th retry (n = 0, 1, ...) waits a random time between half and all of
/// `min(max_backoff, init_backoff * base^n)`.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// Delay before the first retry. Default 100 ms.
    pub init_backoff: Duration,
    /// Upper bound of any single delay. Default 15 s.
    pub max_backoff: Duration,
    /// Growth factor between retries (≥ 1). Default 2.
    pub base: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        }
    }
}

/// When and how often a failed request is retried.
///
/// Only transient failures are retried (see [`crate::Error::is_retryable`]): connection
/// errors and timeouts before a response arrived, HTTP 5xx and 429 (honouring
/// `Retry-After`). All requests of this client are reads, so retrying is always safe;
/// a failure while a response body is being read is not retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Most retries after the first attempt. Default 5; 0 disables retries.
    pub max_retries: usize,
    /// Delay growth between attempts.
    pub backoff: BackoffConfig,
    /// No retry starts once this much time has passed since the first attempt. Default 60 s.
    pub retry_timeout: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 5,
            backoff: BackoffConfig::default(),
            retry_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryConfig {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        }
    }

    /// Checks the parameters (finite base ≥ 1, init ≤ max).
    pub(crate) fn validate(&self) -> Result<(), String> {
        let b = &self.backoff;
        if !b.base.is_finite() || b.base < 1.0 {
            return Err(format!(
                "backoff base must be a finite number >= 1, got {}",
                b.base
            ));
        }
        if b.init_backoff > b.max_backoff {
            return Err(format!(
                "initial backoff {:?} exceeds maximum backoff {:?}",
                b.init_backoff, b.max_backoff
            ));
        }
        Ok(())
    }

    /// Delay before retry number `retry` (0-based), with jitter.
    pub(crate) fn delay(&self, retry: usize) -> Duration {
        let b = &self.backoff;
        let exp = i32::try_from(retry).unwrap_or(i32::MAX);
        let cap = b.max_backoff.as_secs_f64();
        let full = (b.init_backoff.as_secs_f64() * b.base.powi(exp)).min(cap);
        let full = if full.is_finite() { full } else { cap };
        let jitter = random_unit();
        Duration::from_secs_f64(full * (0.5 + 0.5 * jitter))
    }
}

/// A uniformly distributed number in [0, 1) from the std hasher's random keys.
fn random_unit() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    // 53 random bits → [0, 1).
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses a `Retry-After` header: delay-seconds, or an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) turned into the time left from now (zero if past).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_imf_fixdate(v)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the Unix epoch of an IMF-fixdate; `None` if malformed.
fn parse_imf_fixdate(s: &str) -> Option<u64> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let rest = s.split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let year: i64 = parts.next()?.parse().ok()?;
    let time = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|&x| x == month)? as i64 + 1;
    let mut hms = time.split(':').map(|x| x.parse::<u64>().ok());
    let (h, mi, se) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=31).contains(&day) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + (h * 3600 + mi * 60 + se) as i64;
    u64::try_from(secs).ok()
}
