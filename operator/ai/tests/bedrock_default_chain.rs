//! Bedrock with `ProviderCredentials::Default`: region and keys come from `aws-config`'s
//! default chain (here its environment provider). Its own test binary, because it sets
//! process environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use fabricwatch_ai::provider::{
    complete, AnyProvider, ChatRequest, ProviderConfig, ProviderKind, RetryPolicy,
};
use fabricwatch_ai::testing::StandIn;

#[tokio::test]
async fn default_chain_reads_region_and_keys_from_the_environment() {
    // Only this test runs in this process, so changing the environment is race-free.
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDFROMENVCHAIN");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "env-chain-secret");
    std::env::set_var("AWS_REGION", "ap-southeast-2");
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/fabricwatch-test");
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/fabricwatch-test",
    );
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");

    let server = StandIn::start(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .expect("stand-in");
    let mut cfg = ProviderConfig::new(ProviderKind::Bedrock, "amazon.nova-micro-v1:0");
    cfg.endpoint = Some(server.url());
    cfg.timeout = Duration::from_secs(10);
    let provider = AnyProvider::build(&cfg).await.expect("client");
    let req = ChatRequest {
        system: "s".into(),
        user: "u".into(),
        max_output_tokens: 64,
    };
    complete(
        &provider,
        &req,
        &RetryPolicy::default(),
        cfg.timeout,
        cfg.effective_attempt_timeout(),
        &[],
    )
    .await
    .expect("answer");
    let r = &server.requests()[0];
    let auth = r.header("authorization").expect("signed");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDFROMENVCHAIN/")
            && auth.contains("/ap-southeast-2/bedrock/aws4_request"),
        "{auth}"
    );
    assert_eq!(r.model, "amazon.nova-micro-v1:0");
}
