//! The answers the stand-in gives by itself: one read off the request's context, and a fixed
//! valid one.

use serde_json::json;

/// What the stand-in answers to a prompt with
/// [`Reply::FromContext`](super::Reply::FromContext): one finding about the first line of the
/// context's suspects section (the top suspect, see [`crate::context::SUSPECTS_TITLE`]), else
/// about the first node of the "nodes not healthy" section, else no finding. Every title
/// starts with `Stand-in answer:` so no one takes it for a diagnosis; the names are the
/// context's (pseudonyms when anonymized), so analytics maps them back like a model's.
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
