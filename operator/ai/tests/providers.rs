//! The real provider clients (aws-sdk-bedrockruntime, reqwest) against the local wire-protocol
//! stand-in on 127.0.0.1.

use std::net::SocketAddr;
use std::time::Duration;

use fabricwatch_ai::provider::{
    complete, AnyProvider, ChatRequest, FailureReason, ProviderConfig, ProviderCredentials,
    ProviderKind, RetryPolicy, SecretString,
};
use fabricwatch_ai::testing::{Protocol, Reply, StandIn};

const ACCESS_KEY: &str = "AKIDSTANDINCANARY01";
const SECRET_KEY: &str = "canary-aws-secret-0123456789abcdef";
const API_KEY: &str = "sk-canary-0123456789abcdef";
const MODEL: &str = "anthropic.claude-3-5-haiku-20241022-v1:0";

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn bedrock_cfg(server: &StandIn) -> ProviderConfig {
    let mut cfg = ProviderConfig::new(ProviderKind::Bedrock, MODEL);
    cfg.region = Some("us-east-1".into());
    cfg.endpoint = Some(server.url());
    cfg.credentials = ProviderCredentials::AwsKeys {
        access_key_id: SecretString::new(ACCESS_KEY),
        secret_access_key: SecretString::new(SECRET_KEY),
        session_token: None,
    };
    cfg.timeout = Duration::from_secs(10);
    cfg.attempt_timeout = Some(Duration::from_secs(5));
    cfg
}

fn openai_cfg(server: &StandIn, key: &str) -> ProviderConfig {
    let mut cfg = ProviderConfig::new(ProviderKind::Openai, "gpt-4o-mini");
    cfg.endpoint = Some(server.openai_base());
    cfg.credentials = ProviderCredentials::ApiKey(SecretString::new(key));
    cfg.timeout = Duration::from_secs(10);
    cfg.attempt_timeout = Some(Duration::from_secs(5));
    cfg
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

fn req() -> ChatRequest {
    ChatRequest {
        system: "system prompt".into(),
        user: "user message".into(),
        max_output_tokens: 256,
    }
}

async fn call(
    cfg: &ProviderConfig,
) -> Result<fabricwatch_ai::provider::ChatResponse, fabricwatch_ai::ProviderFailure> {
    let p = AnyProvider::build(cfg).await?;
    let secrets = cfg.credentials.secrets();
    complete(
        &p,
        &req(),
        &fast_retry(),
        cfg.timeout,
        cfg.effective_attempt_timeout(),
        &secrets,
    )
    .await
}

fn assert_no_canary(text: &str) {
    for canary in [SECRET_KEY, API_KEY] {
        assert!(!text.contains(canary), "canary leaked: {text}");
    }
}

#[tokio::test]
async fn bedrock_converse_success_is_sigv4_signed() {
    let server = StandIn::start(local(), None).await.expect("stand-in");
    server.push([Reply::Answer("{\"findings\":[]}".into())]);
    let resp = call(&bedrock_cfg(&server)).await.expect("converse works");
    assert_eq!(resp.text, "{\"findings\":[]}");
    assert_eq!(resp.attempts, 1);
    assert!(resp.input_tokens.is_some_and(|t| t > 0));
    assert!(resp.output_tokens.is_some_and(|t| t > 0));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.protocol, Protocol::Bedrock);
    assert_eq!(r.model, MODEL, "model id survives path encoding");
    let auth = r.header("authorization").expect("Authorization header");
    assert!(
        auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/"))
            && auth.contains("/us-east-1/bedrock/aws4_request")
            && auth.contains("SignedHeaders=")
            && auth.contains("Signature="),
        "{auth}"
    );
    assert!(
        r.header("x-amz-date").is_some_and(|d| d.len() == 16),
        "x-amz-date"
    );
    assert_no_canary(&format!("{:?}", r.headers));
    assert_eq!(r.body["system"][0]["text"], "system prompt");
    assert_eq!(r.body["messages"][0]["role"], "user");
    assert_eq!(r.body["messages"][0]["content"][0]["text"], "user message");
    assert_eq!(r.body["inferenceConfig"]["maxTokens"], 256);
}

#[tokio::test]
async fn bedrock_throttling_is_retried_three_times_then_rate_limited() {
    let server = StandIn::start(local(), None).await.expect("stand-in");
    server.set_default(Reply::Error {
        status: 429,
        message: "Too many requests".into(),
    });
    let e = call(&bedrock_cfg(&server)).await.expect_err("throttled");
    assert_eq!(
        (e.reason, e.attempts, e.status),
        (FailureReason::RateLimited, 3, Some(429))
    );
    assert_eq!(server.request_count(), 3);
    assert_no_canary(&e.to_string());
}

#[tokio::test]
async fn bedrock_500_then_success_recovers_and_403_is_auth_failed_at_once() {
    let server = StandIn::start(local(), None).await.expect("stand-in");
    server.push([
        Reply::Error {
            status: 500,
            message: "boom".into(),
        },
        Reply::Answer("ok".into()),
    ]);
    let resp = call(&bedrock_cfg(&server))
        .await
        .expect("second attempt works");
    assert_eq!((resp.text.as_str(), resp.attempts), ("ok", 2));

    server.set_default(Reply::Error {
        status: 500,
        message: "boom".into(),
    });
    let e = call(&bedrock_cfg(&server)).await.expect_err("500s");
    assert_eq!((e.reason, e.attempts), (FailureReason::Unavailable, 3));

    server.set_default(Reply::Error {
        status: 403,
        message: "The security token included in the request is invalid".into(),
    });
    let before = server.request_count();
    let e = call(&bedrock_cfg(&server)).await.expect_err("denied");
    assert_eq!((e.reason, e.attempts), (FailureReason::AuthFailed, 1));
    assert_eq!(server.request_count(), before + 1);
    assert_no_canary(&e.to_string());
}

#[tokio::test]
async fn bedrock_attempt_timeout_is_enforced() {
    let server = StandIn::start(local(), None).await.expect("stand-in");
    server.set_default(Reply::Delay {
        ms: 3000,
        then: Box::new(Reply::Answer("late".into())),
    });
    let mut cfg = bedrock_cfg(&server);
    cfg.attempt_timeout = Some(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let e = call(&cfg).await.expect_err("times out");
    assert_eq!((e.reason, e.attempts), (FailureReason::Timeout, 3));
    assert_eq!(server.request_count(), 3);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn bedrock_garbage_body_is_invalid_response_without_retry() {
    let server = StandIn::start(local(), None).await.expect("stand-in");
    server.set_default(Reply::Raw("{\"output\": [not json".into()));
    let e = call(&bedrock_cfg(&server)).await.expect_err("garbage");
    assert_eq!(e.reason, FailureReason::InvalidResponse, "{e}");
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn bedrock_without_region_is_invalid_config() {
    let server = StandIn::start(local(), None).await.expect("stand-in");
    let mut cfg = bedrock_cfg(&server);
    cfg.region = None;
    // Only meaningful when the environment names no region either.
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        let e = call(&cfg).await.expect_err("no region");
        assert_eq!(e.reason, FailureReason::InvalidConfig);
        assert_eq!(server.request_count(), 0);
    }
}

#[tokio::test]
async fn openai_success_sends_bearer_key_and_messages() {
    let server = StandIn::start(local(), Some(API_KEY.into()))
        .await
        .expect("stand-in");
    server.push([Reply::Answer("hello".into())]);
    let resp = call(&openai_cfg(&server, API_KEY)).await.expect("works");
    assert_eq!(resp.text, "hello");
    assert!(resp.input_tokens.is_some_and(|t| t > 0));
    let r = &server.requests()[0];
    assert_eq!(r.protocol, Protocol::Openai);
    assert_eq!(r.body["model"], "gpt-4o-mini");
    assert_eq!(r.body["messages"][0]["role"], "system");
    assert_eq!(r.body["messages"][1]["content"], "user message");
    assert_eq!(r.body["max_tokens"], 256);
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
}

#[tokio::test]
async fn openai_wrong_key_is_auth_failed_and_key_is_not_echoed() {
    let server = StandIn::start(local(), Some("sk-the-right-one".into()))
        .await
        .expect("stand-in");
    let e = call(&openai_cfg(&server, API_KEY)).await.expect_err("401");
    assert_eq!(
        (e.reason, e.attempts, e.status),
        (FailureReason::AuthFailed, 1, Some(401))
    );
    assert_no_canary(&format!("{e} {e:?}"));
}

#[tokio::test]
async fn openai_429_500_timeout_and_garbage() {
    let server = StandIn::start(local(), None).await.expect("stand-in");
    server.set_default(Reply::Error {
        status: 429,
        message: "Rate limit reached".into(),
    });
    let e = call(&openai_cfg(&server, API_KEY)).await.expect_err("429");
    assert_eq!((e.reason, e.attempts), (FailureReason::RateLimited, 3));

    server.set_default(Reply::Error {
        status: 502,
        message: "bad gateway".into(),
    });
    let e = call(&openai_cfg(&server, API_KEY)).await.expect_err("502");
    assert_eq!((e.reason, e.attempts), (FailureReason::Unavailable, 3));

    server.set_default(Reply::Delay {
        ms: 3000,
        then: Box::new(Reply::Answer("late".into())),
    });
    let mut cfg = openai_cfg(&server, API_KEY);
    cfg.attempt_timeout = Some(Duration::from_millis(200));
    let e = call(&cfg).await.expect_err("timeout");
    assert_eq!((e.reason, e.attempts), (FailureReason::Timeout, 3));

    server.set_default(Reply::Raw("<html>proxy error</html>".into()));
    let e = call(&openai_cfg(&server, API_KEY))
        .await
        .expect_err("garbage");
    assert_eq!((e.reason, e.attempts), (FailureReason::InvalidResponse, 1));
    assert_no_canary(&e.to_string());
}

#[tokio::test]
async fn openai_unreachable_is_unavailable() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind(local())
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut cfg = ProviderConfig::new(ProviderKind::Ollama, "llama3.1:8b");
    cfg.endpoint = Some(format!("http://127.0.0.1:{port}/v1"));
    cfg.timeout = Duration::from_secs(5);
    let e = call(&cfg).await.expect_err("refused");
    assert_eq!((e.reason, e.attempts), (FailureReason::Unavailable, 3));
}

#[tokio::test]
async fn reachability_checks_spend_no_tokens() {
    use fabricwatch_ai::provider::check_reachable;
    let server = StandIn::start(local(), Some(API_KEY.into()))
        .await
        .expect("stand-in");
    let t = Duration::from_secs(5);
    // OpenAI-compatible: GET /models with the key; the model must be listed when any are.
    server.set_models(&["gpt-4o-mini", "gpt-4o"]);
    let ok = check_reachable(&openai_cfg(&server, API_KEY), t)
        .await
        .expect("reachable");
    assert_eq!(ok, "GET /models: 2 models, gpt-4o-mini listed");
    let bad_key = check_reachable(&openai_cfg(&server, "sk-wrong-key-0000"), t)
        .await
        .expect_err("401");
    assert_eq!(bad_key.reason, FailureReason::AuthFailed);
    assert_eq!(bad_key.status, Some(401));
    assert!(!bad_key.message.contains("sk-wrong-key-0000"), "{bad_key}");
    let mut other = openai_cfg(&server, API_KEY);
    other.model = "gpt-5-nonexistent".into();
    let unlisted = check_reachable(&other, t).await.expect_err("unlisted");
    assert_eq!(unlisted.reason, FailureReason::InvalidConfig);
    assert_eq!(
        unlisted.message,
        "GET /models: model \"gpt-5-nonexistent\" is not among the 2 listed"
    );
    // Bedrock: CountTokens, signed by the SDK.
    let ok = check_reachable(&bedrock_cfg(&server), t)
        .await
        .expect("bedrock reachable");
    assert!(
        ok.starts_with(&format!("CountTokens for {MODEL}: ")),
        "{ok}"
    );
    // Neither counts as a chat call.
    assert_eq!(server.request_count(), 0);
    // Nothing listening: Unavailable, quickly.
    let dead = {
        let l = std::net::TcpListener::bind(local()).expect("bind");
        let a = l.local_addr().expect("addr");
        drop(l);
        a
    };
    let mut gone = openai_cfg(&server, API_KEY);
    gone.endpoint = Some(format!("http://{dead}/v1"));
    let e = check_reachable(&gone, t).await.expect_err("refused");
    assert_eq!(e.reason, FailureReason::Unavailable, "{e}");
}
