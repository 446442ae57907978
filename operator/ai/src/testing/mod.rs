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
//!
//! Parts: `server` (state, routes, control endpoints), `protocols` (the Bedrock and OpenAI
//! shapes), `answers` (what the stand-in says by itself), `synthetic` (test situations).

mod answers;
mod protocols;
mod server;
mod synthetic;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use answers::{answer_from_context, canned_answer};
pub use server::StandIn;
pub use synthetic::synthetic_situation;

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
