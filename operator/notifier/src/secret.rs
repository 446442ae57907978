//! Secret values and their removal from error text.
//!
//! Webhook URLs, bot tokens, SMTP passwords and HMAC keys are Secrets. They live only in a
//! [`SecretValue`] (whose `Debug` prints nothing of the value) and every error message that
//! leaves a channel passes through a [`Scrubber`] first: reqwest errors name the URL they
//! failed on, and a Telegram URL carries the bot token in its path.

use std::fmt;

/// Replacement text for a removed secret.
pub const REDACTED: &str = "[REDACTED]";

/// A value read from a Kubernetes Secret. `Debug` and `Display` never print it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a value; surrounding whitespace (a trailing newline from `echo > file`) is trimmed.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().trim().to_owned())
    }

    /// The value, for the one place that needs it (building a request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(")?;
        f.write_str(REDACTED)?;
        f.write_str(")")
    }
}

/// Removes known secret values from text.
///
/// Besides each value verbatim it removes the value percent-encoded (URLs in error text may
/// be encoded) and, for URL-shaped values, the URL's path and query (a Slack webhook's
/// secret is its path; errors may print the URL normalised, e.g. with a trailing `/`).
#[derive(Clone, Debug, Default)]
pub struct Scrubber {
    needles: Vec<String>,
}

/// Shortest value treated as a secret; shorter ones (an empty key) would erase ordinary text.
const MIN_SECRET_LEN: usize = 4;

impl Scrubber {
    /// A scrubber that removes `secrets`.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a SecretValue>) -> Self {
        let mut s = Self::default();
        for v in secrets {
            s.add(v.expose());
        }
        s
    }

    /// Adds one more value to remove.
    pub fn add(&mut self, value: &str) {
        let mut push = |n: String| {
            if n.len() >= MIN_SECRET_LEN && !self.needles.contains(&n) {
                self.needles.push(n);
            }
        };
        push(value.to_owned());
        push(percent_encode(value));
        if let Ok(url) = reqwest::Url::parse(value) {
            let path = url.path();
            if path.len() > 1 {
                push(path.to_owned());
            }
            if let Some(q) = url.query() {
                push(q.to_owned());
            }
            if let Some(p) = url.password() {
                push(p.to_owned());
            }
        }
        // Longest first, so a value is removed before a substring of it would be.
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    }

    /// `text` with every known secret replaced by [`REDACTED`].
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), REDACTED);
            }
        }
        out
    }
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The message of `err` and all its sources, joined by `": "` (reqwest's own `Display`
/// stops at the outermost error, which hides "connection refused" or the TLS alert).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_value() {
        let v = SecretValue::new("hunter2-canary\n");
        assert_eq!(v.expose(), "hunter2-canary");
        assert!(!format!("{v:?}").contains("hunter2"));
    }

    #[test]
    fn scrubs_plain_encoded_and_url_parts() {
        let url = SecretValue::new("https://hooks.example/services/T000/B000/XXXXcanary");
        let tok = SecretValue::new("123:abc/def");
        let s = Scrubber::new([&url, &tok]);
        let text =
            "error sending request for url (https://hooks.example/services/T000/B000/XXXXcanary): \
                    path /services/T000/B000/XXXXcanary token 123%3Aabc%2Fdef and 123:abc/def";
        let out = s.scrub(text);
        assert!(!out.contains("XXXXcanary"), "{out}");
        assert!(!out.contains("abc"), "{out}");
        assert!(out.contains(REDACTED));
    }

    #[test]
    fn short_values_are_not_needles() {
        let s = Scrubber::new([&SecretValue::new("a")]);
        assert_eq!(s.scrub("a cat"), "a cat");
    }
}
