//! Telegram Bot API `sendMessage` with MarkdownV2.
//!
//! Wire format (<https://core.telegram.org/bots/api#sendmessage>): `POST
//! <api>/bot<token>/sendMessage` with `{"chat_id", "text", "parse_mode": "MarkdownV2",
//! "link_preview_options": {"is_disabled": true}}`; the answer is `{"ok": true, ...}` or
//! `{"ok": false, "error_code", "description", "parameters": {"retry_after"}}`.
//! MarkdownV2 escaping follows <https://core.telegram.org/bots/api#markdownv2-style>: in
//! ordinary text each of ``_*[]()~`>#+-=|{}.!`` and `\` is preceded by `\`; inside `code`
//! only `` ` `` and `\` are. When Telegram still answers 400 "can't parse entities" the
//! message is sent once more as plain text, without `parse_mode`.

use serde_json::{json, Value};

use super::{join_url, post_json, SendContext};
use crate::batch::{format_value, severity_name, Batch};
use crate::deliver::{ErrorClass, SendError};
use crate::secret::{Scrubber, SecretValue};
use fabricwatch_proto::notify::{AlertStatus, NotificationRequest};

/// Longest message text Telegram accepts, in characters (after entity parsing).
pub const MAX_TEXT_CHARS: usize = 4096;
/// Budget used while building, leaving room for the "and N more" line.
const BUILD_BUDGET: usize = 3800;

/// Escapes ordinary MarkdownV2 text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(
            c,
            '_' | '*'
                | '['
                | ']'
                | '('
                | ')'
                | '~'
                | '`'
                | '>'
                | '#'
                | '+'
                | '-'
                | '='
                | '|'
                | '{'
                | '}'
                | '.'
                | '!'
                | '\\'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes text inside a MarkdownV2 `code` or `pre` entity.
pub fn escape_code(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '`' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Lines describing one alert, `(markdown, plain)`.
fn alert_lines(a: &NotificationRequest) -> (String, String) {
    let mut md = Vec::new();
    let mut plain = Vec::new();
    let state = match a.status {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    };
    let sev = severity_name(a.severity);
    md.push(format!(
        "• *{}* \\({}, {}\\)",
        escape(a.labels.get("alertname").map_or("alert", String::as_str)),
        escape(sev),
        escape(state)
    ));
    plain.push(format!(
        "• {} ({sev}, {state})",
        a.labels.get("alertname").map_or("alert", String::as_str)
    ));
    for key in ["target", "node"] {
        if let Some(v) = a.labels.get(key) {
            md.push(format!("  {key}: `{}`", escape_code(v)));
            plain.push(format!("  {key}: {v}"));
        }
    }
    if let Some(v) = a.value {
        let v = format_value(v);
        md.push(format!("  value: {}", escape(&v)));
        plain.push(format!("  value: {v}"));
    }
    if let Some(s) = a
        .annotations
        .get("summary")
        .or_else(|| a.annotations.get("description"))
    {
        md.push(format!("  {}", escape(s)));
        plain.push(format!("  {s}"));
    }
    (md.join("\n"), plain.join("\n"))
}

/// The message of `batch`, `(MarkdownV2 text, plain text)`, each within Telegram's limit.
pub fn texts(batch: &Batch) -> (String, String) {
    let title = batch.title();
    let mut md = format!("*{}*", escape(&title));
    let mut plain = title;
    let mut shown = 0;
    for a in &batch.alerts {
        let (m, p) = alert_lines(a);
        if md.chars().count() + m.chars().count() + 2 > BUILD_BUDGET
            || plain.chars().count() + p.chars().count() + 2 > BUILD_BUDGET
        {
            break;
        }
        md.push_str("\n\n");
        md.push_str(&m);
        plain.push_str("\n\n");
        plain.push_str(&p);
        shown += 1;
    }
    if shown < batch.alerts.len() {
        let more = format!("…and {} more", batch.alerts.len() - shown);
        md.push_str("\n\n");
        md.push_str(&escape(&more));
        plain.push_str("\n\n");
        plain.push_str(&more);
    }
    let hint = batch.describe_hint();
    md.push_str(&format!("\n\n`{}`", escape_code(&hint)));
    plain.push_str(&format!("\n\n{hint}"));
    (md, plain)
}

fn chat_id_value(chat_id: &str) -> Value {
    match chat_id.parse::<i64>() {
        Ok(n) => json!(n),
        Err(_) => json!(chat_id),
    }
}

/// The `sendMessage` body; `markdown: false` sends plain text.
pub fn body(chat_id: &str, text: &str, markdown: bool) -> Value {
    let mut v = json!({
        "chat_id": chat_id_value(chat_id),
        "text": text,
        "link_preview_options": {"is_disabled": true},
    });
    if markdown {
        v["parse_mode"] = json!("MarkdownV2");
    }
    v
}

/// `parameters.retry_after` (seconds) of a Telegram 429 answer, which Telegram puts in the
/// body rather than in a `Retry-After` header.
pub fn retry_after_body(body: &str) -> Option<std::time::Duration> {
    serde_json::from_str::<Value>(body)
        .ok()?
        .pointer("/parameters/retry_after")?
        .as_u64()
        .map(std::time::Duration::from_secs)
}

/// Whether an answer is Telegram's entity parse error.
fn is_parse_error(status: reqwest::StatusCode, body: &str) -> bool {
    status == reqwest::StatusCode::BAD_REQUEST && body.contains("can't parse entities")
}

/// Sends `batch` to the chat once (plus one plain-text resend on a parse error).
///
/// # Errors
/// Classified [`SendError`]; the bot token is scrubbed (it is part of the URL).
pub async fn send(
    ctx: &SendContext,
    token: &SecretValue,
    chat_id: &str,
    batch: &Batch,
    scrub: &Scrubber,
) -> Result<(), SendError> {
    let url = join_url(
        &ctx.telegram_api,
        &format!("bot{}/sendMessage", token.expose()),
    );
    let (md, plain) = texts(batch);
    let encode = |v: Value| {
        serde_json::to_vec(&v)
            .map_err(|e| SendError::permanent(format!("encoding Telegram body: {e}")))
    };
    let answer = post_json(
        ctx,
        &url,
        encode(body(chat_id, &md, true))?,
        &[],
        scrub,
        |s| s == reqwest::StatusCode::BAD_REQUEST || s == reqwest::StatusCode::TOO_MANY_REQUESTS,
    )
    .await?;
    if answer.status.is_success() {
        return Ok(());
    }
    if answer.status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let after = answer
            .retry_after
            .or_else(|| retry_after_body(&answer.body));
        return Err(SendError::from_status(
            answer.status,
            after,
            &answer.body,
            scrub,
        ));
    }
    if is_parse_error(answer.status, &answer.body) {
        tracing::warn!("Telegram could not parse the MarkdownV2 message; resending as plain text");
        post_json(
            ctx,
            &url,
            encode(body(chat_id, &plain, false))?,
            &[],
            scrub,
            |_| false,
        )
        .await?;
        return Ok(());
    }
    Err(SendError {
        class: ErrorClass::Permanent,
        ..SendError::from_status(answer.status, None, &answer.body, scrub)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::{alert, batch};

    #[test]
    fn escapes_every_reserved_character() {
        let reserved = "_*[]()~`>#+-=|{}.!\\";
        let e = escape(reserved);
        // Every reserved character is preceded by exactly one backslash.
        let chars: Vec<char> = e.chars().collect();
        assert_eq!(chars.len(), reserved.chars().count() * 2);
        for pair in chars.chunks(2) {
            assert_eq!(pair[0], '\\');
        }
        assert_eq!(escape("loss 12.5% (n-1)!"), "loss 12\\.5% \\(n\\-1\\)\\!");
        assert_eq!(escape_code("a`b\\c_d"), "a\\`b\\\\c_d");
    }

    #[test]
    fn texts_are_escaped_and_bounded() {
        let mut a = alert("1", "gpu-node_1.local");
        a.annotations
            .insert("summary".into(), "loss 12.5% on [n1]".into());
        let (md, plain) = texts(&batch(vec![a]));
        assert!(md.contains("loss 12\\.5% on \\[n1\\]"), "{md}");
        assert!(md.contains("`gpu-node_1.local`"), "{md}");
        assert!(plain.contains("loss 12.5% on [n1]"));
        let many: Vec<_> = (0..200)
            .map(|i| alert(&i.to_string(), &format!("node-{i}")))
            .collect();
        let (md, plain) = texts(&batch(many));
        assert!(md.chars().count() <= MAX_TEXT_CHARS);
        assert!(plain.chars().count() <= MAX_TEXT_CHARS);
        assert!(plain.contains("more"));
    }

    #[test]
    fn retry_after_from_body() {
        let b = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#;
        assert_eq!(retry_after_body(b), Some(std::time::Duration::from_secs(7)));
        assert_eq!(retry_after_body("{}"), None);
        assert_eq!(retry_after_body("not json"), None);
    }

    #[test]
    fn chat_ids() {
        assert_eq!(body("-100123", "x", true)["chat_id"], json!(-100123));
        assert_eq!(body("@ops_chan", "x", false)["chat_id"], json!("@ops_chan"));
        assert!(body("1", "x", false).get("parse_mode").is_none());
    }
}
