//! Amazon Bedrock through the Converse API (`POST /model/{modelId}/converse`), using
//! `aws-sdk-bedrockruntime` so SigV4 signing, credential refresh (IRSA web identity, ECS,
//! IMDS) and endpoint resolution are the SDK's.
//!
//! The SDK's own retries are switched off (one attempt per `send`) so that the shared loop in
//! [`super::complete`] decides; its attempt and operation timeouts are both set to the
//! attempt timeout, because the SDK sets none by default.

use std::time::Duration;

use aws_sdk_bedrockruntime::config::http::HttpResponse;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::timeout::TimeoutConfig;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_bedrockruntime::error::{DisplayErrorContext, SdkError};
use aws_sdk_bedrockruntime::operation::converse::ConverseError;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseOutput, InferenceConfiguration, Message,
    SystemContentBlock,
};
use aws_sdk_bedrockruntime::Client;

use super::{
    AttemptError, ChatProvider, ChatRequest, ChatResponse, FailureReason, ProviderConfig,
    ProviderCredentials, ProviderFailure, MAX_RESPONSE_BYTES,
};

/// A Bedrock Converse client for one model.
#[derive(Debug, Clone)]
pub struct BedrockProvider {
    client: Client,
    model: String,
}

impl BedrockProvider {
    /// Builds the client: region and credentials from `cfg` or `aws-config`'s default chain,
    /// `cfg.endpoint` as endpoint override. Fails with `InvalidConfig` when no region is set
    /// anywhere or the model id is empty.
    pub async fn build(cfg: &ProviderConfig) -> Result<BedrockProvider, ProviderFailure> {
        if cfg.model.trim().is_empty() {
            return Err(ProviderFailure::invalid_config("bedrock needs a model id"));
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &cfg.region {
            loader = loader.region(Region::new(region.clone()));
        }
        match &cfg.credentials {
            ProviderCredentials::AwsKeys {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                loader = loader.credentials_provider(Credentials::new(
                    access_key_id.expose(),
                    secret_access_key.expose(),
                    session_token.as_ref().map(|t| t.expose().to_string()),
                    None,
                    "fabricwatch-secret",
                ));
            }
            ProviderCredentials::Default => {}
            ProviderCredentials::ApiKey(_) => {
                return Err(ProviderFailure::invalid_config(
                    "bedrock takes AWS keys or the default chain, not an API key",
                ));
            }
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(ProviderFailure::invalid_config(
                "no AWS region: set spec.provider.region or AWS_REGION",
            ));
        }
        let attempt = cfg.effective_attempt_timeout();
        let mut builder = aws_sdk_bedrockruntime::config::Builder::from(&sdk)
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(attempt.min(Duration::from_secs(10)))
                    .operation_attempt_timeout(attempt)
                    .operation_timeout(attempt)
                    .build(),
            );
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.endpoint_url(endpoint.clone());
        }
        Ok(BedrockProvider {
            client: Client::from_conf(builder.build()),
            model: cfg.model.clone(),
        })
    }
}

impl ChatProvider for BedrockProvider {
    async fn attempt(&self, req: &ChatRequest) -> Result<ChatResponse, AttemptError> {
        let message = user_message(req.user.clone())?;
        let out = self
            .client
            .converse()
            .model_id(&self.model)
            .system(SystemContentBlock::Text(req.system.clone()))
            .messages(message)
            .inference_config(
                InferenceConfiguration::builder()
                    .max_tokens(i32::try_from(req.max_output_tokens).unwrap_or(i32::MAX))
                    .temperature(0.0)
                    .build(),
            )
            .send()
            .await
            .map_err(classify)?;
        let text = match out.output() {
            Some(ConverseOutput::Message(m)) => m
                .content()
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::Text(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        };
        // The SDK has read the whole body already (it offers no size limit); what is kept is
        // bounded as the OpenAI client bounds the body.
        if text.len() > MAX_RESPONSE_BYTES {
            return Err(AttemptError {
                reason: FailureReason::InvalidResponse,
                message: format!("answer longer than {MAX_RESPONSE_BYTES} bytes"),
                status: None,
            });
        }
        let usage = out.usage();
        Ok(ChatResponse {
            text,
            input_tokens: usage.and_then(|u| u64::try_from(u.input_tokens()).ok()),
            output_tokens: usage.and_then(|u| u64::try_from(u.output_tokens()).ok()),
            attempts: 1,
        })
    }
}

impl BedrockProvider {
    /// Reachability without inference: `CountTokens` for the model (free of charge, no
    /// tokens generated) checks the endpoint, the credentials (SigV4), the region and the
    /// model id in one authenticated call. Returns what it saw, e.g.
    /// `CountTokens for anthropic.claude-3-haiku: 1 input token`.
    ///
    /// # Errors
    /// The call's failure, classified like a Converse failure (`AuthFailed` for
    /// AccessDenied, which includes a role lacking `bedrock:CountTokens`).
    pub async fn reachable(&self) -> Result<String, AttemptError> {
        use aws_sdk_bedrockruntime::operation::count_tokens::CountTokensError;
        use aws_sdk_bedrockruntime::types::{ConverseTokensRequest, CountTokensInput};
        let message = user_message("ping".into())?;
        let out = self
            .client
            .count_tokens()
            .model_id(&self.model)
            .input(CountTokensInput::Converse(
                ConverseTokensRequest::builder().messages(message).build(),
            ))
            .send()
            .await
            .map_err(|err| {
                let modelled = match &err {
                    SdkError::ServiceError(ctx) => match ctx.err() {
                        CountTokensError::ThrottlingException(_) => {
                            Some(FailureReason::RateLimited)
                        }
                        CountTokensError::AccessDeniedException(_) => {
                            Some(FailureReason::AuthFailed)
                        }
                        CountTokensError::InternalServerException(_)
                        | CountTokensError::ServiceUnavailableException(_) => {
                            Some(FailureReason::Unavailable)
                        }
                        CountTokensError::ValidationException(_)
                        | CountTokensError::ResourceNotFoundException(_) => {
                            Some(FailureReason::InvalidConfig)
                        }
                        _ => None,
                    },
                    _ => None,
                };
                let status = err.raw_response().map(|r| r.status().as_u16());
                let mut e = classify_sdk(&err, status);
                if let Some(r) = modelled {
                    e.reason = r;
                }
                e
            })?;
        Ok(format!(
            "CountTokens for {}: {} input token(s)",
            self.model,
            out.input_tokens()
        ))
    }
}

/// The one user message of a request.
fn user_message(text: String) -> Result<Message, AttemptError> {
    Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(text))
        .build()
        .map_err(|e| AttemptError {
            reason: FailureReason::InvalidConfig,
            message: e.to_string(),
            status: None,
        })
}

/// The reason of an SDK failure that is not a modelled exception: timeouts, dispatch
/// (connection, credentials), construction, the HTTP status; `status` is the response's.
fn classify_sdk<E: std::error::Error + 'static>(
    err: &SdkError<E, HttpResponse>,
    status: Option<u16>,
) -> AttemptError {
    let message = DisplayErrorContext(err).to_string();
    let reason = match err {
        SdkError::TimeoutError(_) => FailureReason::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => FailureReason::Timeout,
        SdkError::DispatchFailure(d) if d.is_user() => FailureReason::InvalidConfig,
        SdkError::DispatchFailure(_) => FailureReason::Unavailable,
        SdkError::ConstructionFailure(_) => FailureReason::InvalidConfig,
        SdkError::ResponseError(_) => FailureReason::InvalidResponse,
        _ => status
            .map(FailureReason::from_status)
            .unwrap_or(FailureReason::Unavailable),
    };
    AttemptError {
        reason: credential_failure(&message).unwrap_or(reason),
        message,
        status,
    }
}

/// `AuthFailed` when the message says the credential chain failed: those failures surface
/// as dispatch/construction errors, not as a modelled exception.
fn credential_failure(message: &str) -> Option<FailureReason> {
    (message.contains("failed to load credentials") || message.contains("no credentials"))
        .then_some(FailureReason::AuthFailed)
}

/// Maps a Converse failure to a reason: modelled exceptions first, then the HTTP status; a
/// failed credential chain overrides both.
fn classify(err: SdkError<ConverseError, HttpResponse>) -> AttemptError {
    // Only a service error carries the status here (a malformed response does not).
    let (modelled, status) = match &err {
        SdkError::ServiceError(ctx) => {
            let modelled = match ctx.err() {
                ConverseError::ThrottlingException(_) => Some(FailureReason::RateLimited),
                ConverseError::AccessDeniedException(_) => Some(FailureReason::AuthFailed),
                ConverseError::ModelTimeoutException(_) => Some(FailureReason::Timeout),
                ConverseError::InternalServerException(_)
                | ConverseError::ServiceUnavailableException(_)
                | ConverseError::ModelNotReadyException(_) => Some(FailureReason::Unavailable),
                ConverseError::ValidationException(_)
                | ConverseError::ResourceNotFoundException(_) => Some(FailureReason::InvalidConfig),
                _ => None,
            };
            (modelled, Some(ctx.raw().status().as_u16()))
        }
        _ => (None, None),
    };
    let mut e = classify_sdk(&err, status);
    if let Some(r) = modelled {
        e.reason = credential_failure(&e.message).unwrap_or(r);
    }
    e
}
