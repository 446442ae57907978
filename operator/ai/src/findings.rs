//! The model's answer, parsed and validated as untrusted input.
//!
//! The expected answer is `{"findings": [Finding, ...]}` (a bare array is accepted, and so is
//! a Markdown code fence around it). Each finding is checked field by field; a finding with a
//! missing or ill-typed required field is dropped, fields the schema does not know (e.g. a
//! `channel` or `webhook` the model made up) are ignored, URLs in text are removed, and every
//! string and list is bounded. Findings carry no routing: what the caller does with them is
//! decided by the AIAnalysis spec alone.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::anonymize::Anonymizer;

/// Severity of a finding, as in `AIAnalysis.status.findings[].severity`: the shared
/// [`fabricwatch_proto::Severity`] (lowercase; [`Severity::parse`] reads the model's answer in
/// any case).
pub use fabricwatch_proto::Severity;

/// One validated finding; maps 1:1 onto `AIAnalysis.status.findings[]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// One-line title.
    pub title: String,
    /// What is wrong, in a few sentences.
    pub summary: String,
    /// Observations from the context that support the finding.
    pub evidence: Vec<String>,
    /// Affected nodes, pods or ports (real names once reversed).
    pub affected: Vec<String>,
    /// What to do next.
    pub recommendation: String,
    /// The model's confidence, 0–1.
    pub confidence: f64,
}

/// Bounds on the findings kept; defaults keep a full status well under 64 KiB.
#[derive(Clone, Debug, PartialEq)]
pub struct FindingLimits {
    /// Findings kept (most severe, then most confident, first).
    pub max_findings: usize,
    /// Characters in a title.
    pub max_title_chars: usize,
    /// Characters in a summary or recommendation.
    pub max_text_chars: usize,
    /// Items in `evidence` and in `affected`.
    pub max_items: usize,
    /// Characters per `evidence`/`affected` item (253 is the longest DNS-1123 subdomain).
    pub max_item_chars: usize,
    /// Characters in the plain-text fallback summary.
    pub max_fallback_chars: usize,
}

impl Default for FindingLimits {
    fn default() -> Self {
        FindingLimits {
            max_findings: 10,
            max_title_chars: 120,
            max_text_chars: 1000,
            max_items: 10,
            max_item_chars: 253,
            max_fallback_chars: 2000,
        }
    }
}

/// Why an answer could not be used as findings.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AnswerError {
    /// Nothing (or only whitespace) came back.
    #[error("the model returned an empty answer")]
    Empty,
    /// The answer holds no parsable JSON.
    #[error("the answer is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not a findings list, or every finding in it was invalid.
    #[error("the answer does not match the findings schema: {0}")]
    Schema(String),
}

/// Findings parsed from one answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// Valid findings, bounded, pseudonyms reversed.
    pub findings: Vec<Finding>,
    /// Findings dropped as invalid or beyond `max_findings`.
    pub dropped: usize,
}

/// Parses and validates `answer`; pseudonyms are reversed through `an`.
pub fn parse(answer: &str, limits: &FindingLimits, an: &Anonymizer) -> Result<Parsed, AnswerError> {
    let trimmed = answer.trim();
    if trimmed.is_empty() {
        return Err(AnswerError::Empty);
    }
    let value = extract_json(trimmed)?;
    let items = match &value {
        Value::Array(items) => items,
        Value::Object(map) => match map.get("findings") {
            Some(Value::Array(items)) => items,
            Some(_) => return Err(AnswerError::Schema("`findings` is not an array".into())),
            None => return Err(AnswerError::Schema("no `findings` field".into())),
        },
        _ => return Err(AnswerError::Schema("neither an object nor an array".into())),
    };
    let mut findings = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match finding(item, limits, an) {
            Ok(f) => findings.push(f),
            Err(e) => errors.push(format!("findings[{i}]: {e}")),
        }
    }
    if findings.is_empty() && !items.is_empty() {
        return Err(AnswerError::Schema(truncate(&errors.join("; "), 300)));
    }
    // Most severe first, then most confident.
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| b.confidence.total_cmp(&a.confidence))
    });
    let mut dropped = errors.len();
    if findings.len() > limits.max_findings {
        dropped += findings.len() - limits.max_findings;
        findings.truncate(limits.max_findings);
    }
    Ok(Parsed { findings, dropped })
}

/// A bounded plain-text summary of an answer that could not be parsed, pseudonyms reversed
/// and links removed; `None` when nothing readable is left.
pub fn fallback_summary(answer: &str, limits: &FindingLimits, an: &Anonymizer) -> Option<String> {
    let s = text(answer, limits.max_fallback_chars, an);
    (!s.is_empty()).then_some(s)
}

fn extract_json(s: &str) -> Result<Value, AnswerError> {
    if let Ok(v) = serde_json::from_str::<Value>(s) {
        return Ok(v);
    }
    // Models like to wrap JSON in prose or a ```json fence: take the outermost braces.
    let start = s.find(['{', '[']);
    let end = s.rfind(['}', ']']);
    match (start, end) {
        (Some(a), Some(b)) if a < b => serde_json::from_str::<Value>(&s[a..=b])
            .map_err(|e| AnswerError::NotJson(e.to_string())),
        _ => Err(AnswerError::NotJson("no JSON object or array found".into())),
    }
}

fn finding(v: &Value, l: &FindingLimits, an: &Anonymizer) -> Result<Finding, String> {
    let obj = v.as_object().ok_or("not an object")?;
    let string = |key: &str| -> Result<&str, String> {
        match obj.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
            Some(Value::String(_)) => Err(format!("`{key}` is empty")),
            Some(_) => Err(format!("`{key}` is not a string")),
            None => Err(format!("`{key}` is missing")),
        }
    };
    let list = |key: &str| -> Result<Vec<String>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(format!("`{key}` holds a non-string item")),
                })
                .collect(),
            Some(_) => Err(format!("`{key}` is not a list of strings")),
        }
    };
    let severity = Severity::parse(string("severity")?)
        .ok_or("`severity` is not one of critical, warning, info")?;
    let confidence = obj
        .get("confidence")
        .and_then(Value::as_f64)
        .ok_or("`confidence` is missing or not a number")?;
    if !(0.0..=1.0).contains(&confidence) {
        return Err("`confidence` is outside 0..1".into());
    }
    let bound_list = |items: Vec<String>| -> Vec<String> {
        items
            .iter()
            .map(|s| text(s, l.max_item_chars, an))
            .filter(|s| !s.is_empty())
            .take(l.max_items)
            .collect()
    };
    Ok(Finding {
        severity,
        title: text(string("title")?, l.max_title_chars, an),
        summary: text(string("summary")?, l.max_text_chars, an),
        evidence: bound_list(list("evidence")?),
        affected: bound_list(list("affected")?),
        recommendation: match obj.get("recommendation") {
            Some(Value::String(s)) => text(s, l.max_text_chars, an),
            None | Some(Value::Null) => String::new(),
            Some(_) => return Err("`recommendation` is not a string".into()),
        },
        confidence,
    })
}

/// Reverses pseudonyms, removes URLs and control characters, bounds the length.
fn text(s: &str, max_chars: usize, an: &Anonymizer) -> String {
    let reversed = an.reverse(s);
    let mut cleaned = String::with_capacity(reversed.len());
    for word in reversed.split_inclusive(char::is_whitespace) {
        if looks_like_url(word.trim()) {
            cleaned.push_str("[link removed]");
            if word.ends_with(char::is_whitespace) {
                cleaned.push(' ');
            }
        } else {
            cleaned.push_str(word);
        }
    }
    let cleaned: String = cleaned
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect();
    truncate(cleaned.trim(), max_chars)
}

/// A word holding a link anywhere: `scheme://...` (also glued to other text, as in
/// `see:https://...` or `{"url":"http://..."}`), or `www.` / `mailto:` at the start of the
/// word or after punctuation.
fn looks_like_url(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    let scheme_char = |c: char| c.is_ascii_alphanumeric() || "+.-".contains(c);
    let after_boundary = |i: usize| {
        lower[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric())
    };
    lower
        .match_indices("://")
        .any(|(i, _)| lower[..i].chars().next_back().is_some_and(scheme_char))
        || ["www.", "mailto:"]
            .iter()
            .any(|p| lower.match_indices(p).any(|(i, _)| after_boundary(i)))
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::EntityKind;

    fn an() -> Anonymizer {
        let mut a = Anonymizer::new(true);
        a.name(EntityKind::Node, "gpu-a");
        a
    }

    #[test]
    fn parses_fenced_findings_reverses_and_ignores_routing() {
        let answer = r##"Here you go:
```json
{"findings":[
 {"severity":"info","title":"t2","summary":"s","confidence":0.2},
 {"severity":"Critical","title":"Port down on node-1","summary":"see https://evil.example/x now",
  "evidence":["node-1 mlx5_0/1 DOWN"],"affected":"node-1","recommendation":"reseat cable",
  "confidence":0.9,"channel":"#general","webhook":"https://hooks.example/abc"},
 {"severity":"high","title":"bad","summary":"s","confidence":0.5}
]}
```"##;
        let p = parse(answer, &FindingLimits::default(), &an()).expect("parses");
        assert_eq!(p.dropped, 1);
        assert_eq!(p.findings.len(), 2);
        let f = &p.findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.title, "Port down on gpu-a");
        assert_eq!(f.summary, "see [link removed] now");
        assert_eq!(f.affected, vec!["gpu-a"]);
        let json = serde_json::to_string(&p.findings).expect("json");
        assert!(
            !json.contains("general") && !json.contains("hooks.example"),
            "{json}"
        );
    }

    #[test]
    fn links_glued_to_other_text_are_removed() {
        let an = an();
        for (text, want) in [
            ("details:https://evil.example/x here", "[link removed] here"),
            ("x=http://a.b", "[link removed]"),
            ("{\"url\":\"ftp://c.d\"}", "[link removed]"),
            ("see:www.evil.example", "[link removed]"),
            ("(mailto:a@b.c)", "[link removed]"),
            ("a://b is no scheme", "[link removed] is no scheme"),
            ("ratio 3:1 and www-data user", "ratio 3:1 and www-data user"),
            ("awww.nothing", "awww.nothing"),
        ] {
            assert_eq!(text_of(text, &an), want, "{text}");
        }
    }

    fn text_of(s: &str, an: &Anonymizer) -> String {
        super::text(s, 1000, an)
    }

    #[test]
    fn rejects_what_is_not_findings() {
        let l = FindingLimits::default();
        assert_eq!(parse("  ", &l, &an()), Err(AnswerError::Empty));
        assert!(matches!(
            parse("all good!", &l, &an()),
            Err(AnswerError::NotJson(_))
        ));
        assert!(matches!(
            parse("{\"findings\": [", &l, &an()),
            Err(AnswerError::NotJson(_))
        ));
        assert!(matches!(
            parse("{\"x\":1}", &l, &an()),
            Err(AnswerError::Schema(_))
        ));
        assert!(matches!(
            parse(
                "[{\"severity\":\"info\",\"title\":\"t\",\"summary\":\"s\",\"confidence\":7}]",
                &l,
                &an()
            ),
            Err(AnswerError::Schema(_))
        ));
        assert_eq!(
            parse("{\"findings\":[]}", &l, &an()).map(|p| p.findings.len()),
            Ok(0)
        );
    }

    #[test]
    fn bounds_count_and_length() {
        let long = "x".repeat(5000);
        let items: Vec<String> = (0..30)
            .map(|i| format!(
                "{{\"severity\":\"warning\",\"title\":\"{long}\",\"summary\":\"s{i}\",\"evidence\":[{ev}],\"confidence\":0.5}}",
                ev = vec!["\"e\""; 50].join(",")
            ))
            .collect();
        let answer = format!("[{}]", items.join(","));
        let l = FindingLimits::default();
        let p = parse(&answer, &l, &an()).expect("parses");
        assert_eq!(p.findings.len(), l.max_findings);
        assert_eq!(p.dropped, 20);
        assert_eq!(p.findings[0].title.chars().count(), l.max_title_chars + 1);
        assert_eq!(p.findings[0].evidence.len(), l.max_items);
        let fb = fallback_summary(&long, &l, &an()).expect("text");
        assert_eq!(fb.chars().count(), l.max_fallback_chars + 1);
    }
}
