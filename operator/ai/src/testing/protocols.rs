//! The two wire protocols the stand-in speaks: Bedrock Converse (and `CountTokens`) and OpenAI
//! chat completions (and "List models"), answers and errors shaped as each service sends them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::server::{capture, next_reply, resolve, Shared};
use super::{Protocol, Reply};
use crate::tokens;

/// Bedrock Converse: `POST /model/{modelId}/converse`, captured, answered with the next reply.
pub(super) async fn bedrock(
    State(shared): State<Arc<Shared>>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = capture(&shared, Protocol::Bedrock, model, &headers, &body);
    let input = prompt_tokens(&req);
    let reply = resolve(next_reply(&shared), Protocol::Bedrock, &req).await;
    respond(reply, bedrock_error, |text| {
        let (output, cut) = output_tokens(&text, req["inferenceConfig"]["maxTokens"].as_u64());
        let stop = if cut { "max_tokens" } else { "end_turn" };
        Json(json!({
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": stop,
            "usage": {"inputTokens": input, "outputTokens": output, "totalTokens": input + output},
            "metrics": {"latencyMs": 1}
        }))
        .into_response()
    })
}

/// OpenAI chat completions: captured, the API key checked, answered with the next reply.
pub(super) async fn openai(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let model = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["model"].as_str().map(String::from))
        .unwrap_or_default();
    let req = capture(&shared, Protocol::Openai, model.clone(), &headers, &body);
    if let Some(rejected) = check_api_key(&shared, &headers) {
        return rejected;
    }
    let input = prompt_tokens(&req);
    let reply = resolve(next_reply(&shared), Protocol::Openai, &req).await;
    respond(reply, openai_error, |text| {
        let (output, cut) = output_tokens(&text, req["max_tokens"].as_u64());
        let finish = if cut { "length" } else { "stop" };
        Json(json!({
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}
        }))
        .into_response()
    })
}

/// The protocol-independent part of answering `reply`: `answer` shapes an answer text,
/// `error` an error status and message; a raw body goes out as it is. `resolve` leaves no
/// `Delay` or `FromContext`; should one arrive anyway it gets a bare 500.
fn respond(
    reply: Reply,
    error: fn(u16, &str) -> Response,
    answer: impl FnOnce(String) -> Response,
) -> Response {
    match reply {
        Reply::Answer(text) => answer(text),
        Reply::Error { status, message } => error(status, &message),
        Reply::Raw(raw) => {
            (StatusCode::OK, [("content-type", "application/json")], raw).into_response()
        }
        Reply::Delay { .. } | Reply::FromContext => {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The output tokens reported for `text` under the request's output cap, and whether the
/// cap cut it: a model stops at its cap, so the usage it reports never exceeds it.
fn output_tokens(text: &str, cap: Option<u64>) -> (u64, bool) {
    let estimated = tokens::estimate(text);
    let cap = cap.unwrap_or(u64::MAX);
    (estimated.min(cap), estimated > cap)
}

/// A Bedrock error as the service sends it: the exception name in `x-amzn-ErrorType`, the
/// message in a JSON body.
fn bedrock_error(status: u16, message: &str) -> Response {
    let kind = match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [
            (
                "x-amzn-errortype",
                format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            ),
            ("content-type", "application/json".into()),
        ],
        Json(json!({"message": message})),
    )
        .into_response()
}

/// OpenAI "List models" (reachability checks; not captured, so request counts stay those
/// of chat calls). Needs the API key like the chat route.
pub(super) async fn openai_models(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    if let Some(rejected) = check_api_key(&shared, &headers) {
        return rejected;
    }
    let models = shared.models.lock().map(|m| m.clone()).unwrap_or_default();
    let data: Vec<Value> = models
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "standin"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// Bedrock `CountTokens` (reachability checks; not captured): one token per four bytes of
/// the request, at least one.
pub(super) async fn bedrock_count_tokens(body: Bytes) -> Response {
    Json(json!({"inputTokens": (body.len() / 4).max(1)})).into_response()
}

/// The 401 answer when an API key is configured and the request does not carry it as
/// `Authorization: Bearer`; `None` when the request may pass.
fn check_api_key(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let key = shared.api_key.as_ref()?;
    let expected = format!("Bearer {key}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Some(openai_error(401, "Incorrect API key provided"));
    }
    None
}

/// An OpenAI error as the API sends it: `{"error": {"message", "type", "code"}}`.
fn openai_error(status: u16, message: &str) -> Response {
    let (kind, code) = match status {
        401 => ("invalid_request_error", "invalid_api_key"),
        429 => ("requests", "rate_limit_exceeded"),
        _ => ("server_error", "server_error"),
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(json!({"error": {"message": message, "type": kind, "code": code}})),
    )
        .into_response()
}

/// Token count the stand-in reports as input: the estimator over all text in the request.
fn prompt_tokens(body: &Value) -> u64 {
    fn walk(v: &Value, acc: &mut u64) {
        match v {
            Value::String(s) => *acc += tokens::estimate(s),
            Value::Array(a) => a.iter().for_each(|x| walk(x, acc)),
            Value::Object(o) => o.values().for_each(|x| walk(x, acc)),
            _ => {}
        }
    }
    let mut n = 0;
    walk(&body["system"], &mut n);
    walk(&body["messages"], &mut n);
    n
}
