//! Property tests of what the notifier reads from channel endpoints: HTTP status and body
//! (kept in `status.notifications[].lastError`), `Retry-After` headers and Telegram's
//! `parameters.retry_after`. Receivers are outside input: whatever they answer, the notifier
//! must not panic, must keep bounded error text with secrets scrubbed, and must classify the
//! answer.
//!
//! Case counts: 256 per property by default; `PROPTEST_CASES` for a longer run.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use fabricwatch_notifier::channels::telegram::retry_after_body;
use fabricwatch_notifier::deliver::{parse_retry_after, ErrorClass, SendError};
use fabricwatch_notifier::secret::{Scrubber, SecretValue};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(cases)
}

const SECRET: &str = "xoxb-1234567890-SECRET-token";

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,300}",
        "\\{\"ok\":(true|false),\"error\":\"[a-z_]{0,20}\"\\}",
        "\\{\"ok\":false,\"error_code\":429,\"parameters\":\\{\"retry_after\":-?[0-9]{0,25}(\\.[0-9])?\\}\\}",
        (0usize..100_000).prop_map(|n| "e".repeat(n)),
        ("\\PC{0,250}", "\\PC{0,250}").prop_map(|(a, b)| format!("{a}{SECRET}{b}")),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn error_answers_are_classified_bounded_and_scrubbed(
        code in 100u16..1000,
        retry in proptest::option::of(0u64..100_000),
        body in body(),
    ) {
        let secret = SecretValue::new(SECRET);
        let scrub = Scrubber::new([&secret]);
        let status = reqwest::StatusCode::from_u16(code).expect("100..1000 is a valid code");
        let e = SendError::from_status(status, retry.map(Duration::from_secs), &body, &scrub);
        // "HTTP 429 Too Many Requests: " + 200 characters of body; scrubbing only shortens it
        // unless a secret marker is longer than the secret (it is not).
        prop_assert!(e.message.chars().count() <= 260, "{} chars", e.message.chars().count());
        prop_assert!(!e.message.contains(SECRET), "secret in {:?}", e.message);
        match code {
            429 => prop_assert_eq!(e.class, ErrorClass::RateLimited(retry.map(Duration::from_secs))),
            408 | 500..=599 => prop_assert_eq!(e.class, ErrorClass::Transient),
            _ => prop_assert_eq!(e.class, ErrorClass::Permanent),
        }
    }

    #[test]
    fn retry_after_header_never_panics(value in prop_oneof![
        "[0-9]{0,30}",
        "-?[0-9]{1,5}(\\.[0-9]{1,3})?",
        "(Mon|Sun|Xyz), [0-9]{1,2} (Jan|Nov|Foo) [0-9]{1,6} [0-9]{1,2}:[0-9]{2}:[0-9]{2} (GMT|UTC|\\+9999|-0000)",
        "\\PC{0,60}",
    ], now_secs in -62_000_000_000i64..250_000_000_000) {
        let now = Utc.timestamp_opt(now_secs, 0).single().unwrap_or_else(Utc::now);
        if let Some(d) = parse_retry_after(&value, now) {
            if let Ok(n) = value.trim().parse::<u64>() {
                prop_assert_eq!(d, Duration::from_secs(n));
            }
        }
    }

    #[test]
    fn telegram_retry_after_body_never_panics(body in body()) {
        if let Some(d) = retry_after_body(&body) {
            prop_assert!(body.contains(&d.as_secs().to_string()));
        }
    }
}
