//! Measurements recorded in `ai/BENCHMARKS.md`; ignored by default:
//! `cargo test -p fabricwatch-ai --test measure -- --ignored --nocapture --test-threads 1`.
//! With `FW_AI_DUMP_DIR` set, the prompts are written there for tokenizer cross-checks.

use std::net::SocketAddr;
use std::time::Duration;

use fabricwatch_ai::budget::{Budget, Usage};
use fabricwatch_ai::context::{self, ContextLimits};
use fabricwatch_ai::provider::{ProviderConfig, ProviderCredentials, ProviderKind, SecretString};
use fabricwatch_ai::testing::{synthetic_situation, Reply, StandIn};
use fabricwatch_ai::{AnalysisSettings, Analyzer, AnalyzerConfig};

const HAIKU: &str = "anthropic.claude-3-5-haiku-20241022-v1:0";

/// A realistic full answer: 5 findings with evidence, about 700 output tokens.
fn five_findings() -> String {
    let f = |i: usize| {
        serde_json::json!({
            "severity": if i == 0 { "critical" } else { "warning" },
            "title": format!("RDMA port mlx5_1/1 down on node-{} with symbol errors", 2 + i),
            "summary": "The port went DOWN three times in the window after a burst of symbol errors; peers lose about 18 % of probes towards the node and the training pod on it restarts with NCCL connection errors. A bad cable or transceiver is the likely cause.",
            "evidence": [
                format!("node-{} mlx5_1/1 DOWN flaps=3 symbol_error=1200", 2 + i),
                format!("peers -> node-{} loss=18% rtt_p99=4.2ms", 2 + i),
                "BackOff events with NCCL WARN connect failed"
            ],
            "affected": [format!("node-{}", 2 + i), format!("pod-{}", 1 + i)],
            "recommendation": "Drain the node, reseat or replace the cable and transceiver of mlx5_1 port 1, check the switch port counters, then uncordon.",
            "confidence": 0.8
        })
    };
    serde_json::json!({"findings": (0..5).map(f).collect::<Vec<_>>()}).to_string()
}

fn settings(server: &StandIn) -> AnalysisSettings {
    let mut cfg = ProviderConfig::new(ProviderKind::Bedrock, HAIKU);
    cfg.region = Some("us-east-1".into());
    cfg.endpoint = Some(server.url());
    cfg.credentials = ProviderCredentials::AwsKeys {
        access_key_id: SecretString::new("AKIDMEASURE"),
        secret_access_key: SecretString::new("measure-secret"),
        session_token: None,
    };
    cfg.timeout = Duration::from_secs(10);
    AnalysisSettings {
        provider: cfg,
        budget: Budget::default(),
        anonymize: true,
    }
}

#[tokio::test]
#[ignore = "measurement; see BENCHMARKS.md"]
async fn prompt_tokens_and_cost_per_run() {
    let server = StandIn::start(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .expect("stand-in");
    server.set_default(Reply::Answer(five_findings()));
    let settings = settings(&server);
    println!(
        "| nodes | full context tokens (uncut) | prompt tokens sent (estimate) | omitted lines | output tokens | cost per run (USD) | worst case at maxTokens (USD) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for nodes in [3usize, 100] {
        let s = synthetic_situation(nodes, 0.0, 0);
        let full = context::build(&s, true, u64::MAX, &ContextLimits::default());
        let mut usage = Usage::default();
        let out = Analyzer::new(AnalyzerConfig::default())
            .run(&s, &settings, &mut usage)
            .await;
        assert_eq!(out.error, None);
        let price = settings.budget.price_for(HAIKU, false).0;
        let worst = price.cost(
            out.prompt_tokens_estimate,
            u64::from(settings.provider.max_output_tokens),
        );
        println!(
            "| {nodes} | {} | {} | {} | {} | {:.5} | {:.5} |",
            full.estimated_tokens,
            out.prompt_tokens_estimate,
            out.omitted_lines,
            usage.output_tokens,
            usage.cost_usd,
            worst
        );
        assert!(out.prompt_tokens_estimate <= 8000);
        assert!(worst <= 0.01);
        if let Some(dir) = std::env::var_os("FW_AI_DUMP_DIR") {
            let prompt = server
                .requests()
                .last()
                .map(|r| r.prompt_text())
                .unwrap_or_default();
            let path = std::path::Path::new(&dir).join(format!("prompt-{nodes}.txt"));
            std::fs::write(&path, prompt).expect("dump");
            std::fs::write(
                std::path::Path::new(&dir).join("answer.txt"),
                five_findings(),
            )
            .expect("dump");
            println!("(prompt written to {})", path.display());
        }
    }
}

#[tokio::test]
#[ignore = "measurement; see BENCHMARKS.md"]
async fn alert_storm_cache_hit_rate() {
    let server = StandIn::start(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .expect("stand-in");
    let settings = settings(&server);
    let analyzer = Analyzer::new(AnalyzerConfig::default());
    let mut usage = Usage::default();
    // 200 re-evaluations (every 15 s for 50 min) of the same firing alert on a 100-node
    // target: every measured value jitters by up to ±1 %, Event counts keep growing.
    let rounds = 200u64;
    for round in 0..rounds {
        let s = synthetic_situation(100, 0.01, round);
        let out = analyzer.run(&s, &settings, &mut usage).await;
        assert_eq!(out.error, None);
    }
    let stats = analyzer.cache_stats();
    let rate = stats.hits as f64 / (stats.hits + stats.misses) as f64;
    println!(
        "alert storm: {rounds} runs, {} hits, {} misses, hit rate {:.1} %, provider requests {}, spend {:.4} USD",
        stats.hits,
        stats.misses,
        rate * 100.0,
        server.request_count(),
        usage.today_cost_usd
    );
    assert_eq!(server.request_count() as u64, stats.misses);
}
