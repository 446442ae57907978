//! Property tests of what the notifier reads from channel endpoints: HTTP status and body
//! (kept in `status.notifications[].lastError`), `Retry-After` headers and Telegram's
//! `parameters.retry_after`. Receivers are outside input: whatever they answer, the notifier
//! must not panic, must keep bounded error text with secrets scrubbed, and must classify the
//! answer.
//!
//! The same through the real senders (Slack, Telegram, webhook, Alertmanager) against a
//! server in this process that answers generated statuses, headers and bodies of any size:
//! one attempt ends in `Ok` or a bounded, scrubbed, classified error, and at most
//! 16 KiB of a body is read.
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

// ---------------------------------------------------------------------------------------
// Real senders against a generated receiver.
// ---------------------------------------------------------------------------------------

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fabricwatch_notifier::batch::Batch;
use fabricwatch_notifier::channel::Target;
use fabricwatch_notifier::channels::{send_once, SendContext};
use fabricwatch_proto::notify::{AlertStatus, NotificationRequest, SourceKind};
use fabricwatch_proto::{ObjectRef, Severity};

fn batch() -> Batch {
    let alert = NotificationRequest {
        schema_version: 1,
        id: "id-1".into(),
        source_kind: SourceKind::AlertRule,
        source: ObjectRef {
            namespace: "fabric".into(),
            name: "high-loss".into(),
        },
        fingerprint: "fp-1".into(),
        status: AlertStatus::Firing,
        severity: Severity::Critical,
        labels: BTreeMap::from([("alertname".to_owned(), "HighLoss".to_owned())]),
        annotations: BTreeMap::new(),
        value: Some(12.5),
        starts_at: Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("date"),
        ends_at: None,
    };
    Batch {
        receiver: "oncall".into(),
        source_kind: SourceKind::AlertRule,
        source: alert.source.clone(),
        group_labels: BTreeMap::from([("alertname".to_owned(), "HighLoss".to_owned())]),
        alerts: vec![alert],
    }
}

/// Serves `head` + `body` to every request on 127.0.0.1 until the runtime ends; counts the
/// body bytes the receiver managed to hand to the kernel.
async fn receiver(head: String, body: Arc<Vec<u8>>, written: Arc<AtomicUsize>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let (head, body, written) = (head.clone(), body.clone(), written.clone());
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    if let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                        let h = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
                        let len = h
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if req.len() >= end + 4 + len {
                            break;
                        }
                    }
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for chunk in body.chunks(64 * 1024) {
                    if s.write_all(chunk).await.is_err() {
                        return;
                    }
                    written.fetch_add(chunk.len(), Ordering::Relaxed);
                }
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

fn target(kind: usize, base: &str) -> Target {
    let url = SecretValue::new(format!("{base}/hooks/{SECRET}"));
    match kind {
        0 => Target::Slack { webhook_url: url },
        1 => Target::Telegram {
            bot_token: SecretValue::new(format!("123:{SECRET}")),
            chat_id: "-100200300".into(),
        },
        2 => Target::Webhook {
            url,
            hmac_key: Some(SecretValue::new("k")),
        },
        _ => Target::Alertmanager {
            url: SecretValue::new(base.to_string()),
        },
    }
}

/// One attempt against a receiver answering `head` + `body`; the result and the body bytes
/// the receiver could write.
fn attempt(
    kind: usize,
    head: String,
    body: Vec<u8>,
) -> (Result<(), fabricwatch_notifier::deliver::SendError>, usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let written = Arc::new(AtomicUsize::new(0));
        let base = receiver(head, Arc::new(body), written.clone()).await;
        let ctx = SendContext::new(
            base.clone(),
            "http://fabricwatch.example",
            Duration::from_secs(3),
        )
        .expect("client");
        let r = send_once(&ctx, &target(kind, &base), &batch()).await;
        // Let the receiver's task notice the closed connection.
        tokio::time::sleep(Duration::from_millis(5)).await;
        (r, written.load(Ordering::Relaxed))
    })
}

fn head(status: u16, headers: &[String], len: Option<usize>) -> String {
    let mut h = format!("HTTP/1.1 {status} X\r\n");
    for x in headers {
        h.push_str(x);
        h.push_str("\r\n");
    }
    if let Some(n) = len {
        h.push_str(&format!("Content-Length: {n}\r\n"));
    }
    h.push_str("Connection: close\r\n\r\n");
    h
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn senders_classify_any_answer_with_bounded_scrubbed_errors(
        kind in 0usize..4,
        status in prop_oneof![4 => Just(200u16), 1 => Just(204u16), 2 => Just(429u16), 2 => Just(400u16), 2 => Just(503u16), 2 => 100u16..1000],
        headers in proptest::collection::vec(prop_oneof![
            "Retry-After: [0-9]{0,12}",
            "Retry-After: \\PC{0,30}",
            "Content-Type: (application/json|text/plain)",
            "[A-Za-z-]{1,12}: [ -~]{0,30}",
        ], 0..3),
        body in prop_oneof![
            3 => body(),
            // A receiver echoing the secret: the webhook path, the bot token.
            1 => ("\\PC{0,100}", prop_oneof![Just(format!("/hooks/{SECRET}")), Just(format!("123:{SECRET}"))])
                .prop_map(|(a, s)| format!("{a}{s}")),
        ],
        declared in prop_oneof![3 => Just(None), 1 => proptest::option::of(0usize..200_000)],
    ) {
        let len = declared.unwrap_or(body.len());
        let (r, _) = attempt(kind, head(status, &headers, Some(len)), body.into_bytes());
        if let Err(e) = r {
            prop_assert!(e.message.chars().count() <= 300, "{} chars: {:?}", e.message.chars().count(), e.message);
            // The scrubbed forms of this target's secret (the value, a URL's path), not any part.
            let secret = match kind {
                0 | 2 => format!("/hooks/{SECRET}"),
                1 => format!("123:{SECRET}"),
                _ => String::from("\u{0}never"),
            };
            prop_assert!(!e.message.contains(&secret), "secret in {:?}", e.message);
        }
    }
}

/// A receiver answering 32 MiB: the sender reads 16 KiB of it and drops the connection, so
/// the receiver cannot write the rest (before, the whole body was read into memory and cut
/// afterwards).
#[test]
fn a_huge_answer_is_not_read_to_the_end() {
    const BODY: usize = 32 << 20;
    for (status, kind) in [(500u16, 0usize), (200, 2)] {
        let (r, written) = attempt(kind, head(status, &[], Some(BODY)), vec![b'e'; BODY]);
        assert_eq!(r.is_ok(), status == 200, "{r:?}");
        assert!(
            written < BODY / 2,
            "the receiver wrote {written} of {BODY} bytes"
        );
    }
}
