//! Property tests of the LLM answer parser: the model's text is untrusted input (a prompt
//! injection in a node label or a log line can steer it). Whatever it answers, parsing must
//! not panic, and what reaches `status.findings` must stay within `FindingLimits` with links
//! removed and pseudonyms reversed.
//!
//! The provider clients read the answer first: whatever an OpenAI-compatible server or a
//! Bedrock endpoint sends (any status, any body, bodies of any size), a call must end in an
//! answer of bounded size or a classified failure with a bounded, redacted message.
//!
//! Case counts: 64 by default (an answer holds up to 14 findings of generated text, ~0.15 s
//! a case); `PROPTEST_CASES` for a longer run.

use fabricwatch_ai::anonymize::{Anonymizer, EntityKind};
use fabricwatch_ai::findings::{fallback_summary, parse, FindingLimits};
use proptest::prelude::*;
use serde_json::{json, Value};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig::with_cases(cases)
}

/// An anonymizer that knows a few long real names, so reversal makes text longer.
fn anonymizer() -> (Anonymizer, Vec<String>) {
    let mut an = Anonymizer::new(true);
    let long = "gpu-node-0123456789-abcdefghij-klmnopqrst-uvwxyz.rack42.zone-a.example.com";
    let pseudonyms = vec![
        an.name(EntityKind::Node, long),
        an.name(EntityKind::Node, "n2"),
        an.name(EntityKind::Pod, "trainer-7f9c6d5b8-xk2lp"),
        an.name(EntityKind::Ip, "10.1.2.3"),
    ];
    (an, pseudonyms)
}

/// Text a model might write: prose, pseudonyms, links in many spellings, control characters,
/// very long runs.
fn text(pseudonyms: Vec<String>) -> impl Strategy<Value = String> + Clone {
    let word = prop_oneof![
        "[a-zA-Z0-9.,:;()'\"-]{1,12}",
        proptest::sample::select(pseudonyms),
        "(https?|ftp|javascript|HTTP|git\\+ssh)://[a-z0-9./?=&%-]{0,30}",
        "(www\\.[a-z]{1,8}\\.com|mailto:x@y\\.z|\\(https://a\\.b\\)|<http://c\\.d>)",
        "[a-zA-Z]{1,8}[:=>(]https?://[a-z0-9./]{1,20}",
        "[\u{0}-\u{1f}\u{7f}\u{200b}\u{202e}]{1,3}",
        "\\PC{1,8}",
    ];
    prop_oneof![
        8 => proptest::collection::vec(word, 0..16).prop_map(|w| w.join(" ")),
        1 => (0usize..5000).prop_map(|n| "é".repeat(n)),
    ]
}

fn finding(pseudonyms: Vec<String>) -> impl Strategy<Value = Value> + Clone {
    let t = || text(pseudonyms.clone());
    let items = proptest::collection::vec(t(), 0..12);
    (
        prop_oneof![
            Just(json!("critical")),
            Just(json!("WARNING")),
            Just(json!(" info ")),
            Just(json!("urgent")),
            Just(json!(3))
        ],
        t(),
        t(),
        items.clone(),
        items,
        prop_oneof![t().prop_map(Value::from), Just(Value::Null), Just(json!(7))],
        prop_oneof![
            (0.0f64..=1.0).prop_map(Value::from),
            Just(json!(1.5)),
            Just(json!(-0.1)),
            Just(json!("high"))
        ],
        proptest::option::of(t()),
    )
        .prop_map(
            |(severity, title, summary, evidence, affected, recommendation, confidence, extra)| {
                let mut f = json!({
                    "severity": severity, "title": title, "summary": summary,
                    "evidence": evidence, "affected": affected,
                    "recommendation": recommendation, "confidence": confidence,
                });
                if let Some(e) = extra {
                    // Fields the schema does not know, e.g. routing the model made up.
                    f["webhook"] = json!(e);
                }
                f
            },
        )
}

fn answer() -> impl Strategy<Value = String> {
    let (_, pseudonyms) = anonymizer();
    let findings = proptest::collection::vec(finding(pseudonyms.clone()), 0..14);
    prop_oneof![
        3 => findings.clone().prop_map(|f| json!({"findings": f}).to_string()),
        1 => findings.clone().prop_map(|f| Value::Array(f).to_string()),
        1 => (text(pseudonyms.clone()), findings.clone(), text(pseudonyms.clone())).prop_map(
            |(pre, f, post)| format!("{pre}\n```json\n{}\n```\n{post}", json!({"findings": f}))
        ),
        1 => findings.prop_map(|f| {
            // Cut short, as when the model hits its output token limit.
            let s = json!({"findings": f}).to_string();
            let cut = s.char_indices().nth(s.chars().count() * 2 / 3).map_or(s.len(), |(i, _)| i);
            s[..cut].to_string()
        }),
        1 => text(pseudonyms),
        1 => (0usize..300).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        1 => "\\PC{0,300}",
    ]
}

/// A link as the generator writes them: a known scheme anywhere in a word, or a word that
/// starts (after an opening bracket or quote) with `www.` or `mailto:`.
fn has_link(s: &str) -> bool {
    s.split_whitespace().any(|word| {
        let lower = word.to_ascii_lowercase();
        let start = lower.trim_start_matches(['(', '[', '<', '"', '\'']);
        ["http://", "https://", "ftp://", "javascript://"]
            .iter()
            .any(|l| lower.contains(l))
            || start.starts_with("www.")
            || start.starts_with("mailto:")
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_answer_parses_or_fails_cleanly_within_limits(answer in answer()) {
        let (an, _) = anonymizer();
        let l = FindingLimits::default();
        match parse(&answer, &l, &an) {
            Ok(parsed) => {
                prop_assert!(parsed.findings.len() <= l.max_findings);
                for f in &parsed.findings {
                    // `…` marks a cut: one character beyond the limit.
                    prop_assert!(f.title.chars().count() <= l.max_title_chars + 1);
                    prop_assert!(f.summary.chars().count() <= l.max_text_chars + 1);
                    prop_assert!(f.recommendation.chars().count() <= l.max_text_chars + 1);
                    prop_assert!(f.evidence.len() <= l.max_items && f.affected.len() <= l.max_items);
                    for item in f.evidence.iter().chain(&f.affected) {
                        prop_assert!(item.chars().count() <= l.max_item_chars + 1);
                    }
                    prop_assert!((0.0..=1.0).contains(&f.confidence));
                    for s in [&f.title, &f.summary, &f.recommendation].into_iter().chain(&f.evidence).chain(&f.affected) {
                        prop_assert!(!has_link(s), "a link survived: {s:?}");
                        prop_assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "control character in {s:?}");
                    }
                }
                let bytes = serde_json::to_vec(&parsed.findings).expect("serialize").len();
                prop_assert!(bytes <= 64 * 1024, "findings of {bytes} bytes");
            }
            Err(e) => {
                prop_assert!(e.to_string().len() <= 1024, "error of {} bytes", e.to_string().len());
            }
        }
        if let Some(s) = fallback_summary(&answer, &l, &an) {
            prop_assert!(s.chars().count() <= l.max_fallback_chars + 1);
            prop_assert!(!has_link(&s), "a link survived: {s:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Provider answers: the real clients (reqwest for OpenAI-compatible servers,
// aws-sdk-bedrockruntime for Bedrock) against a server in this process that answers
// generated bytes.
// ---------------------------------------------------------------------------------------

use std::time::Duration;

use fabricwatch_ai::provider::{
    complete, AnyProvider, ChatRequest, ProviderConfig, ProviderCredentials, ProviderKind,
    RetryPolicy, SecretString, MAX_RESPONSE_BYTES,
};

const API_KEY: &str = "sk-canary-0123456789abcdef";
const SECRET_KEY: &str = "canary-aws-secret-0123456789abcdef";

/// One answer of the fake server: status, extra header lines, body.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    headers: Vec<String>,
    body: Vec<u8>,
}

fn assistant_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "\\PC{0,200}",
        1 => Just(format!("leaked {API_KEY} and {SECRET_KEY}")),
        1 => (MAX_RESPONSE_BYTES - 2048..MAX_RESPONSE_BYTES + 2048).prop_map(|n| "a".repeat(n)),
    ]
}

/// A JSON number or something else where a token count belongs.
fn count() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!("12")),
        Just(Value::Null),
    ]
}

fn openai_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (assistant_text(), count(), count(), 0usize..3).prop_map(|(t, p, c, n)| {
            let choice = json!({"index": 0, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"});
            json!({"choices": vec![choice; n], "usage": {"prompt_tokens": p, "completion_tokens": c}}).to_string().into_bytes()
        }),
        1 => Just(br#"{"choices":[{"message":{"content":null}}]}"#.to_vec()),
        1 => Just(br#"{"choices":[{"message":{}}]}"#.to_vec()),
        1 => Just(br#"{"choices":"x","usage":[]}"#.to_vec()),
        1 => (0usize..100_000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        1 => (assistant_text(), any::<u16>()).prop_map(|(t, c)| json!({"error": {"message": t, "type": "x", "code": c}}).to_string().into_bytes()),
        2 => proptest::collection::vec(any::<u8>(), 0..512),
    ]
}

fn bedrock_body() -> impl Strategy<Value = Vec<u8>> {
    let block = prop_oneof![
        4 => assistant_text().prop_map(|t| json!({"text": t})),
        1 => Just(json!({"toolUse": {"toolUseId": "t", "name": "n", "input": {}}})),
        1 => Just(json!({"reasoningContent": {"reasoningText": {"text": "hm"}}})),
        1 => Just(json!({"unknownBlock": 1})),
        1 => Just(json!(42)),
    ];
    prop_oneof![
        4 => (proptest::collection::vec(block, 0..4), count(), count()).prop_map(|(content, i, o)| {
            json!({
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": i, "outputTokens": o, "totalTokens": 3},
                "metrics": {"latencyMs": 1}
            }).to_string().into_bytes()
        }),
        1 => assistant_text().prop_map(|t| json!({"message": t}).to_string().into_bytes()),
        1 => Just(br#"{"output":{"unknownOutput":{}},"stopReason":"x","usage":{},"metrics":{}}"#.to_vec()),
        1 => (0usize..100_000).prop_map(|n| format!("{}{}", "{\"a\":".repeat(n), "}".repeat(n)).into_bytes()),
        2 => proptest::collection::vec(any::<u8>(), 0..512),
    ]
}

fn http_answer(body: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Answer> {
    (
        prop_oneof![
            6 => Just(200u16),
            1 => proptest::sample::select(vec![201u16, 204, 301, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 504, 599]),
            1 => 100u16..1000,
        ],
        proptest::collection::vec(
            prop_oneof![
                Just("x-amzn-ErrorType: ThrottlingException:http://internal.amazon.com/".to_string()),
                Just("x-amzn-ErrorType: ValidationException".to_string()),
                Just("Retry-After: 1".to_string()),
                Just("Content-Type: text/html".to_string()),
                "x-amzn-ErrorType: \\PC{0,40}",
            ],
            0..2,
        ),
        body,
    )
        .prop_map(|(status, headers, body)| Answer { status, headers, body })
}

/// Answers every request on 127.0.0.1 with `a` (after reading the request) until the
/// runtime ends; returns `http://ADDR`.
async fn fake_provider(a: Answer) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let a = std::sync::Arc::new(a);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let a = a.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    if let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
                        let len = head
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
                let mut out = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: application/json\r\n",
                    a.status
                );
                for h in &a.headers {
                    out.push_str(h);
                    out.push_str("\r\n");
                }
                out.push_str(&format!(
                    "Content-Length: {}\r\nConnection: close\r\n\r\n",
                    a.body.len()
                ));
                let _ = s.write_all(out.as_bytes()).await;
                let _ = s.write_all(&a.body).await;
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

fn call(
    kind: ProviderKind,
    a: Answer,
) -> Result<fabricwatch_ai::provider::ChatResponse, fabricwatch_ai::provider::ProviderFailure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let url = fake_provider(a).await;
        let mut cfg = ProviderConfig::new(kind, "m");
        match kind {
            ProviderKind::Bedrock => {
                cfg.region = Some("us-east-1".into());
                cfg.endpoint = Some(url);
                cfg.credentials = ProviderCredentials::AwsKeys {
                    access_key_id: SecretString::new("AKIDCANARY"),
                    secret_access_key: SecretString::new(SECRET_KEY),
                    session_token: None,
                };
            }
            _ => {
                cfg.endpoint = Some(format!("{url}/v1"));
                cfg.credentials = ProviderCredentials::ApiKey(SecretString::new(API_KEY));
            }
        }
        cfg.timeout = Duration::from_secs(8);
        cfg.attempt_timeout = Some(Duration::from_secs(4));
        let provider = AnyProvider::build(&cfg).await?;
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        let req = ChatRequest {
            system: "s".into(),
            user: "u".into(),
            max_output_tokens: 64,
        };
        complete(
            &provider,
            &req,
            &policy,
            cfg.timeout,
            cfg.effective_attempt_timeout(),
            &cfg.credentials.secrets(),
        )
        .await
    })
}

/// `secret`: the credential the provider was given (only its own are redacted).
fn check_call(
    r: Result<fabricwatch_ai::provider::ChatResponse, fabricwatch_ai::provider::ProviderFailure>,
    status: u16,
    secret: &str,
) -> Result<(), TestCaseError> {
    match r {
        Ok(resp) => {
            prop_assert!((200..300).contains(&status), "an answer from HTTP {status}");
            prop_assert!(
                resp.text.len() <= MAX_RESPONSE_BYTES,
                "answer of {} bytes",
                resp.text.len()
            );
            prop_assert!((1..=3).contains(&resp.attempts));
        }
        Err(f) => {
            // `redact_message`: 500 characters and the `…` of a cut.
            prop_assert!(
                f.message.chars().count() <= 501,
                "failure message of {} chars",
                f.message.chars().count()
            );
            prop_assert!(!f.message.contains(secret), "a secret in {:?}", f.message);
            prop_assert!(f.attempts <= 3);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn openai_answers_end_bounded_or_classified(a in http_answer(openai_body())) {
        let status = a.status;
        check_call(call(ProviderKind::Openai, a), status, API_KEY)?;
    }

    #[test]
    fn bedrock_answers_end_bounded_or_classified(a in http_answer(bedrock_body())) {
        let status = a.status;
        check_call(call(ProviderKind::Bedrock, a), status, SECRET_KEY)?;
    }
}

proptest! {
    #![proptest_config(config())]

    /// Free text from the cluster (Event messages, labels, log lines) goes through the
    /// anonymizer before a prompt: no panic, every registered name that stands as a word is
    /// replaced, and the text grows by at most the pseudonyms put in.
    #[test]
    fn anonymizer_text_survives_anything(text in text(vec!["gpu-node-7".into(), "10.1.2.3".into(), "fe80::1".into()])) {
        let mut an = Anonymizer::new(true);
        let real = "gpu-node-7";
        an.name(EntityKind::Node, real);
        let out = an.text(&text);
        // Pseudonyms are `<prefix>-<n>`, at most ~12 bytes; the shortest address replaced
        // is `::` (2 bytes).
        prop_assert!(out.len() <= text.len() * 6 + 16, "{} → {} bytes", text.len(), out.len());
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        for (i, _) in out.match_indices(real) {
            let before = i.checked_sub(1).map(|j| out.as_bytes()[j]);
            let after = out.as_bytes().get(i + real.len()).copied();
            prop_assert!(before.is_some_and(word) || after.is_some_and(word), "{real} survived in {out:?}");
        }
        let _ = an.reverse(&out);
    }
}
