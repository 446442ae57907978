//! CEL validation rules (`x-kubernetes-validations`) for the cross-field checks of the
//! kinds' `validate()`, so that an API server that evaluates them rejects a bad object at
//! admission instead of accepting it and reporting `Accepted=False` later.
//!
//! Kubernetes evaluates these rules from 1.25 on (beta, on by default; GA in 1.29; 1.23 and
//! 1.24 know the field but evaluate it only with the `CustomResourceValidationExpressions`
//! feature gate). Older API servers do not know the field at all: Kubernetes 1.20–1.22 drop
//! it from a created CRD, but `kubectl apply` (client-side validation against the server's
//! OpenAPI) and server-side apply (`field not declared in schema`) reject the CRD. Hence
//! [`crate::crd`] writes two sets: `crds/*.yaml` with these rules and
//! `crds/kubernetes-1.20-1.22/*.yaml` without them ([`without_rules`]).
//!
//! Only `rule` and `message` are used: `messageExpression`, `reason` and `fieldPath` came
//! in 1.27/1.28, and an older server would reject the CRD for carrying them. Rules run after
//! defaulting, so fields with a schema default are always present. `validate()` stays the
//! reference (it also runs on every reconcile and on clusters without CEL); each rule here
//! says which of its checks it mirrors, and `tests` evaluates every rule with a CEL
//! interpreter on examples next to `validate()`.

use serde_json::{json, Value};

/// One rule: where it sits in the kind's schema (`spec.ping`, `spec.windows[]` for list
/// items), the CEL expression (`self` is the value at that place) and the message the API
/// server returns when it is false.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Kind the rule belongs to.
    pub kind: &'static str,
    /// Dotted schema path from the object root; `[]` steps into list items.
    pub path: &'static str,
    /// CEL expression that must hold.
    pub rule: &'static str,
    /// Message on violation (the API server prefixes it with the path).
    pub message: &'static str,
}

const fn r(
    kind: &'static str,
    path: &'static str,
    rule: &'static str,
    message: &'static str,
) -> Rule {
    Rule {
        kind,
        path,
        rule,
        message,
    }
}

/// Every rule, by kind. Messages follow `validate()`'s wording.
pub const RULES: &[Rule] = &[
    // MonitorTargetSpec::validate
    r(
        "MonitorTarget",
        "spec.interval",
        "duration(self) >= duration('1s')",
        "must be at least 1s",
    ),
    r(
        "MonitorTarget",
        "spec.ping.timeout",
        "duration(self) >= duration('10ms')",
        "must be at least 10ms",
    ),
    r(
        "MonitorTarget",
        "spec.scrape.interval",
        "duration(self) >= duration('1s')",
        "must be at least 1s",
    ),
    r(
        "MonitorTarget",
        "spec",
        "!self.ping.enabled || duration(self.ping.timeout) < duration(self.interval)",
        "ping.timeout must be shorter than interval",
    ),
    r(
        "MonitorTarget",
        "spec",
        "self.rdma.enabled || self.ping.enabled || self.host.enabled",
        "enable at least one collector (rdma, ping or host)",
    ),
    r(
        "MonitorTarget",
        "spec.rdma.sysfsRoot",
        "!self.matches('(^|/)[.][.](/|$)')",
        "must not contain '..'",
    ),
    r(
        "MonitorTarget",
        "spec.thresholds.cpuUsagePercent",
        "self.warning <= self.critical && self.critical <= 100.0",
        "warning must not exceed critical, and both must be between 0 and 100",
    ),
    r(
        "MonitorTarget",
        "spec.thresholds.memoryUsedPercent",
        "self.warning <= self.critical && self.critical <= 100.0",
        "warning must not exceed critical, and both must be between 0 and 100",
    ),
    r(
        "MonitorTarget",
        "spec.thresholds.lossPercent",
        "self.warning <= self.critical && self.critical <= 100.0",
        "warning must not exceed critical, and both must be between 0 and 100",
    ),
    r(
        "MonitorTarget",
        "spec.thresholds.diskFreePercent",
        "self.warning >= self.critical && self.warning <= 100.0",
        "warning must not be below critical (lower free space is worse), and both must be between 0 and 100",
    ),
    r(
        "MonitorTarget",
        "spec.thresholds.rttP99Seconds",
        "self.warning <= self.critical",
        "warning must not exceed critical",
    ),
    r(
        "MonitorTarget",
        "spec.thresholds.rdmaErrorsPerMinute",
        "self.warning <= self.critical",
        "warning must not exceed critical",
    ),
    r(
        "MonitorTarget",
        "spec.thresholds.tlsCertificateExpiryDays",
        "self.warning >= self.critical",
        "warning must not be below critical (fewer days left is worse)",
    ),
    r(
        "MonitorTarget",
        "spec.endpoints[]",
        "has(self.http) ? !has(self.tcp) && !has(self.dns) : has(self.tcp) != has(self.dns)",
        "set exactly one of http, tcp, dns",
    ),
    r(
        "MonitorTarget",
        "spec.endpoints[]",
        "duration(self.slow) < duration(self.timeout) && duration(self.timeout) <= duration('60s')",
        "slow must be shorter than timeout, and timeout at most 60s",
    ),
    r(
        "MonitorTarget",
        "spec.endpoints[].interval",
        "duration(self) >= duration('1s')",
        "must be at least 1s",
    ),
    // AlertRuleSpec::validate
    r(
        "AlertRule",
        "spec.repeatInterval",
        "duration(self) >= duration('60s')",
        "must be at least 60s",
    ),
    r(
        "AlertRule",
        "spec.maintenanceWindows[].duration",
        "duration(self) >= duration('60s')",
        "must be at least 60s",
    ),
    r(
        "AlertRule",
        "spec.flapDamping.window",
        "duration(self) >= duration('60s')",
        "must be at least 60s",
    ),
    // AIAnalysisSpec::validate
    r(
        "AIAnalysis",
        "spec.provider",
        "self.type != 'bedrock' || has(self.region) || has(self.endpoint)",
        "region is required for bedrock (or set endpoint)",
    ),
    r(
        "AIAnalysis",
        "spec.provider",
        "self.type != 'bedrock' || !has(self.credentialsSecretRef)",
        "credentialsSecretRef is not used by bedrock: use awsCredentialsSecretRef",
    ),
    r(
        "AIAnalysis",
        "spec.provider",
        "self.type != 'ollama' || has(self.endpoint)",
        "endpoint is required for ollama, e.g. http://ollama.ollama.svc:11434",
    ),
    r(
        "AIAnalysis",
        "spec.provider",
        "self.type == 'bedrock' || !has(self.awsCredentialsSecretRef)",
        "awsCredentialsSecretRef is only used by bedrock: use credentialsSecretRef",
    ),
    r(
        "AIAnalysis",
        "spec.provider.timeout",
        "duration(self) >= duration('1s')",
        "must be at least 1s",
    ),
    r(
        "AIAnalysis",
        "spec.budget",
        "!has(self.dailyUsd) || has(self.prices)",
        "prices are required with dailyUsd (cost is computed from token prices)",
    ),
    r(
        "AIAnalysis",
        "spec.window",
        "duration(self) >= duration('60s')",
        "must be at least 60s",
    ),
];

/// The rules of `kind`.
pub fn rules_of(kind: &str) -> impl Iterator<Item = &'static Rule> + '_ {
    RULES.iter().filter(move |r| r.kind == kind)
}

/// The subschema at `path` of a kind's root schema, if there is one.
pub fn subschema_mut<'a>(root: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut node = root;
    for step in path.split('.') {
        let (name, items) = match step.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (step, false),
        };
        node = node.get_mut("properties")?.get_mut(name)?;
        if items {
            node = node.get_mut("items")?;
        }
    }
    Some(node)
}

/// Adds the rules of `kind` to its root schema. Returns the paths of rules whose place does
/// not exist in the schema (a rule left behind by a renamed field; the tests require none).
pub fn add_rules(kind: &str, root: &mut Value) -> Vec<&'static str> {
    let mut missing = Vec::new();
    for rule in rules_of(kind) {
        match subschema_mut(root, rule.path) {
            Some(Value::Object(node)) => {
                let list = node
                    .entry("x-kubernetes-validations")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = list {
                    items.push(json!({"rule": rule.rule, "message": rule.message}));
                }
            }
            _ => missing.push(rule.path),
        }
    }
    missing
}

/// Removes every `x-kubernetes-validations` from a schema (the variant for Kubernetes
/// 1.20–1.22, which do not know the field).
pub fn without_rules(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("x-kubernetes-validations");
            map.values_mut().for_each(without_rules);
        }
        Value::Array(items) => items.iter_mut().for_each(without_rules),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AIAnalysisSpec, AlertRuleSpec, MonitorTargetSpec};

    /// Evaluates `rule` with `self` bound to `value` (a JSON value as the API server sees it
    /// after defaulting).
    fn holds(rule: &str, value: &Value) -> bool {
        let program = cel::Program::compile(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
        let mut ctx = cel::Context::default();
        ctx.add_variable("self", value.clone())
            .unwrap_or_else(|e| panic!("{rule}: {e}"));
        match program.execute(&ctx) {
            Ok(cel::Value::Bool(b)) => b,
            other => panic!("{rule} on {value}: {other:?}"),
        }
    }

    /// Values at `path` of `object` (several for paths through lists).
    fn values_at<'a>(object: &'a Value, path: &str) -> Vec<&'a Value> {
        let mut nodes = vec![object];
        for step in path.split('.') {
            let (name, items) = match step.strip_suffix("[]") {
                Some(n) => (n, true),
                None => (step, false),
            };
            nodes = nodes
                .into_iter()
                .filter_map(|n| n.get(name))
                .flat_map(|n| match (items, n) {
                    (true, Value::Array(xs)) => xs.iter().collect::<Vec<_>>(),
                    (true, _) => Vec::new(),
                    (false, n) => vec![n],
                })
                .collect();
        }
        nodes
    }

    /// `(path, message)` of every rule of `kind` that fails on `object`.
    fn violations(kind: &str, object: &Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for rule in rules_of(kind) {
            for v in values_at(object, rule.path) {
                if !holds(rule.rule, v) {
                    out.push((rule.path.to_string(), rule.message.to_string()));
                }
            }
        }
        out
    }

    /// Runs `validate()` (through `check`) and the rules on each `(yaml, expect)` example:
    /// `expect` is `None` for a valid spec, else the path of the rule that must fail and a
    /// fragment of `validate()`'s message for the same problem. The typed spec is serialized
    /// back, so every default is filled in as the API server's defaulting would.
    fn compare<S>(kind: &str, cases: &[(&str, Option<(&str, &str)>)], check: fn(&S) -> String)
    where
        S: serde::de::DeserializeOwned + serde::Serialize,
    {
        for (yaml, expect) in cases {
            let spec: S = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            let object = json!({ "spec": serde_json::to_value(&spec).expect("json") });
            let got = violations(kind, &object);
            let validated = check(&spec);
            match expect {
                None => {
                    assert!(got.is_empty(), "{kind} {yaml}: rules failed: {got:?}");
                    assert!(
                        validated.is_empty(),
                        "{kind} {yaml}: validate(): {validated}"
                    );
                }
                Some((path, fragment)) => {
                    assert!(
                        got.iter().any(|(p, _)| p == path),
                        "{kind} {yaml}: no rule at {path} failed (failed: {got:?})"
                    );
                    assert!(
                        got.len() == 1,
                        "{kind} {yaml}: more rules failed than the one at {path}: {got:?}"
                    );
                    assert!(
                        validated.contains(fragment),
                        "{kind} {yaml}: validate() says {validated:?}, expected {fragment:?}"
                    );
                }
            }
        }
    }

    fn errors<E: std::fmt::Display>(r: Result<(), E>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn every_rule_compiles_and_has_a_place() {
        for (_, crd) in crate::crd::all() {
            let kind = crd.spec.names.kind.clone();
            let schema = crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("schema");
            let mut root = serde_json::to_value(schema).expect("json");
            let mut copy = root.clone();
            without_rules(&mut copy);
            assert!(
                add_rules(&kind, &mut copy).is_empty(),
                "{kind}: rules without a place"
            );
            let n = rules_of(&kind).count();
            assert!(n > 0, "{kind} has no rules");
            let text = root.to_string();
            assert_eq!(
                text.matches("x-kubernetes-validations").count(),
                rules_of(&kind)
                    .map(|r| r.path)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len(),
                "{kind}: every place carries its rules"
            );
            without_rules(&mut root);
            assert!(!root.to_string().contains("x-kubernetes-validations"));
            for rule in rules_of(&kind) {
                cel::Program::compile(rule.rule)
                    .unwrap_or_else(|e| panic!("{kind} {}: {e}", rule.rule));
                for banned in ["messageExpression", "fieldPath", "reason", "oldSelf"] {
                    assert!(!rule.rule.contains(banned), "{}", rule.rule);
                }
            }
        }
    }

    #[test]
    fn monitor_target_rules_agree_with_validate() {
        compare::<MonitorTargetSpec>(
            "MonitorTarget",
            &[
                ("{}", None),
                ("interval: 1s\nping: {timeout: 999ms}", None),
                ("interval: 1s\nping: {enabled: false, timeout: 5s}", None),
                ("rdma: {sysfsRoot: /srv/..data/sys}", None),
                (
                    "thresholds: {diskFreePercent: {warning: 30, critical: 5}}",
                    None,
                ),
                (
                    "interval: 500ms\nping: {timeout: 100ms}",
                    Some(("spec.interval", "must be at least 1s")),
                ),
                (
                    "ping: {timeout: 1ms}",
                    Some(("spec.ping.timeout", "must be at least 10ms")),
                ),
                (
                    "scrape: {interval: 0s}",
                    Some(("spec.scrape.interval", "must be at least 1s")),
                ),
                (
                    "interval: 2s\nping: {timeout: 2s}",
                    Some(("spec", "must be shorter than spec.interval")),
                ),
                (
                    "interval: 1m\nping: {timeout: 1m30s}",
                    Some(("spec", "must be shorter than spec.interval")),
                ),
                (
                    "rdma: {enabled: false}\nping: {enabled: false}\nhost: {enabled: false}",
                    Some(("spec", "enable at least one collector")),
                ),
                (
                    "rdma: {sysfsRoot: /srv/../sys}",
                    Some(("spec.rdma.sysfsRoot", "must not contain '..'")),
                ),
                (
                    "rdma: {sysfsRoot: /host/..}",
                    Some(("spec.rdma.sysfsRoot", "must not contain '..'")),
                ),
                (
                    "thresholds: {cpuUsagePercent: {warning: 95, critical: 90}}",
                    Some((
                        "spec.thresholds.cpuUsagePercent",
                        "warning (95) must not exceed critical (90)",
                    )),
                ),
                (
                    "thresholds: {lossPercent: {warning: 1, critical: 150}}",
                    Some((
                        "spec.thresholds.lossPercent",
                        "must be between 0 and 100, got 150",
                    )),
                ),
                (
                    "thresholds: {memoryUsedPercent: {warning: 80, critical: 70}}",
                    Some((
                        "spec.thresholds.memoryUsedPercent",
                        "must not exceed critical",
                    )),
                ),
                (
                    "thresholds: {diskFreePercent: {warning: 5, critical: 10}}",
                    Some((
                        "spec.thresholds.diskFreePercent",
                        "warning (5) must not be below critical (10)",
                    )),
                ),
                (
                    "thresholds: {diskFreePercent: {warning: 120, critical: 10}}",
                    Some((
                        "spec.thresholds.diskFreePercent",
                        "must be between 0 and 100, got 120",
                    )),
                ),
                (
                    "thresholds: {rttP99Seconds: {warning: 0.5, critical: 0.1}}",
                    Some(("spec.thresholds.rttP99Seconds", "must not exceed critical")),
                ),
                (
                    "thresholds: {rdmaErrorsPerMinute: {warning: 11, critical: 10}}",
                    Some((
                        "spec.thresholds.rdmaErrorsPerMinute",
                        "must not exceed critical",
                    )),
                ),
                (
                    "thresholds: {tlsCertificateExpiryDays: {warning: 2, critical: 7}}",
                    Some((
                        "spec.thresholds.tlsCertificateExpiryDays",
                        "warning (2) must not be below critical (7)",
                    )),
                ),
                (
                    "endpoints: [{name: a, http: {url: 'https://a/'}}, {name: b, tcp: {host: b, port: 5432}, interval: 1m}, {name: c, dns: {name: c.}}]",
                    None,
                ),
                (
                    "endpoints: [{name: a, http: {url: 'https://a/'}, tcp: {host: a, port: 1}}]",
                    Some(("spec.endpoints[]", "set exactly one of http, tcp, dns")),
                ),
                (
                    "endpoints: [{name: a}]",
                    Some(("spec.endpoints[]", "set exactly one of http, tcp, dns")),
                ),
                (
                    "endpoints: [{name: a, tcp: {host: a, port: 1}, slow: 5s, timeout: 5s}]",
                    Some(("spec.endpoints[]", "must be shorter than timeout (5s >= 5s)")),
                ),
                (
                    "endpoints: [{name: a, tcp: {host: a, port: 1}, timeout: 2m}]",
                    Some(("spec.endpoints[]", "must be at most 60s, got 2m")),
                ),
                (
                    "endpoints: [{name: a, tcp: {host: a, port: 1}, interval: 500ms}]",
                    Some(("spec.endpoints[].interval", "must be at least 1s, got 500ms")),
                ),
            ],
            |s| errors(s.validate()),
        );
    }

    #[test]
    fn alert_rule_rules_agree_with_validate() {
        let base =
            "targetRef: {name: fabric}\nmetric: ping_loss_percent\noperator: gt\nthreshold: 5\n";
        let cases = [
            ("", None),
            ("repeatInterval: 1m\nflapDamping: {window: 60s}", None),
            (
                "maintenanceWindows: [{schedule: '0 2 * * *', duration: 1h}]",
                None,
            ),
            (
                "repeatInterval: 59s",
                Some(("spec.repeatInterval", "must be at least 60s")),
            ),
            (
                "maintenanceWindows: [{schedule: '0 2 * * *', duration: 1h}, {schedule: '0 3 * * *', duration: 30s}]",
                Some((
                    "spec.maintenanceWindows[].duration",
                    "spec.maintenanceWindows[1].duration: must be at least 60s",
                )),
            ),
            (
                "flapDamping: {window: 10s}",
                Some(("spec.flapDamping.window", "must be at least 60s")),
            ),
        ];
        let cases: Vec<(String, Option<(&str, &str)>)> = cases
            .into_iter()
            .map(|(extra, e)| (format!("{base}{extra}"), e))
            .collect();
        let cases: Vec<(&str, Option<(&str, &str)>)> =
            cases.iter().map(|(y, e)| (y.as_str(), *e)).collect();
        compare::<AlertRuleSpec>("AlertRule", &cases, |s| errors(s.validate()));
    }

    #[test]
    fn ai_analysis_rules_agree_with_validate() {
        let base = "targetRefs: [{kind: MonitorTarget, name: fabric}]\n";
        let cases = [
            ("provider: {type: openai, model: gpt-4o-mini}", None),
            (
                "provider: {type: bedrock, model: m, region: eu-west-1, awsCredentialsSecretRef: {name: aws}}",
                None,
            ),
            (
                "provider: {type: ollama, model: m, endpoint: 'http://ollama:11434'}",
                None,
            ),
            (
                "provider: {type: openai, model: m}\nbudget: {dailyUsd: 5, prices: {inputPer1kTokens: 0.001, outputPer1kTokens: 0.002}}",
                None,
            ),
            (
                "provider: {type: bedrock, model: m}",
                Some(("spec.provider", "required for bedrock (or set endpoint)")),
            ),
            (
                "provider: {type: bedrock, model: m, region: r, credentialsSecretRef: {name: k, key: api-key}}",
                Some(("spec.provider", "not used by bedrock")),
            ),
            (
                "provider: {type: ollama, model: m}",
                Some(("spec.provider", "required for ollama")),
            ),
            (
                "provider: {type: openai, model: m, awsCredentialsSecretRef: {name: aws}}",
                Some(("spec.provider", "only used by bedrock")),
            ),
            (
                "provider: {type: openai, model: m, timeout: 500ms}",
                Some(("spec.provider.timeout", "must be at least 1s")),
            ),
            (
                "provider: {type: openai, model: m}\nbudget: {dailyUsd: 5}",
                Some(("spec.budget", "required with dailyUsd")),
            ),
            (
                "provider: {type: openai, model: m}\nwindow: 30s",
                Some(("spec.window", "must be at least 60s")),
            ),
        ];
        let cases: Vec<(String, Option<(&str, &str)>)> = cases
            .into_iter()
            .map(|(extra, e)| (format!("{base}{extra}"), e))
            .collect();
        let cases: Vec<(&str, Option<(&str, &str)>)> =
            cases.iter().map(|(y, e)| (y.as_str(), *e)).collect();
        compare::<AIAnalysisSpec>("AIAnalysis", &cases, |s| errors(s.validate()));
    }
}
