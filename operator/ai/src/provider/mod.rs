//! LLM providers behind one trait, with the shared retry loop and failure taxonomy.
//!
//! [`ChatProvider::attempt`] makes exactly one request; [`complete`] wraps it with the
//! attempt timeout, the operation timeout and at most [`MAX_ATTEMPTS`] attempts with
//! full-jitter exponential backoff ("Exponential Backoff And Jitter", AWS Architecture Blog,
//! 2015). Only Timeout, RateLimited and Unavailable are retried.

pub mod bedrock;
pub mod openai;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

pub use bedrock::BedrockProvider;
pub use openai::OpenAiProvider;

/// Hard upper bound on attempts per call.
pub const MAX_ATTEMPTS: u32 = 3;
/// Largest provider answer accepted, in bytes (`InvalidResponse` beyond). An answer is at
/// most `spec.provider.maxTokens` tokens (at most 32,768 by the CRD schema), a few bytes each,
/// and JSON escaping at most sextuples a character (`\u0000`): 32,768 × 4 × 6 ≈ 768 KiB of
/// text plus the envelope; 4 MiB leaves room for providers that add metadata.
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// `spec.provider.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Amazon Bedrock, Converse API.
    Bedrock,
    /// An OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, LocalAI, ...).
    Openai,
    /// Ollama's OpenAI-compatible `/v1` endpoint; priced at zero by default.
    Ollama,
}

impl ProviderKind {
    /// Lower-case name as in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Bedrock => "bedrock",
            ProviderKind::Openai => "openai",
            ProviderKind::Ollama => "ollama",
        }
    }
}

/// A secret value read from a Secret by the caller. `Debug` and `Display` print
/// `[redacted]`, and it has no `Serialize`, so it cannot end up in status or logs by accident.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        SecretString(value.into())
    }

    /// The secret itself; only for building a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How a provider authenticates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProviderCredentials {
    /// Bedrock: `aws-config`'s default chain (env, profile, IRSA web identity, ECS, IMDS).
    /// OpenAI-compatible: no `Authorization` header.
    #[default]
    Default,
    /// Bedrock: explicit keys from the referenced Secret.
    AwsKeys {
        /// `AWS_ACCESS_KEY_ID`.
        access_key_id: SecretString,
        /// `AWS_SECRET_ACCESS_KEY`.
        secret_access_key: SecretString,
        /// `AWS_SESSION_TOKEN`, for temporary credentials.
        session_token: Option<SecretString>,
    },
    /// OpenAI-compatible: `Authorization: Bearer <key>`.
    ApiKey(SecretString),
}

impl ProviderCredentials {
    /// Every secret value, for redaction.
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            ProviderCredentials::Default => Vec::new(),
            ProviderCredentials::AwsKeys {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                let mut v = vec![access_key_id.expose(), secret_access_key.expose()];
                v.extend(session_token.as_ref().map(SecretString::expose));
                v
            }
            ProviderCredentials::ApiKey(k) => vec![k.expose()],
        }
    }
}

/// `spec.provider`, with the credentials already resolved from the Secret by the caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProviderConfig {
    /// Provider type.
    pub kind: ProviderKind,
    /// Model id: a Bedrock model or inference-profile id / ARN, or the OpenAI `model`.
    pub model: String,
    /// AWS region (Bedrock); `None` lets the default chain decide.
    pub region: Option<String>,
    /// Endpoint override: Bedrock endpoint URL (VPC endpoint, tests), or the OpenAI-compatible
    /// base URL including `/v1` (defaults: `https://api.openai.com/v1`,
    /// `http://localhost:11434/v1` for Ollama).
    pub endpoint: Option<String>,
    /// Credentials.
    pub credentials: ProviderCredentials,
    /// Most output tokens per call (`spec.provider.maxTokens`).
    pub max_output_tokens: u32,
    /// Whole-call limit across attempts and backoff (`spec.provider.timeout`).
    pub timeout: Duration,
    /// Limit per attempt; `None` means `timeout / 2`.
    pub attempt_timeout: Option<Duration>,
}

impl ProviderConfig {
    /// A config with defaults: 1024 output tokens, 60 s timeout, 30 s per attempt.
    pub fn new(kind: ProviderKind, model: impl Into<String>) -> Self {
        ProviderConfig {
            kind,
            model: model.into(),
            region: None,
            endpoint: None,
            credentials: ProviderCredentials::Default,
            max_output_tokens: 1024,
            timeout: Duration::from_secs(60),
            attempt_timeout: None,
        }
    }

    /// The effective per-attempt timeout (never above `timeout`).
    pub fn effective_attempt_timeout(&self) -> Duration {
        self.attempt_timeout
            .unwrap_or(self.timeout / 2)
            .min(self.timeout)
    }
}

/// Why a call failed; maps onto the `ProviderError` condition's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureReason {
    /// No answer within the attempt or operation timeout.
    Timeout,
    /// HTTP 429 / ThrottlingException.
    RateLimited,
    /// HTTP 401/403 / AccessDeniedException, or credentials could not be loaded.
    AuthFailed,
    /// The answer could not be parsed, or was not valid findings after one repair.
    InvalidResponse,
    /// Connection failure or HTTP 5xx / ServiceUnavailableException.
    Unavailable,
    /// The request itself is wrong: unknown model, missing region, bad endpoint URL, 400.
    InvalidConfig,
}

impl FailureReason {
    /// CamelCase reason as written into the condition.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "Timeout",
            FailureReason::RateLimited => "RateLimited",
            FailureReason::AuthFailed => "AuthFailed",
            FailureReason::InvalidResponse => "InvalidResponse",
            FailureReason::Unavailable => "Unavailable",
            FailureReason::InvalidConfig => "InvalidConfig",
        }
    }

    fn retryable(self) -> bool {
        matches!(
            self,
            FailureReason::Timeout | FailureReason::RateLimited | FailureReason::Unavailable
        )
    }

    /// The reason for an HTTP error status.
    pub fn from_status(status: u16) -> FailureReason {
        match status {
            401 | 403 => FailureReason::AuthFailed,
            408 | 504 => FailureReason::Timeout,
            429 => FailureReason::RateLimited,
            500..=599 => FailureReason::Unavailable,
            400..=499 => FailureReason::InvalidConfig,
            _ => FailureReason::InvalidResponse,
        }
    }
}

/// A failed call, secrets already redacted from `message`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{}: {message} (after {attempts} attempt(s))", reason.as_str())]
pub struct ProviderFailure {
    /// Reason.
    pub reason: FailureReason,
    /// Human-readable detail, bounded and redacted.
    pub message: String,
    /// Attempts made (0 when the call was never sent).
    pub attempts: u32,
    /// HTTP status of the last attempt, when there was a response.
    pub status: Option<u16>,
}

impl ProviderFailure {
    /// A client that could not be built from its config: `InvalidConfig`, never sent.
    pub(crate) fn invalid_config(message: impl Into<String>) -> ProviderFailure {
        ProviderFailure {
            reason: FailureReason::InvalidConfig,
            message: message.into(),
            attempts: 0,
            status: None,
        }
    }
}

/// One failed attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptError {
    /// Reason.
    pub reason: FailureReason,
    /// Detail (redacted later).
    pub message: String,
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
}

/// One chat request.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    /// System prompt.
    pub system: String,
    /// User message.
    pub user: String,
    /// Most output tokens.
    pub max_output_tokens: u32,
}

/// The model's answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatResponse {
    /// Concatenated text content (may be empty).
    pub text: String,
    /// Input tokens as reported by the provider.
    pub input_tokens: Option<u64>,
    /// Output tokens as reported by the provider.
    pub output_tokens: Option<u64>,
    /// Attempts it took.
    pub attempts: u32,
}

/// A provider: one attempt of one chat request.
pub trait ChatProvider: Send + Sync {
    /// Sends `req` once. Implementations map transport and HTTP errors to
    /// [`FailureReason`]s and must not put secrets into [`AttemptError::message`].
    fn attempt(
        &self,
        req: &ChatRequest,
    ) -> impl Future<Output = Result<ChatResponse, AttemptError>> + Send;
}

/// Retry and timeout settings of [`complete`].
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts, clamped to 1..=[`MAX_ATTEMPTS`].
    pub max_attempts: u32,
    /// First backoff ceiling; doubles per attempt.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: MAX_ATTEMPTS,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: uniform in `[0, min(max_delay, base_delay * 2^retry)]`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max_delay);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=ms))
    }
}

/// Whether the provider answers, without spending tokens: `GET /models` on
/// OpenAI-compatible endpoints, `CountTokens` on Bedrock (see each provider's
/// `reachable`). One attempt bounded by `timeout`; secrets redacted from the failure.
/// Returns what was seen, for the `ProviderReachable` condition's message.
///
/// # Errors
/// The failure with its reason (`attempts` 0 when the client could not be built).
pub async fn check_reachable(
    cfg: &ProviderConfig,
    timeout: Duration,
) -> Result<String, ProviderFailure> {
    let secrets = cfg.credentials.secrets();
    let call = async {
        match cfg.kind {
            ProviderKind::Bedrock => match BedrockProvider::build(cfg).await {
                Ok(p) => Ok(p.reachable().await),
                Err(f) => Err(f),
            },
            ProviderKind::Openai | ProviderKind::Ollama => match OpenAiProvider::build(cfg) {
                Ok(p) => Ok(p.reachable().await),
                Err(f) => Err(f),
            },
        }
    };
    let r = match tokio::time::timeout(timeout, call).await {
        Ok(Ok(r)) => r,
        Ok(Err(f)) => {
            return Err(ProviderFailure {
                message: redact_message(&f.message, &secrets),
                ..f
            })
        }
        Err(_) => Err(AttemptError {
            reason: FailureReason::Timeout,
            message: format!("no answer within {timeout:?}"),
            status: None,
        }),
    };
    r.map_err(|e| ProviderFailure {
        reason: e.reason,
        message: redact_message(&e.message, &secrets),
        attempts: 1,
        status: e.status,
    })
}

/// Sends `req` through `provider` with timeouts and retries; secrets in `secrets` are
/// replaced by `[redacted]` in any failure message.
pub async fn complete<P: ChatProvider>(
    provider: &P,
    req: &ChatRequest,
    policy: &RetryPolicy,
    timeout: Duration,
    attempt_timeout: Duration,
    secrets: &[&str],
) -> Result<ChatResponse, ProviderFailure> {
    let max_attempts = policy.max_attempts.clamp(1, MAX_ATTEMPTS);
    let mut attempts = 0u32;
    let mut last: Option<AttemptError> = None;
    let run = async {
        loop {
            attempts += 1;
            let result = match tokio::time::timeout(attempt_timeout, provider.attempt(req)).await {
                Ok(r) => r,
                Err(_) => Err(AttemptError {
                    reason: FailureReason::Timeout,
                    message: format!("no answer within {attempt_timeout:?}"),
                    status: None,
                }),
            };
            match result {
                Ok(mut resp) => {
                    resp.attempts = attempts;
                    return Ok(resp);
                }
                Err(e) => {
                    let retry = e.reason.retryable() && attempts < max_attempts;
                    tracing::debug!(
                        attempt = attempts,
                        reason = e.reason.as_str(),
                        retry,
                        "provider attempt failed"
                    );
                    last = Some(e);
                    if !retry {
                        return Err(());
                    }
                    tokio::time::sleep(policy.backoff(attempts - 1)).await;
                }
            }
        }
    };
    let outcome = tokio::time::timeout(timeout, run).await;
    let fail = |e: AttemptError, attempts: u32| ProviderFailure {
        reason: e.reason,
        message: redact_message(&e.message, secrets),
        attempts,
        status: e.status,
    };
    match outcome {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(())) => Err(fail(
            last.unwrap_or(AttemptError {
                reason: FailureReason::Unavailable,
                message: "no attempt was made".into(),
                status: None,
            }),
            attempts,
        )),
        Err(_) => Err(ProviderFailure {
            reason: FailureReason::Timeout,
            message: format!(
                "operation timeout {timeout:?} passed{}",
                last.map(|e| format!("; last attempt: {}", redact_message(&e.message, secrets)))
                    .unwrap_or_default()
            ),
            attempts,
            status: None,
        }),
    }
}

/// Replaces each non-empty secret in `s` by `[redacted]`.
pub fn redact(s: &str, secrets: &[&str]) -> String {
    let mut out = s.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, "[redacted]");
    }
    out
}

/// [`redact`], then bounded to 500 characters: the form of every failure message.
pub fn redact_message(s: &str, secrets: &[&str]) -> String {
    let out = redact(s, secrets);
    match out.char_indices().nth(500) {
        Some((i, _)) => format!("{}…", &out[..i]),
        None => out,
    }
}

/// A provider built from a [`ProviderConfig`].
#[derive(Debug)]
pub enum AnyProvider {
    /// Bedrock Converse.
    Bedrock(BedrockProvider),
    /// OpenAI-compatible (also Ollama).
    OpenAi(OpenAiProvider),
}

impl AnyProvider {
    /// Builds the client for `cfg` (loads the AWS default chain for Bedrock).
    pub async fn build(cfg: &ProviderConfig) -> Result<AnyProvider, ProviderFailure> {
        match cfg.kind {
            ProviderKind::Bedrock => Ok(AnyProvider::Bedrock(BedrockProvider::build(cfg).await?)),
            ProviderKind::Openai | ProviderKind::Ollama => {
                Ok(AnyProvider::OpenAi(OpenAiProvider::build(cfg)?))
            }
        }
    }
}

impl ChatProvider for AnyProvider {
    async fn attempt(&self, req: &ChatRequest) -> Result<ChatResponse, AttemptError> {
        match self {
            AnyProvider::Bedrock(p) => p.attempt(req).await,
            AnyProvider::OpenAi(p) => p.attempt(req).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Scripted {
        calls: AtomicU32,
        fail_first: u32,
        reason: FailureReason,
        delay: Duration,
    }

    impl ChatProvider for Scripted {
        async fn attempt(&self, _req: &ChatRequest) -> Result<ChatResponse, AttemptError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            if n < self.fail_first {
                return Err(AttemptError {
                    reason: self.reason,
                    message: "key sk-canary rejected".into(),
                    status: None,
                });
            }
            Ok(ChatResponse {
                text: "ok".into(),
                ..Default::default()
            })
        }
    }

    fn req() -> ChatRequest {
        ChatRequest {
            system: "s".into(),
            user: "u".into(),
            max_output_tokens: 10,
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    fn scripted(fail_first: u32, reason: FailureReason, delay: Duration) -> Scripted {
        Scripted {
            calls: AtomicU32::new(0),
            fail_first,
            reason,
            delay,
        }
    }

    #[tokio::test]
    async fn retries_transient_failures_at_most_three_times() {
        let s = scripted(2, FailureReason::RateLimited, Duration::ZERO);
        let secs = Duration::from_secs(5);
        let r = complete(&s, &req(), &fast(), secs, secs, &[])
            .await
            .expect("third works");
        assert_eq!(r.attempts, 3);
        let s = scripted(9, FailureReason::Unavailable, Duration::ZERO);
        let e = complete(&s, &req(), &fast(), secs, secs, &["sk-canary"])
            .await
            .expect_err("fails");
        assert_eq!(
            (e.reason, e.attempts),
            (FailureReason::Unavailable, MAX_ATTEMPTS)
        );
        assert!(!e.message.contains("sk-canary") && e.message.contains("[redacted]"));
    }

    #[tokio::test]
    async fn auth_failures_are_not_retried() {
        let s = scripted(9, FailureReason::AuthFailed, Duration::ZERO);
        let secs = Duration::from_secs(5);
        let e = complete(&s, &req(), &fast(), secs, secs, &[])
            .await
            .expect_err("fails");
        assert_eq!((e.reason, e.attempts), (FailureReason::AuthFailed, 1));
    }

    #[tokio::test]
    async fn attempt_and_operation_timeouts() {
        let s = scripted(0, FailureReason::Timeout, Duration::from_millis(200));
        let e = complete(
            &s,
            &req(),
            &fast(),
            Duration::from_secs(5),
            Duration::from_millis(20),
            &[],
        )
        .await
        .expect_err("attempts time out");
        assert_eq!((e.reason, e.attempts), (FailureReason::Timeout, 3));
        let e = complete(
            &s,
            &req(),
            &fast(),
            Duration::from_millis(30),
            Duration::from_secs(5),
            &[],
        )
        .await
        .expect_err("operation times out");
        assert_eq!((e.reason, e.attempts), (FailureReason::Timeout, 1));
    }

    #[test]
    fn backoff_is_bounded_and_secrets_do_not_debug_print() {
        let p = RetryPolicy::default();
        for retry in 0..40 {
            assert!(p.backoff(retry) <= p.max_delay);
        }
        let c = ProviderCredentials::ApiKey(SecretString::new("sk-canary"));
        assert!(!format!("{c:?}").contains("sk-canary"));
        assert_eq!(FailureReason::from_status(429), FailureReason::RateLimited);
        assert_eq!(FailureReason::from_status(503), FailureReason::Unavailable);
        assert_eq!(FailureReason::from_status(403), FailureReason::AuthFailed);
    }
}
