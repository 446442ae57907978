//! Local stand-in for the two LLM wire protocols, for tests and the e2e suite (feature
//! `testing`; the `llm-standin` binary serves it on a port).
//!
//! One HTTP server on 127.0.0.1 answers both:
//! - Bedrock Converse REST: `POST /model/{modelId}/converse` with the Converse JSON body,
//!   errors as Bedrock sends them (`x-amzn-ErrorType` header + `{"message": ...}` body,
//!   e.g. 429 `ThrottlingException`);
//! - OpenAI chat completions: `POST /v1/chat/completions` (also `/chat/completions`), errors
//!   as `{"error": {"message", "type", "code"}}`.
//!
//! Replies are scripted (a queue, then a default); every request is captured with its
//! headers and body so tests can assert what was sent (SigV4 headers, the prompt). The same
//! control is reachable over HTTP for out-of-process users: `POST /_standin/script` (JSON
//! list of [`Reply`]), `PUT /_standin/default` (one [`Reply`]), `GET /_standin/requests`,
//! `DELETE /_standin/requests`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::tokens;

/// A scripted reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reply {
    /// HTTP 200 with this assistant text in the protocol's response shape.
    Answer(String),
    /// An error status with this message, shaped as the protocol's error.
    Error {
        /// HTTP status.
        status: u16,
        /// Error message.
        message: String,
    },
    /// HTTP 200 with this raw body (for protocol-level garbage).
    Raw(String),
    /// HTTP 200 with an answer read off the request's context ([`answer_from_context`]):
    /// the top suspect, else the worst node, each finding titled as the stand-in's. The
    /// default reply.
    FromContext,
    /// Waits, then replies.
    Delay {
        /// Milliseconds to wait.
        ms: u64,
        /// The reply after the wait.
        then: Box<Reply>,
    },
}

/// Which protocol a captured request used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Protocol {
    /// Bedrock Converse.
    Bedrock,
    /// OpenAI chat completions.
    Openai,
}

/// One request as received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Captured {
    /// Protocol.
    pub protocol: Protocol,
    /// Bedrock model id from the path, or the OpenAI `model` field.
    pub model: String,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
}

impl Captured {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// System prompt and user text of the request, joined (for content assertions).
    pub fn prompt_text(&self) -> String {
        let mut parts = Vec::new();
        let mut collect = |v: &Value| {
            if let Some(s) = v.as_str() {
                parts.push(s.to_string());
            }
        };
        match self.protocol {
            Protocol::Bedrock => {
                for s in self.body["system"].as_array().into_iter().flatten() {
                    collect(&s["text"]);
                }
                for m in self.body["messages"].as_array().into_iter().flatten() {
                    for c in m["content"].as_array().into_iter().flatten() {
                        collect(&c["text"]);
                    }
                }
            }
            Protocol::Openai => {
                for m in self.body["messages"].as_array().into_iter().flatten() {
                    collect(&m["content"]);
                }
            }
        }
        parts.join("\n")
    }

    /// The system prompt alone.
    pub fn system_text(&self) -> String {
        match self.protocol {
            Protocol::Bedrock => self.body["system"][0]["text"].as_str().unwrap_or_default(),
            Protocol::Openai => self.body["messages"][0]["content"]
                .as_str()
                .unwrap_or_default(),
        }
        .to_string()
    }
}

#[derive(Debug)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    captured: Mutex<Vec<Captured>>,
    api_key: Option<String>,
    /// What `GET /models` lists (empty by default: "not told").
    models: Mutex<Vec<String>>,
}

/// A running stand-in server; stops when dropped.
#[derive(Debug)]
pub struct StandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the stand-in answers to a prompt with [`Reply::FromContext`]: one finding about the
/// first line of the context's suspects section (the top suspect, see
/// [`crate::context::SUSPECTS_TITLE`]), else about the first node of the "nodes not healthy"
/// section, else no finding. Every title starts with `Stand-in answer:` so no one takes it
/// for a diagnosis; the names are the context's (pseudonyms when anonymized), so analytics
/// maps them back like a model's.
pub fn answer_from_context(prompt: &str) -> String {
    let first_line = |title_prefix: &str| {
        let mut lines = prompt.lines();
        lines.find(|l| {
            l.strip_prefix("## ")
                .is_some_and(|t| t.starts_with(title_prefix))
        })?;
        lines
            .next()
            .filter(|l| !l.starts_with("## ") && !l.starts_with("(+"))
            .map(str::to_string)
    };
    let suspects_title = crate::context::SUSPECTS_TITLE
        .split(' ')
        .next()
        .unwrap_or("suspects");
    let finding = if let Some(line) = first_line(suspects_title) {
        let (head, evidence) = line.split_once(" | ").unwrap_or((line.as_str(), ""));
        let words: Vec<&str> = head.split_whitespace().collect();
        let kind = words.first().copied().unwrap_or("node");
        let name = words.get(1).copied().unwrap_or("");
        let cause = words.get(2).copied().unwrap_or("");
        let severity = match words.get(3).copied() {
            Some("Critical") => "critical",
            _ => "warning",
        };
        let confidence = words
            .iter()
            .find_map(|w| w.strip_prefix("confidence="))
            .and_then(|c| c.parse::<f64>().ok())
            .unwrap_or(0.5)
            .clamp(0.0, 1.0);
        let affected: Vec<&str> = if kind == "domain" {
            words
                .iter()
                .find_map(|w| w.strip_prefix("members="))
                .map(|m| m.split(',').filter(|n| !n.starts_with('+')).collect())
                .unwrap_or_default()
        } else {
            name.split(',').filter(|n| !n.is_empty()).collect()
        };
        json!({
            "severity": severity,
            "title": format!("Stand-in answer: {kind} {name} is the top suspect ({cause})"),
            "summary": format!("The LLM stand-in repeats the situation's top suspect; it is not a model's diagnosis. {evidence}"),
            "evidence": [line],
            "affected": affected,
            "recommendation": format!("Inspect {kind} {name} (a real model would say how)."),
            "confidence": confidence
        })
    } else if let Some(line) = first_line("nodes not healthy") {
        let node = line.split_whitespace().next().unwrap_or("");
        json!({
            "severity": "warning",
            "title": format!("Stand-in answer: {node} is the least healthy node"),
            "summary": "The LLM stand-in repeats the situation's worst node; it is not a model's diagnosis.",
            "evidence": [line],
            "affected": [node],
            "recommendation": format!("Inspect {node} (a real model would say how)."),
            "confidence": 0.3
        })
    } else {
        return json!({"findings": []}).to_string();
    };
    json!({ "findings": [finding] }).to_string()
}

/// A findings answer that names `node-1`, valid against the findings schema.
pub fn canned_answer() -> String {
    json!({"findings": [{
        "severity": "warning",
        "title": "Packet loss towards node-1",
        "summary": "Peers report loss towards node-1; its RDMA port shows errors.",
        "evidence": ["loss above threshold towards node-1"],
        "affected": ["node-1"],
        "recommendation": "Check the cable and switch port of node-1.",
        "confidence": 0.7
    }]})
    .to_string()
}

impl StandIn {
    /// Serves on `addr` (use port 0 for a free port). `api_key`, when set, is required as
    /// `Authorization: Bearer` on the OpenAI route (401 otherwise). The default reply is
    /// [`Reply::FromContext`].
    pub async fn start(addr: SocketAddr, api_key: Option<String>) -> std::io::Result<StandIn> {
        let shared = Arc::new(Shared {
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::FromContext),
            captured: Mutex::new(Vec::new()),
            api_key,
            models: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/model/{model}/converse", post(bedrock))
            .route("/model/{model}/count-tokens", post(bedrock_count_tokens))
            .route("/v1/models", get(openai_models))
            .route("/models", get(openai_models))
            .route("/v1/chat/completions", post(openai))
            .route("/chat/completions", post(openai))
            .route("/_standin/script", post(set_script))
            .route("/_standin/default", put(set_default))
            .route(
                "/_standin/requests",
                get(list_requests).delete(clear_requests),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "llm stand-in stopped");
            }
        });
        Ok(StandIn { addr, shared, task })
    }

    /// Sets what `GET /models` lists.
    pub fn set_models(&self, models: &[&str]) {
        if let Ok(mut m) = self.shared.models.lock() {
            *m = models.iter().map(|s| s.to_string()).collect();
        }
    }

    /// `http://127.0.0.1:PORT` (Bedrock endpoint override).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1` (OpenAI-compatible base URL).
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues replies for the next requests.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        if let Ok(mut s) = self.shared.script.lock() {
            s.extend(replies);
        }
    }

    /// Sets the reply used when the queue is empty.
    pub fn set_default(&self, reply: Reply) {
        if let Ok(mut d) = self.shared.default.lock() {
            *d = reply;
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Captured> {
        self.shared
            .captured
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Number of requests received so far.
    pub fn request_count(&self) -> usize {
        self.shared.captured.lock().map(|c| c.len()).unwrap_or(0)
    }
}

fn next_reply(shared: &Shared) -> Reply {
    let queued = shared.script.lock().ok().and_then(|mut s| s.pop_front());
    queued.unwrap_or_else(|| {
        shared
            .default
            .lock()
            .map(|d| d.clone())
            .unwrap_or(Reply::Error {
                status: 500,
                message: "stand-in state poisoned".into(),
            })
    })
}

fn capture(
    shared: &Shared,
    protocol: Protocol,
    model: String,
    headers: &HeaderMap,
    body: &Bytes,
) -> Value {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let headers = headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if let Ok(mut c) = shared.captured.lock() {
        c.push(Captured {
            protocol,
            model,
            headers,
            body: body.clone(),
        });
    }
    body
}

async fn resolve(reply: Reply, protocol: Protocol, body: &Value) -> Reply {
    let mut reply = reply;
    while let Reply::Delay { ms, then } = reply {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        reply = *then;
    }
    if reply == Reply::FromContext {
        let prompt = Captured {
            protocol,
            model: String::new(),
            headers: Vec::new(),
            body: body.clone(),
        }
        .prompt_text();
        return Reply::Answer(answer_from_context(&prompt));
    }
    reply
}

async fn bedrock(
    State(shared): State<Arc<Shared>>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = capture(&shared, Protocol::Bedrock, model, &headers, &body);
    let input = prompt_tokens(&req);
    match resolve(next_reply(&shared), Protocol::Bedrock, &req).await {
        Reply::Answer(text) => {
            // A model stops at maxTokens; the usage it reports never exceeds it.
            let estimated = tokens::estimate(&text);
            let cap = req["inferenceConfig"]["maxTokens"]
                .as_u64()
                .unwrap_or(u64::MAX);
            let output = estimated.min(cap);
            let stop = if estimated > cap {
                "max_tokens"
            } else {
                "end_turn"
            };
            Json(json!({
                "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                "stopReason": stop,
                "usage": {"inputTokens": input, "outputTokens": output, "totalTokens": input + output},
                "metrics": {"latencyMs": 1}
            }))
            .into_response()
        }
        Reply::Error { status, message } => {
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
        Reply::Raw(raw) => {
            (StatusCode::OK, [("content-type", "application/json")], raw).into_response()
        }
        Reply::Delay { .. } | Reply::FromContext => {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn openai(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let model = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["model"].as_str().map(String::from))
        .unwrap_or_default();
    let req = capture(&shared, Protocol::Openai, model.clone(), &headers, &body);
    if let Some(key) = &shared.api_key {
        let expected = format!("Bearer {key}");
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return openai_error(401, "Incorrect API key provided");
        }
    }
    let input = prompt_tokens(&req);
    match resolve(next_reply(&shared), Protocol::Openai, &req).await {
        Reply::Answer(text) => {
            let estimated = tokens::estimate(&text);
            let cap = req["max_tokens"].as_u64().unwrap_or(u64::MAX);
            let output = estimated.min(cap);
            let finish = if estimated > cap { "length" } else { "stop" };
            Json(json!({
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}
            }))
            .into_response()
        }
        Reply::Error { status, message } => openai_error(status, &message),
        Reply::Raw(raw) => {
            (StatusCode::OK, [("content-type", "application/json")], raw).into_response()
        }
        Reply::Delay { .. } | Reply::FromContext => {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// OpenAI "List models" (reachability checks; not captured, so request counts stay those
/// of chat calls). Needs the API key like the chat route.
async fn openai_models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(key) = &shared.api_key {
        let expected = format!("Bearer {key}");
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return openai_error(401, "Incorrect API key provided");
        }
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
async fn bedrock_count_tokens(body: Bytes) -> Response {
    Json(json!({"inputTokens": (body.len() / 4).max(1)})).into_response()
}

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

async fn set_script(
    State(shared): State<Arc<Shared>>,
    Json(replies): Json<Vec<Reply>>,
) -> StatusCode {
    if let Ok(mut s) = shared.script.lock() {
        s.clear();
        s.extend(replies);
    }
    StatusCode::NO_CONTENT
}

async fn set_default(State(shared): State<Arc<Shared>>, Json(reply): Json<Reply>) -> StatusCode {
    if let Ok(mut d) = shared.default.lock() {
        *d = reply;
    }
    StatusCode::NO_CONTENT
}

async fn list_requests(State(shared): State<Arc<Shared>>) -> Json<Vec<Captured>> {
    Json(
        shared
            .captured
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default(),
    )
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    if let Ok(mut c) = shared.captured.lock() {
        c.clear();
    }
    StatusCode::NO_CONTENT
}

/// A deterministic synthetic situation of `nodes` nodes (`gpu-node-000`, ... with InternalIPs
/// `10.42.x.y`), for tests and measurements: every node probes 3 peers, ~3 % of the nodes
/// are critical with an RDMA port DOWN, loss towards them and Warning Events whose messages
/// carry node names and addresses; one alert fires for them and anomalies are scored.
/// `jitter` (0 for none) perturbs every measured value by up to ±`jitter` (relative),
/// deterministically from `round`, to replay a storm of re-evaluations.
pub fn synthetic_situation(nodes: usize, jitter: f64, round: u64) -> crate::Situation {
    use crate::situation::*;
    let name = |i: usize| format!("gpu-node-{i:03}");
    let ip = |i: usize| format!("10.42.{}.{}", i / 250, i % 250 + 1);
    // A small deterministic hash → [-1, 1], so values jitter without a RNG dependency.
    let noise = |a: u64, b: u64| -> f64 {
        let mut x = a
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(b.wrapping_mul(0xBF58_476D_1CE4_E5B9))
            .wrapping_add(round.wrapping_mul(0x94D0_49BB_1331_11EB));
        x ^= x >> 31;
        x = x.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        x ^= x >> 32;
        (x % 2001) as f64 / 1000.0 - 1.0
    };
    let j = |v: f64, a: usize, b: u64| v * (1.0 + jitter * noise(a as u64, b));
    let critical: Vec<usize> = (0..nodes).filter(|i| i % 33 == 1).collect();
    let is_critical = |i: usize| critical.contains(&i);
    let mut s = Situation {
        window_seconds: 600,
        ..Default::default()
    };
    for i in 0..nodes {
        let crit = is_critical(i);
        s.nodes.push(NodeHealth {
            node: name(i),
            health: if crit {
                Health::Critical
            } else {
                Health::Healthy
            },
            score: Some(if crit { j(38.0, i, 1) } else { j(97.0, i, 1) }),
            problems: if crit {
                vec![
                    format!("rdma mlx5_1/1 DOWN on {}", name(i)),
                    format!("loss from peers towards {}", ip(i)),
                ]
            } else {
                Vec::new()
            },
            address: Some(ip(i)),
        });
        for k in 1..=3usize {
            let peer = (i + k * 7) % nodes.max(1);
            if peer == i {
                continue;
            }
            let loss = if is_critical(peer) {
                j(18.0, i, 10 + k as u64)
            } else {
                0.0
            };
            s.peers.push(PeerStats {
                source: name(i),
                peer: name(peer),
                external: false,
                loss_percent: loss,
                rtt_p50_seconds: Some(j(0.00021, i, 20 + k as u64)),
                rtt_p99_seconds: Some(j(
                    if is_critical(peer) { 0.0042 } else { 0.0006 },
                    i,
                    30 + k as u64,
                )),
                jitter_seconds: Some(j(0.00004, i, 40 + k as u64)),
            });
        }
        for dev in 0..2u32 {
            let down = crit && dev == 1;
            let mut deltas = std::collections::BTreeMap::new();
            let mut congestion = std::collections::BTreeMap::new();
            if down {
                deltas.insert("link_downed".to_string(), 3);
                deltas.insert("symbol_error".to_string(), 1200);
                deltas.insert("port_rcv_errors".to_string(), 57);
                congestion.insert("np_cnp_sent".to_string(), j(120.0, i, 50));
            }
            s.rdma_ports.push(RdmaPortStats {
                node: name(i),
                device: format!("mlx5_{dev}"),
                port: 1,
                state: if down { "DOWN".into() } else { "ACTIVE".into() },
                link_layer: "InfiniBand".into(),
                counter_deltas: deltas,
                error_rate_per_minute: if down { j(125.0, i, 51) } else { 0.0 },
                link_flaps: if down { 3 } else { 0 },
                congestion_per_second: congestion,
            });
        }
        s.hosts.push(HostPressure {
            node: name(i),
            cpu_usage_percent: j(if crit { 91.0 } else { 35.0 }, i, 60),
            memory_used_percent: j(52.0, i, 61),
            disk_free_percent_min: Some(j(40.0, i, 62)),
            psi_cpu_some_avg10: Some(j(if crit { 22.0 } else { 1.5 }, i, 63)),
            psi_memory_full_avg10: Some(0.0),
            psi_io_full_avg10: Some(j(0.4, i, 64)),
        });
    }
    for &i in &critical {
        s.anomalies.push(Anomaly {
            node: name(i),
            metric: "rdma_symbol_errors_per_minute".into(),
            score: j(7.5, i, 70),
            value: j(125.0, i, 71),
            baseline: Some(0.2),
            since: None,
        });
        s.events.push(KubeEvent {
            kind: EventObjectKind::Node,
            name: name(i),
            type_: "Warning".into(),
            reason: "RDMALinkDown".into(),
            message: format!("mlx5_1 port 1 on {} ({}) went DOWN", name(i), ip(i)),
            count: 1 + (round as u32) / 4,
            ..Default::default()
        });
        s.events.push(KubeEvent {
            kind: EventObjectKind::Pod,
            namespace: "training".into(),
            name: format!("trainer-{i}"),
            type_: "Warning".into(),
            reason: "BackOff".into(),
            message: format!("Back-off restarting failed container trainer in pod trainer-{i} on {}: NCCL WARN connect to {} failed", name(i), ip(i)),
            count: 2 + (round as u32) / 2,
            ..Default::default()
        });
    }
    if !critical.is_empty() {
        s.alerts.push(FiringAlert {
            rule: "rdma-errors".into(),
            severity: "critical".into(),
            metric: "rdma_symbol_errors_per_minute".into(),
            value: j(125.0, 0, 80),
            threshold: 10.0,
            nodes: critical.iter().map(|i| name(*i)).collect(),
            since: None,
        });
    }
    s
}
