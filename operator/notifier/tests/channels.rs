//! Every channel against a real local receiver, and the delivery faults.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::TimeZone;
use fabricwatch_notifier::batch::Batch;
use fabricwatch_notifier::channel::{SmtpTls, Target};
use fabricwatch_notifier::channels::{webhook, SendContext};
use fabricwatch_notifier::deliver::{deliver, ErrorClass, RetryPolicy};
use fabricwatch_notifier::secret::SecretValue;
use fabricwatch_proto::notify::{AlertStatus, NotificationRequest, SourceKind};
use fabricwatch_proto::{ObjectRef, Severity};
use support::{Receiver, Reply};

const CANARY: &str = "CANARY-s3cr3t-9f1c";

fn alert(node: &str) -> NotificationRequest {
    NotificationRequest {
        schema_version: 1,
        id: format!("id-{node}"),
        source_kind: SourceKind::AlertRule,
        source: ObjectRef {
            namespace: "fabric".into(),
            name: "high-loss".into(),
        },
        fingerprint: format!("fp-{node}"),
        status: AlertStatus::Firing,
        severity: Severity::Critical,
        labels: [
            ("alertname", "HighLoss"),
            ("target", "gpu-fabric"),
            ("node", node),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        annotations: [(
            "summary".to_owned(),
            format!("Packet loss 12.5% (> 5%) on {node}!"),
        )]
        .into_iter()
        .collect(),
        value: Some(12.5),
        starts_at: chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        ends_at: None,
    }
}

fn batch(alerts: Vec<NotificationRequest>) -> Batch {
    Batch {
        receiver: "oncall".into(),
        source_kind: SourceKind::AlertRule,
        source: alerts[0].source.clone(),
        group_labels: BTreeMap::from([("alertname".to_owned(), "HighLoss".to_owned())]),
        alerts,
    }
}

fn ctx(telegram: &str) -> SendContext {
    SendContext::new(
        telegram,
        "http://fabricwatch.example",
        Duration::from_millis(700),
    )
    .expect("client")
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(5),
    }
}

fn secret_url(r: &Receiver) -> SecretValue {
    SecretValue::new(r.url(&format!("/services/T0/B0/{CANARY}")))
}

#[tokio::test]
async fn slack_block_kit_is_delivered() {
    let r = Receiver::start(Reply::ok("ok")).await;
    let t = Target::Slack {
        webhook_url: secret_url(&r),
    };
    let a = deliver(&ctx(""), fast(), &t, &batch(vec![alert("node-1")])).await;
    assert_eq!(a.result, Ok(()));
    let reqs = r.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, format!("/services/T0/B0/{CANARY}"));
    assert_eq!(reqs[0].headers["content-type"], "application/json");
    let body = reqs[0].json();
    assert_eq!(body["text"], "[FIRING:1] HighLoss");
    let s = body["blocks"].to_string();
    for needle in [
        "critical",
        "gpu-fabric",
        "node-1",
        "12.5",
        "Packet loss",
        "kubectl describe alertrule -n fabric high-loss",
    ] {
        assert!(s.contains(needle), "{needle} not in {s}");
    }
}

#[tokio::test]
async fn telegram_markdown_and_plain_text_fallback() {
    let r = Receiver::start(Reply::ok(r#"{"ok":true,"result":{"message_id":1}}"#)).await;
    let token = format!("123456:{CANARY}");
    let t = Target::Telegram {
        bot_token: SecretValue::new(token.clone()),
        chat_id: "-100200300".into(),
    };
    let ctx = ctx(&r.url(""));
    // Accepted first time.
    let a = deliver(&ctx, fast(), &t, &batch(vec![alert("node-1")])).await;
    assert_eq!(a.result, Ok(()));
    let first = &r.requests()[0];
    assert_eq!(first.path, format!("/bot{token}/sendMessage"));
    let body = first.json();
    assert_eq!(body["parse_mode"], "MarkdownV2");
    assert_eq!(body["chat_id"], -100200300);
    let text = body["text"].as_str().expect("text");
    assert!(
        text.contains("Packet loss 12\\.5% \\(\\> 5%\\) on node\\-1\\!"),
        "{text}"
    );

    // Telegram rejects the entities: one plain-text resend.
    r.push(Reply::status(
        400,
        r#"{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities: Character '-' is reserved"}"#,
    ));
    let a = deliver(&ctx, fast(), &t, &batch(vec![alert("node-2")])).await;
    assert_eq!(a.result, Ok(()));
    assert_eq!(a.attempts, 1);
    let reqs = r.requests();
    assert_eq!(reqs.len(), 3);
    let plain = reqs[2].json();
    assert!(plain.get("parse_mode").is_none());
    assert!(plain["text"]
        .as_str()
        .expect("text")
        .contains("Packet loss 12.5% (> 5%) on node-2!"));

    // Another 400 is final, and the token is not in the message.
    r.push(Reply::status(
        400,
        r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
    ));
    let a = deliver(&ctx, fast(), &t, &batch(vec![alert("node-3")])).await;
    let e = a.result.expect_err("chat not found");
    assert_eq!(e.class, ErrorClass::Permanent);
    assert_eq!(a.attempts, 1);
    assert!(e.message.contains("chat not found"));
    assert!(!e.message.contains(CANARY));
}

#[tokio::test]
async fn webhook_alertmanager_format_with_hmac() {
    let r = Receiver::start(Reply::ok("")).await;
    let key = format!("hmac-{CANARY}");
    let t = Target::Webhook {
        url: secret_url(&r),
        hmac_key: Some(SecretValue::new(key.clone())),
    };
    let a = deliver(&ctx(""), fast(), &t, &batch(vec![alert("n1"), alert("n2")])).await;
    assert_eq!(a.result, Ok(()));
    let req = &r.requests()[0];
    let sig = req.headers[webhook::SIGNATURE_HEADER]
        .to_str()
        .expect("ascii");
    assert_eq!(sig, webhook::signature(key.as_bytes(), &req.body));
    let p = req.json();
    assert_eq!(p["version"], "4");
    assert_eq!(p["status"], "firing");
    assert_eq!(p["receiver"], "oncall");
    assert_eq!(p["externalURL"], "http://fabricwatch.example");
    assert_eq!(p["alerts"].as_array().expect("alerts").len(), 2);
    for k in [
        "groupKey",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "truncatedAlerts",
    ] {
        assert!(p.get(k).is_some(), "{k} missing");
    }
    for k in [
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    ] {
        assert!(p["alerts"][0].get(k).is_some(), "alerts[].{k} missing");
    }
}

#[tokio::test]
async fn alertmanager_v2_real_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_am, base) = match support::start_alertmanager(dir.path()).await {
        Ok(v) => v,
        Err(why) => {
            // The full suite (`e2e/test-all`, FABRICWATCH_E2E=1) installs the real server
            // first (`e2e/deps`), so there a missing server is a failure, not a skip.
            assert!(
                std::env::var_os("FABRICWATCH_E2E").is_none(),
                "alertmanager_v2_real_server cannot run: {why}"
            );
            println!("SKIPPED alertmanager_v2_real_server: {why}");
            return;
        }
    };
    let t = Target::Alertmanager {
        url: SecretValue::new(base.clone()),
    };
    let a = deliver(&ctx(""), fast(), &t, &batch(vec![alert("node-7")])).await;
    assert_eq!(a.result, Ok(()), "post to Alertmanager");
    let alerts: serde_json::Value = reqwest::get(format!("{base}/api/v2/alerts"))
        .await
        .expect("get alerts")
        .json()
        .await
        .expect("json");
    let list = alerts.as_array().expect("array");
    let found = list
        .iter()
        .find(|a| a["labels"]["node"] == "node-7")
        .expect("alert is in Alertmanager");
    assert_eq!(found["labels"]["alertname"], "HighLoss");
    assert_eq!(found["labels"]["severity"], "critical");
    assert_eq!(found["status"]["state"], "active");
    assert!(found["annotations"]["summary"]
        .as_str()
        .expect("summary")
        .contains("Packet loss"));

    // Resolved: Alertmanager marks it resolved (it no longer lists it as active).
    let mut r = alert("node-7");
    r.status = AlertStatus::Resolved;
    r.ends_at = Some(chrono::Utc::now() - chrono::Duration::seconds(1));
    let a = deliver(&ctx(""), fast(), &t, &batch(vec![r])).await;
    assert_eq!(a.result, Ok(()));
    let active: serde_json::Value = reqwest::get(format!(
        "{base}/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true"
    ))
    .await
    .expect("get")
    .json()
    .await
    .expect("json");
    let still = active
        .as_array()
        .expect("array")
        .iter()
        .filter(|a| a["labels"]["node"] == "node-7" && a["status"]["state"] == "active")
        .count();
    assert_eq!(still, 0, "resolved alert still active: {active}");
}

#[tokio::test]
async fn email_real_smtp_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_smtp, port) = match support::start_smtp(dir.path()) {
        Ok(v) => v,
        Err(why) => {
            // The full suite (`e2e/test-all`, FABRICWATCH_E2E=1) installs the real server
            // first (`e2e/deps`), so there a missing server is a failure, not a skip.
            assert!(
                std::env::var_os("FABRICWATCH_E2E").is_none(),
                "email_real_smtp_server cannot run: {why}"
            );
            println!("SKIPPED email_real_smtp_server: {why}");
            return;
        }
    };
    let target = |tls| Target::Email {
        to: vec!["oncall@example.org".into(), "lead@example.org".into()],
        from: "fabricwatch@example.org".into(),
        smtp_host: "127.0.0.1".into(),
        smtp_port: port,
        tls,
        credentials: None,
    };
    let a = deliver(
        &ctx(""),
        fast(),
        &target(SmtpTls::None),
        &batch(vec![alert("node-1")]),
    )
    .await;
    assert_eq!(a.result, Ok(()));
    let files: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert_eq!(files.len(), 1);
    let msg = std::fs::read_to_string(dir.path().join("msg000.eml")).expect("message");
    assert!(msg.contains("Subject: [FIRING:1] HighLoss"), "{msg}");
    assert!(
        msg.contains("To: oncall@example.org, lead@example.org"),
        "{msg}"
    );
    assert!(msg.contains("multipart/alternative"));
    assert!(msg.contains("text/plain"));
    assert!(msg.contains("text/html"));

    // STARTTLS required but the server does not offer it: a clear error, nothing sent.
    let a = deliver(
        &ctx(""),
        fast(),
        &target(SmtpTls::StartTls),
        &batch(vec![alert("node-2")]),
    )
    .await;
    let e = a.result.expect_err("no STARTTLS offered");
    println!("STARTTLS error: {}", e.message);
    assert!(!e.message.is_empty());
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
}

#[tokio::test]
async fn receiver_down_then_up_is_delivered_once() {
    let addr = support::free_port();
    let t = Target::Webhook {
        url: SecretValue::new(format!("http://{addr}/hook/{CANARY}")),
        hmac_key: None,
    };
    let policy = RetryPolicy {
        max_attempts: 8,
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
        max_retry_after: Duration::from_secs(5),
    };
    let ctx = ctx("");
    let b = batch(vec![alert("n1")]);
    let send = tokio::spawn(async move { deliver(&ctx, policy, &t, &b).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = Receiver::start_on(addr, Reply::ok("")).await;
    let a = send.await.expect("join");
    assert_eq!(a.result, Ok(()));
    assert!(a.attempts >= 2, "attempts {}", a.attempts);
    assert_eq!(r.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_fail_bounded() {
    let r = Receiver::start(Reply::status(500, "boom")).await;
    let t = Target::Slack {
        webhook_url: secret_url(&r),
    };
    r.push(Reply::status(503, ""));
    let a = deliver(&ctx(""), fast(), &t, &batch(vec![alert("n1")])).await;
    let e = a.result.expect_err("always 5xx");
    assert_eq!(a.attempts, 4);
    assert_eq!(r.requests().len(), 4);
    assert_eq!(e.class, ErrorClass::Transient);
    assert!(e.message.contains("500"), "{}", e.message);
    assert!(!e.message.contains(CANARY));
}

#[tokio::test]
async fn client_errors_are_final() {
    let r = Receiver::start(Reply::status(404, "no_service")).await;
    let t = Target::Slack {
        webhook_url: secret_url(&r),
    };
    let a = deliver(&ctx(""), fast(), &t, &batch(vec![alert("n1")])).await;
    let e = a.result.expect_err("404");
    assert_eq!(a.attempts, 1);
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.message.contains("no_service"));
}

#[tokio::test]
async fn slow_receiver_times_out_and_is_retried() {
    let r = Receiver::start(Reply::ok("ok")).await;
    r.push(Reply::ok("ok").delayed(Duration::from_secs(3)));
    let t = Target::Slack {
        webhook_url: secret_url(&r),
    };
    let started = Instant::now();
    let a = deliver(&ctx(""), fast(), &t, &batch(vec![alert("n1")])).await;
    assert_eq!(a.result, Ok(()));
    assert_eq!(a.attempts, 2);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "did not time out"
    );
}

#[tokio::test]
async fn slow_receiver_error_names_the_timeout() {
    let r = Receiver::start(Reply::ok("ok").delayed(Duration::from_secs(3))).await;
    let t = Target::Webhook {
        url: secret_url(&r),
        hmac_key: None,
    };
    let policy = RetryPolicy {
        max_attempts: 1,
        ..fast()
    };
    let a = deliver(&ctx(""), policy, &t, &batch(vec![alert("n1")])).await;
    let e = a.result.expect_err("timeout");
    println!("timeout error: {}", e.message);
    assert!(e.message.contains("timed out"), "{}", e.message);
    assert!(!e.message.contains(CANARY), "{}", e.message);
}

#[tokio::test]
async fn rate_limited_honours_retry_after() {
    let r = Receiver::start(Reply::ok("ok")).await;
    r.push(Reply::status(429, "").header("Retry-After", "1"));
    let t = Target::Webhook {
        url: secret_url(&r),
        hmac_key: None,
    };
    let started = Instant::now();
    let a = deliver(&ctx(""), fast(), &t, &batch(vec![alert("n1")])).await;
    assert_eq!(a.result, Ok(()));
    assert_eq!(a.attempts, 2);
    assert_eq!(r.requests().len(), 2);
    // The test backoff alone would wait at most 100 ms; Retry-After asked for 1 s.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn telegram_rate_limit_from_the_body() {
    let r = Receiver::start(Reply::ok(r#"{"ok":true,"result":{}}"#)).await;
    r.push(Reply::status(
        429,
        r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#,
    ));
    let t = Target::Telegram {
        bot_token: SecretValue::new(format!("1:{CANARY}")),
        chat_id: "5".into(),
    };
    let one = RetryPolicy {
        max_attempts: 1,
        ..fast()
    };
    let e = deliver(&ctx(&r.url("")), one, &t, &batch(vec![alert("n1")]))
        .await
        .result
        .expect_err("429");
    assert_eq!(
        e.class,
        ErrorClass::RateLimited(Some(Duration::from_secs(1))),
        "{e:?}"
    );
    r.push(Reply::status(
        429,
        r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#,
    ));
    let started = Instant::now();
    let a = deliver(&ctx(&r.url("")), fast(), &t, &batch(vec![alert("n1")])).await;
    assert_eq!(a.result, Ok(()));
    assert_eq!(a.attempts, 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn tls_to_a_plain_http_port_fails_without_leaking() {
    let r = Receiver::start(Reply::ok("ok")).await;
    let t = Target::Webhook {
        url: SecretValue::new(format!("https://{}/hook/{CANARY}", r.addr)),
        hmac_key: Some(SecretValue::new(format!("key-{CANARY}"))),
    };
    let a = deliver(&ctx(""), fast(), &t, &batch(vec![alert("n1")])).await;
    let e = a.result.expect_err("TLS to plain port");
    println!("TLS error: {}", e.message);
    assert!(!e.message.contains(CANARY), "{}", e.message);
    assert!(
        e.message.to_lowercase().contains("connection failed")
            || e.message.to_lowercase().contains("tls"),
        "{}",
        e.message
    );
    assert!(a.attempts >= 1);
}

#[tokio::test]
async fn connection_refused_error_has_no_secret() {
    let addr = support::free_port();
    let t = Target::Telegram {
        bot_token: SecretValue::new(format!("999:{CANARY}")),
        chat_id: "1".into(),
    };
    let policy = RetryPolicy {
        max_attempts: 2,
        ..fast()
    };
    let a = deliver(
        &ctx(&format!("http://{addr}")),
        policy,
        &t,
        &batch(vec![alert("n1")]),
    )
    .await;
    let e = a.result.expect_err("refused");
    assert_eq!(a.attempts, 2);
    assert!(e.message.contains("connection failed"), "{}", e.message);
    assert!(!e.message.contains(CANARY), "{}", e.message);
}
