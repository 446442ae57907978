//! Email over SMTP with lettre: STARTTLS (RFC 3207), implicit TLS (RFC 8314) or plain.
//!
//! One `multipart/alternative` message per batch, text and HTML. SMTP reply classes map to
//! retries as RFC 5321 §4.2.1 defines them: 4yz (transient) and connection/TLS/timeouts are
//! retried, 5yz (permanent) and unparsable addresses are final.

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::truncate;
use crate::batch::{format_value, severity_name, status_name, Batch};
use crate::channel::{SmtpCredentials, SmtpTls};
use crate::deliver::{ErrorClass, SendError};
use crate::secret::{error_chain, Scrubber};

/// Where and how to connect.
#[derive(Clone, Copy, Debug)]
pub struct SmtpServer<'a> {
    /// Host name or IP (also the TLS server name).
    pub host: &'a str,
    /// Port.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// SMTP AUTH credentials.
    pub credentials: Option<&'a SmtpCredentials>,
    /// Timeout of each SMTP command.
    pub timeout: std::time::Duration,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `(subject, text body, HTML body)` of `batch`.
pub fn render(batch: &Batch) -> (String, String, String) {
    let subject = truncate(&batch.title(), 200);
    let mut text = format!("{subject}\n\n");
    let mut html = format!(
        "<html><body><h2>{}</h2><table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\
         <tr><th>Status</th><th>Severity</th><th>Alert</th><th>Target</th><th>Node</th><th>Value</th><th>Summary</th><th>Since</th></tr>",
        escape_html(&subject)
    );
    for a in &batch.alerts {
        let get = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
        let value = a.value.map(format_value).unwrap_or_default();
        let summary = a
            .annotations
            .get("summary")
            .or_else(|| a.annotations.get("description"))
            .cloned()
            .unwrap_or_default();
        let since = a.starts_at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        text.push_str(&format!(
            "- [{}] {} {}: target={} node={} value={} since {}\n  {}\n",
            status_name(a.status),
            severity_name(a.severity),
            get("alertname"),
            get("target"),
            get("node"),
            value,
            since,
            summary
        ));
        html.push_str("<tr>");
        for cell in [
            status_name(a.status).to_owned(),
            severity_name(a.severity).to_owned(),
            get("alertname"),
            get("target"),
            get("node"),
            value,
            summary,
            since,
        ] {
            html.push_str(&format!("<td>{}</td>", escape_html(&cell)));
        }
        html.push_str("</tr>");
    }
    let hint = batch.describe_hint();
    text.push_str(&format!("\n{hint}\n"));
    html.push_str(&format!(
        "</table><p><code>{}</code></p></body></html>",
        escape_html(&hint)
    ));
    (subject, text, html)
}

/// Builds the message.
///
/// # Errors
/// Permanent [`SendError`] for an unparsable address.
pub fn message(from: &str, to: &[String], batch: &Batch) -> Result<Message, SendError> {
    let parse = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|e| SendError::permanent(format!("invalid email address {a:?}: {e}")))
    };
    let mut b = Message::builder().from(parse(from)?);
    for t in to {
        b = b.to(parse(t)?);
    }
    let (subject, text, html) = render(batch);
    b.subject(subject)
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .map_err(|e| SendError::permanent(format!("building email: {e}")))
}

fn classify(e: &lettre::transport::smtp::Error, scrub: &Scrubber) -> SendError {
    let class = if e.is_permanent() {
        ErrorClass::Permanent
    } else {
        ErrorClass::Transient
    };
    SendError {
        class,
        message: scrub.scrub(&format!("SMTP: {}", error_chain(e))),
    }
}

/// Sends `batch` once.
///
/// # Errors
/// Classified [`SendError`] (scrubbed of the password).
pub async fn send(
    server: &SmtpServer<'_>,
    from: &str,
    to: &[String],
    batch: &Batch,
    scrub: &Scrubber,
) -> Result<(), SendError> {
    let msg = message(from, to, batch)?;
    let builder = match server.tls {
        SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(server.host),
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(server.host),
        SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            server.host,
        )),
    }
    .map_err(|e| SendError::permanent(scrub.scrub(&format!("SMTP set-up: {}", error_chain(&e)))))?;
    let mut builder = builder.port(server.port).timeout(Some(server.timeout));
    if let Some(c) = server.credentials {
        builder = builder.credentials(Credentials::new(
            c.username.clone(),
            c.password.expose().to_owned(),
        ));
    }
    let transport = builder.build();
    transport.send(msg).await.map_err(|e| classify(&e, scrub))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::{alert, batch};

    #[test]
    fn renders_text_and_escaped_html() {
        let mut a = alert("1", "n1");
        a.annotations
            .insert("summary".into(), "<b>loss</b> & more".into());
        let (subject, text, html) = render(&batch(vec![a]));
        assert_eq!(subject, "[FIRING:1] HighLoss");
        assert!(text.contains("<b>loss</b> & more"));
        assert!(text.contains("node=n1"));
        assert!(html.contains("&lt;b&gt;loss&lt;/b&gt; &amp; more"));
        assert!(!html.contains("<b>loss"));
        assert!(html.contains("kubectl describe alertrule -n fabric high-loss"));
    }

    #[test]
    fn bad_address_is_permanent() {
        let e = message(
            "not an address",
            &["a@b.c".into()],
            &batch(vec![alert("1", "n")]),
        )
        .expect_err("must fail");
        assert_eq!(e.class, ErrorClass::Permanent);
    }
}
