//! Property tests of the LLM answer parser: the model's text is untrusted input (a prompt
//! injection in a node label or a log line can steer it). Whatever it answers, parsing must
//! not panic, and what reaches `status.findings` must stay within `FindingLimits` with links
//! removed and pseudonyms reversed.
//!
//! Case counts: 64 by default (an answer holds up to 14 findings of generated text, ~0.15 s
//! a case); `PROPTEST_CASES` for a longer run.

use fabricwatch_ai::anonymize::{Anonymizer, EntityKind};
use fabricwatch_ai::findings::{fallback_summary, parse, FindingLimits};
use proptest::prelude::*;
use serde_json::{json, Value};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig::with_cases(cases)
}

/// An anonymizer that knows a few long real names, so reversal makes text longer.
fn anonymizer() -> (Anonymizer, Vec<String>) {
    let mut an = Anonymizer::new(true);
    let long = "gpu-node-0123456789-abcdefghij-klmnopqrst-uvwxyz.rack42.zone-a.example.com";
    let pseudonyms = vec![
        an.name(EntityKind::Node, long),
        an.name(EntityKind::Node, "n2"),
        an.name(EntityKind::Pod, "trainer-7f9c6d5b8-xk2lp"),
        an.name(EntityKind::Ip, "10.1.2.3"),
    ];
    (an, pseudonyms)
}

/// Text a model might write: prose, pseudonyms, links in many spellings, control characters,
/// very long runs.
fn text(pseudonyms: Vec<String>) -> impl Strategy<Value = String> + Clone {
    let word = prop_oneof![
        "[a-zA-Z0-9.,:;()'\"-]{1,12}",
        proptest::sample::select(pseudonyms),
        "(https?|ftp|javascript|HTTP|git\\+ssh)://[a-z0-9./?=&%-]{0,30}",
        "(www\\.[a-z]{1,8}\\.com|mailto:x@y\\.z|\\(https://a\\.b\\)|<http://c\\.d>)",
        "[a-zA-Z]{1,8}[:=>(]https?://[a-z0-9./]{1,20}",
        "[\u{0}-\u{1f}\u{7f}\u{200b}\u{202e}]{1,3}",
        "\\PC{1,8}",
    ];
    prop_oneof![
        8 => proptest::collection::vec(word, 0..16).prop_map(|w| w.join(" ")),
        1 => (0usize..5000).prop_map(|n| "é".repeat(n)),
    ]
}

fn finding(pseudonyms: Vec<String>) -> impl Strategy<Value = Value> + Clone {
    let t = || text(pseudonyms.clone());
    let items = proptest::collection::vec(t(), 0..12);
    (
        prop_oneof![
            Just(json!("critical")),
            Just(json!("WARNING")),
            Just(json!(" info ")),
            Just(json!("urgent")),
            Just(json!(3))
        ],
        t(),
        t(),
        items.clone(),
        items,
        prop_oneof![t().prop_map(Value::from), Just(Value::Null), Just(json!(7))],
        prop_oneof![
            (0.0f64..=1.0).prop_map(Value::from),
            Just(json!(1.5)),
            Just(json!(-0.1)),
            Just(json!("high"))
        ],
        proptest::option::of(t()),
    )
        .prop_map(
            |(severity, title, summary, evidence, affected, recommendation, confidence, extra)| {
                let mut f = json!({
                    "severity": severity, "title": title, "summary": summary,
                    "evidence": evidence, "affected": affected,
                    "recommendation": recommendation, "confidence": confidence,
                });
                if let Some(e) = extra {
                    // Fields the schema does not know, e.g. routing the model made up.
                    f["webhook"] = json!(e);
                }
                f
            },
        )
}

fn answer() -> impl Strategy<Value = String> {
    let (_, pseudonyms) = anonymizer();
    let findings = proptest::collection::vec(finding(pseudonyms.clone()), 0..14);
    prop_oneof![
        3 => findings.clone().prop_map(|f| json!({"findings": f}).to_string()),
        1 => findings.clone().prop_map(|f| Value::Array(f).to_string()),
        1 => (text(pseudonyms.clone()), findings.clone(), text(pseudonyms.clone())).prop_map(
            |(pre, f, post)| format!("{pre}\n```json\n{}\n```\n{post}", json!({"findings": f}))
        ),
        1 => findings.prop_map(|f| {
            // Cut short, as when the model hits its output token limit.
            let s = json!({"findings": f}).to_string();
            let cut = s.char_indices().nth(s.chars().count() * 2 / 3).map_or(s.len(), |(i, _)| i);
            s[..cut].to_string()
        }),
        1 => text(pseudonyms),
        1 => (0usize..300).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        1 => "\\PC{0,300}",
    ]
}

/// A link as the generator writes them: a known scheme anywhere in a word, or a word that
/// starts (after an opening bracket or quote) with `www.` or `mailto:`.
fn has_link(s: &str) -> bool {
    s.split_whitespace().any(|word| {
        let lower = word.to_ascii_lowercase();
        let start = lower.trim_start_matches(['(', '[', '<', '"', '\'']);
        ["http://", "https://", "ftp://", "javascript://"]
            .iter()
            .any(|l| lower.contains(l))
            || start.starts_with("www.")
            || start.starts_with("mailto:")
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_answer_parses_or_fails_cleanly_within_limits(answer in answer()) {
        let (an, _) = anonymizer();
        let l = FindingLimits::default();
        match parse(&answer, &l, &an) {
            Ok(parsed) => {
                prop_assert!(parsed.findings.len() <= l.max_findings);
                for f in &parsed.findings {
                    // `…` marks a cut: one character beyond the limit.
                    prop_assert!(f.title.chars().count() <= l.max_title_chars + 1);
                    prop_assert!(f.summary.chars().count() <= l.max_text_chars + 1);
                    prop_assert!(f.recommendation.chars().count() <= l.max_text_chars + 1);
                    prop_assert!(f.evidence.len() <= l.max_items && f.affected.len() <= l.max_items);
                    for item in f.evidence.iter().chain(&f.affected) {
                        prop_assert!(item.chars().count() <= l.max_item_chars + 1);
                    }
                    prop_assert!((0.0..=1.0).contains(&f.confidence));
                    for s in [&f.title, &f.summary, &f.recommendation].into_iter().chain(&f.evidence).chain(&f.affected) {
                        prop_assert!(!has_link(s), "a link survived: {s:?}");
                        prop_assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "control character in {s:?}");
                    }
                }
                let bytes = serde_json::to_vec(&parsed.findings).expect("serialize").len();
                prop_assert!(bytes <= 64 * 1024, "findings of {bytes} bytes");
            }
            Err(e) => {
                prop_assert!(e.to_string().len() <= 1024, "error of {} bytes", e.to_string().len());
            }
        }
        if let Some(s) = fallback_summary(&answer, &l, &an) {
            prop_assert!(s.chars().count() <= l.max_fallback_chars + 1);
            prop_assert!(!has_link(&s), "a link survived: {s:?}");
        }
    }
}
