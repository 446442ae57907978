//! One delivery to one channel: error classification and bounded retries.
//!
//! Retry rules: connection errors, timeouts and 5xx answers are retried with exponential
//! backoff and full jitter (the `backon` crate); 429 is retried after the answer's
//! `Retry-After` (RFC 9110 §10.2.3: seconds or an HTTP-date) when it is within
//! [`RetryPolicy::max_retry_after`]; every other 4xx, and a request that cannot be built, is
//! final. Every error message is scrubbed of the target's secrets before it is stored.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::secret::{error_chain, Scrubber};

/// Whether and when an error may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Connection error, timeout, 5xx: retry with backoff.
    Transient,
    /// 429: retry after the given time (`None`: backoff decides).
    RateLimited(Option<Duration>),
    /// Other 4xx, bad configuration: do not retry.
    Permanent,
}

/// A failed attempt. `message` is already free of secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Retry class.
    pub class: ErrorClass,
    /// Human-readable reason, scrubbed.
    pub message: String,
}

impl SendError {
    /// A permanent error (bad configuration, rejected payload).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            message: message.into(),
        }
    }

    /// A transient error.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Transient,
            message: message.into(),
        }
    }

    /// Classifies a reqwest error. The URL is dropped before formatting (it may hold the
    /// secret) and the text is scrubbed as well, since sources may print it too.
    pub fn from_reqwest(err: reqwest::Error, scrub: &Scrubber) -> Self {
        let class = if err.is_builder() {
            ErrorClass::Permanent
        } else {
            ErrorClass::Transient
        };
        let what = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        let err = err.without_url();
        Self {
            class,
            message: scrub.scrub(&format!("{what}: {}", error_chain(&err))),
        }
    }

    /// Classifies a non-success HTTP answer. `body` is the start of the response body
    /// (receivers explain themselves there, e.g. Slack's `invalid_payload`).
    pub fn from_status(
        status: reqwest::StatusCode,
        retry_after: Option<Duration>,
        body: &str,
        scrub: &Scrubber,
    ) -> Self {
        let class = if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            ErrorClass::RateLimited(retry_after)
        } else if status.is_server_error() || status == reqwest::StatusCode::REQUEST_TIMEOUT {
            ErrorClass::Transient
        } else {
            ErrorClass::Permanent
        };
        let body: String = body.trim().chars().take(MAX_BODY_CHARS).collect();
        let message = if body.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {body}")
        };
        Self {
            class,
            message: scrub.scrub(&message),
        }
    }
}

/// How much of a receiver's error body is kept in the message.
const MAX_BODY_CHARS: usize = 200;

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is a valid RFC 2822 date.
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let d = at.with_timezone(&chrono::Utc) - now;
    Some(d.to_std().unwrap_or(Duration::ZERO))
}

/// Reads the `Retry-After` header of a response.
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()))
}

/// Bounds of the retry loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, first one included (at least 1).
    pub max_attempts: u32,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Largest backoff delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; a longer one ends the delivery as failed (the
    /// worker must not block on one rate-limited channel for minutes).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// The result of delivering with retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempts {
    /// `Ok` or the last error.
    pub result: Result<(), SendError>,
    /// Attempts made (1 = no retry).
    pub attempts: u32,
}

/// Runs `op` until it succeeds, fails permanently or the policy is exhausted.
pub async fn with_retries<F, Fut>(policy: RetryPolicy, mut op: F) -> Attempts
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), SendError>>,
{
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_factor(2.0)
        .with_max_times(policy.max_attempts.saturating_sub(1) as usize)
        .with_jitter();
    let result = (|| {
        attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        op()
    })
    .retry(backoff)
    .when(|e: &SendError| e.class != ErrorClass::Permanent)
    .adjust(
        |e: &SendError, next: Option<Duration>| match (e.class, next) {
            // Backoff exhausted: stop whatever the server asked.
            (_, None) => None,
            (ErrorClass::RateLimited(Some(after)), Some(_)) => {
                (after <= policy.max_retry_after).then_some(after)
            }
            (_, d) => d,
        },
    )
    .await;
    Attempts {
        result,
        attempts: attempts.load(std::sync::atomic::Ordering::Relaxed),
    }
}

/// Delivers `batch` to `target` with retries per `policy`.
pub async fn deliver(
    ctx: &crate::channels::SendContext,
    policy: RetryPolicy,
    target: &crate::channel::Target,
    batch: &crate::batch::Batch,
) -> Attempts {
    with_retries(policy, || crate::channels::send_once(ctx, target, batch)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retry_after_forms() {
        let now = chrono::Utc
            .with_ymd_and_hms(1994, 11, 6, 8, 49, 30)
            .unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn status_classes() {
        let s = Scrubber::default();
        let c = |code: u16| {
            SendError::from_status(
                reqwest::StatusCode::from_u16(code).expect("code"),
                None,
                "",
                &s,
            )
            .class
        };
        assert_eq!(c(500), ErrorClass::Transient);
        assert_eq!(c(503), ErrorClass::Transient);
        assert_eq!(c(408), ErrorClass::Transient);
        assert_eq!(c(400), ErrorClass::Permanent);
        assert_eq!(c(404), ErrorClass::Permanent);
        assert_eq!(c(429), ErrorClass::RateLimited(None));
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retry_after: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn retries_transient_until_success() {
        let mut n = 0;
        let a = with_retries(fast(), || {
            n += 1;
            let r = if n < 3 {
                Err(SendError::transient("down"))
            } else {
                Ok(())
            };
            async move { r }
        })
        .await;
        assert_eq!(a.result, Ok(()));
        assert_eq!(a.attempts, 3);
    }

    #[tokio::test]
    async fn permanent_is_not_retried_and_attempts_are_bounded() {
        let a = with_retries(fast(), || async { Err(SendError::permanent("bad")) }).await;
        assert_eq!(a.attempts, 1);
        let a = with_retries(fast(), || async { Err(SendError::transient("down")) }).await;
        assert_eq!(a.attempts, 4);
        assert!(a.result.is_err());
    }

    #[tokio::test]
    async fn too_long_retry_after_gives_up() {
        let a = with_retries(fast(), || async {
            Err(SendError {
                class: ErrorClass::RateLimited(Some(Duration::from_secs(3600))),
                message: "slow down".into(),
            })
        })
        .await;
        assert_eq!(a.attempts, 1);
    }
}
