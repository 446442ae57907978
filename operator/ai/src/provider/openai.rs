//! OpenAI-compatible chat completions: `POST {base}/chat/completions` with
//! `Authorization: Bearer <key>`, as served by OpenAI, Azure OpenAI-compatible gateways,
//! vLLM, LocalAI and Ollama (`/v1`). Request and response shapes follow the OpenAI API
//! reference (Chat → Create chat completion).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use fabricwatch_common::http_body::read_limited;

use super::{
    AttemptError, ChatProvider, ChatRequest, ChatResponse, FailureReason, ProviderConfig,
    ProviderCredentials, ProviderFailure, ProviderKind, SecretString, MAX_RESPONSE_BYTES,
};

/// Default base URL for `openai`.
pub const OPENAI_BASE: &str = "https://api.openai.com/v1";
/// Default base URL for `ollama`.
pub const OLLAMA_BASE: &str = "http://localhost:11434/v1";

/// A chat-completions client for one model.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    http: reqwest::Client,
    url: String,
    models_url: String,
    model: String,
    api_key: Option<SecretString>,
}

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: [WireMessage<'a>; 2],
    max_tokens: u32,
    temperature: f64,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireAnswer,
}

#[derive(Deserialize)]
struct WireAnswer {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl OpenAiProvider {
    /// Builds the client; `InvalidConfig` for an empty model, a base URL that is not
    /// `http(s)://`, or AWS keys given to this provider.
    pub fn build(cfg: &ProviderConfig) -> Result<OpenAiProvider, ProviderFailure> {
        if cfg.model.trim().is_empty() {
            return Err(ProviderFailure::invalid_config(
                "the provider needs a model",
            ));
        }
        let base = cfg.endpoint.clone().unwrap_or_else(|| {
            if cfg.kind == ProviderKind::Ollama {
                OLLAMA_BASE.to_string()
            } else {
                OPENAI_BASE.to_string()
            }
        });
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ProviderFailure::invalid_config(format!(
                "endpoint {base:?} is not an http(s) URL"
            )));
        }
        let api_key = match &cfg.credentials {
            ProviderCredentials::ApiKey(k) => Some(k.clone()),
            ProviderCredentials::Default => None,
            ProviderCredentials::AwsKeys { .. } => {
                return Err(ProviderFailure::invalid_config(
                    "AWS keys are for the bedrock provider",
                ));
            }
        };
        let attempt = cfg.effective_attempt_timeout();
        let http = reqwest::Client::builder()
            .timeout(attempt)
            .connect_timeout(attempt.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ProviderFailure::invalid_config(format!("HTTP client: {e}")))?;
        Ok(OpenAiProvider {
            http,
            url: format!("{}/chat/completions", base.trim_end_matches('/')),
            models_url: format!("{}/models", base.trim_end_matches('/')),
            model: cfg.model.clone(),
            api_key,
        })
    }

    /// Sends `request` with the API key as `Authorization: Bearer` (when one is set) and
    /// returns the status and body of a 2xx answer. Any other status is an error with the
    /// status's reason and the message `{context}HTTP {status}: ` followed by the first 300
    /// characters of the body; a body over [`MAX_RESPONSE_BYTES`] is `InvalidResponse` (the
    /// rest is not read).
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        context: &str,
    ) -> Result<(u16, Vec<u8>), AttemptError> {
        let mut request = request;
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let resp = request.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            // 300 characters are quoted: 4 bytes each at most.
            let detail = read_limited(resp, 1200)
                .await
                .map(|(b, _)| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            return Err(AttemptError {
                reason: FailureReason::from_status(status),
                message: format!(
                    "{context}HTTP {status}: {}",
                    detail.chars().take(300).collect::<String>()
                ),
                status: Some(status),
            });
        }
        let (bytes, longer) = read_limited(resp, MAX_RESPONSE_BYTES)
            .await
            .map_err(transport)?;
        if longer {
            return Err(AttemptError {
                reason: FailureReason::InvalidResponse,
                message: format!("{context}answer longer than {MAX_RESPONSE_BYTES} bytes"),
                status: Some(status),
            });
        }
        Ok((status, bytes))
    }
}

impl ChatProvider for OpenAiProvider {
    async fn attempt(&self, req: &ChatRequest) -> Result<ChatResponse, AttemptError> {
        let body = WireRequest {
            model: &self.model,
            messages: [
                WireMessage {
                    role: "system",
                    content: &req.system,
                },
                WireMessage {
                    role: "user",
                    content: &req.user,
                },
            ],
            max_tokens: req.max_output_tokens,
            temperature: 0.0,
        };
        let (status, bytes) = self.send(self.http.post(&self.url).json(&body), "").await?;
        let wire: WireResponse = serde_json::from_slice(&bytes).map_err(|e| AttemptError {
            reason: FailureReason::InvalidResponse,
            message: format!("chat-completions response is not valid JSON: {e}"),
            status: Some(status),
        })?;
        let text = wire
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .unwrap_or_default();
        Ok(ChatResponse {
            text,
            input_tokens: wire.usage.as_ref().and_then(|u| u.prompt_tokens),
            output_tokens: wire.usage.as_ref().and_then(|u| u.completion_tokens),
            attempts: 1,
        })
    }
}

#[derive(Deserialize)]
struct WireModels {
    #[serde(default)]
    data: Vec<WireModel>,
}

#[derive(Deserialize)]
struct WireModel {
    id: String,
}

impl OpenAiProvider {
    /// Reachability without tokens: `GET {base}/models` (OpenAI "List models"; also served
    /// by vLLM, LocalAI and Ollama's `/v1`) with the same key as chat calls. Up when it
    /// answers 2xx with a model list that contains the configured model (an empty list is
    /// taken as "not told"). Returns what it saw, e.g. `GET /models: 12 models, gpt-4o-mini
    /// listed`.
    ///
    /// # Errors
    /// `AuthFailed` for 401/403, `InvalidConfig` when the model is not listed, the other
    /// reasons as for chat calls.
    pub async fn reachable(&self) -> Result<String, AttemptError> {
        let (status, bytes) = self
            .send(self.http.get(&self.models_url), "GET /models: ")
            .await?;
        let wire: WireModels = serde_json::from_slice(&bytes).map_err(|e| AttemptError {
            reason: FailureReason::InvalidResponse,
            message: format!("GET /models: not a model list: {e}"),
            status: Some(status),
        })?;
        let n = wire.data.len();
        if n > 0 && !wire.data.iter().any(|m| m.id == self.model) {
            return Err(AttemptError {
                reason: FailureReason::InvalidConfig,
                message: format!(
                    "GET /models: model {:?} is not among the {n} listed",
                    self.model
                ),
                status: Some(status),
            });
        }
        Ok(if n == 0 {
            "GET /models: answered, no models listed".to_string()
        } else {
            format!("GET /models: {n} models, {} listed", self.model)
        })
    }
}

fn transport(e: reqwest::Error) -> AttemptError {
    let reason = if e.is_timeout() {
        FailureReason::Timeout
    } else if e.is_decode() {
        FailureReason::InvalidResponse
    } else if e.is_builder() {
        FailureReason::InvalidConfig
    } else {
        FailureReason::Unavailable
    };
    // The error chain names the cause (connection refused, TLS, ...); the URL carries no
    // secret, the key travels in a header.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    AttemptError {
        reason,
        message,
        status: e.status().map(|s| s.as_u16()),
    }
}
