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
/// `Retry-After`), and response bodies that break off ([`crate::Error::Incomplete`]), do
/// not decompress ([`crate::Error::Decompress`]) or do not decode or match the request
/// ([`crate::Error::Decode`]). All requests of this client
/// are reads, so the whole request is sent again and its output rewritten from the start;
/// the one exception is [`crate::Connection::download`] into a caller's writer, whose body
/// is not retried once bytes were written. The error returned when the budget is spent says
/// how many attempts were made ([`crate::Error::attempts`]).
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

/// Parses a `Retry-After` header (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, also the obsolete RFC 850 and asctime forms) turned
/// into the whole seconds left from now, rounded up (zero if past). `None` when it is neither.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    let left = at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or(Duration::ZERO);
    // Whole seconds, rounded up: never retry before the date.
    Some(Duration::from_secs(
        left.as_secs() + u64::from(left.subsec_nanos() > 0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn retry_after_delay_seconds() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_future_http_date() {
        // One hour from now, written out by hand as an IMF-fixdate (independent of httpdate).
        let at = SystemTime::now() + Duration::from_secs(3600);
        let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days as i64);
        const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let value = format!(
            "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
            WEEKDAYS[(days % 7) as usize],
            MONTHS[(m - 1) as usize],
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        );
        let got = parse_retry_after(&value).expect(&value);
        // The header has whole seconds, the delay is rounded up to whole seconds and the
        // clock moves on while the test runs.
        let want = at
            .duration_since(SystemTime::now())
            .expect("one hour ahead");
        let slack = Duration::from_secs(2);
        assert!(
            got <= want + slack && got + slack >= want,
            "{value}: {got:?} vs {want:?}"
        );
        assert_eq!(got.subsec_nanos(), 0, "whole seconds");
    }

    /// (year, month 1-12, day 1-31) of days since 1970-01-01 (Howard Hinnant's algorithm).
    fn civil_from_days(z: i64) -> (i64, i64, i64) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d)
    }

    #[test]
    fn retry_after_past_http_date_is_zero() {
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        // The obsolete forms RFC 9110 says recipients must accept.
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:37 1994"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_garbage_is_none() {
        for v in [
            "",
            "soon",
            "-5",
            "1.5",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(v), None, "{v:?}");
        }
    }
}
