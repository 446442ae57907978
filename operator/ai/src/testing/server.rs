//! The stand-in server: its shared state (script, default reply, captured requests), the
//! [`StandIn`] handle, the routes and the `/_standin/*` control endpoints.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::Value;

use super::answers::answer_from_context;
use super::protocols::{bedrock, bedrock_count_tokens, openai, openai_models};
use super::{Captured, Protocol, Reply};

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) script: Mutex<VecDeque<Reply>>,
    pub(super) default: Mutex<Reply>,
    pub(super) captured: Mutex<Vec<Captured>>,
    pub(super) api_key: Option<String>,
    /// What `GET /models` lists (empty by default: "not told").
    pub(super) models: Mutex<Vec<String>>,
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

pub(super) fn next_reply(shared: &Shared) -> Reply {
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

pub(super) fn capture(
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

pub(super) async fn resolve(reply: Reply, protocol: Protocol, body: &Value) -> Reply {
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
