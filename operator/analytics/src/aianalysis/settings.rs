//! `AIAnalysis.spec` → [`AnalysisSettings`], and which Secret keys the provider needs. Pure:
//! the runner reads the keys named by [`credential_keys`] and passes the values back in.

use fabricwatch_ai::{
    AnalysisSettings, Budget, ModelPrice, Price, ProviderConfig, ProviderCredentials, ProviderKind,
    SecretString,
};
use fabricwatch_crds::ai_analysis::{AIAnalysisSpec, ProviderType};

/// Key of the access key id in a Bedrock credentials Secret.
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// Key of the secret access key in a Bedrock credentials Secret.
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// Key of the optional session token in a Bedrock credentials Secret.
pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";

/// Which Secret and keys the provider's credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialKeys {
    /// No Secret: Bedrock's default AWS chain (IRSA, env, profile, IMDS), or no API key.
    None,
    /// Bedrock keys: [`AWS_ACCESS_KEY_ID`], [`AWS_SECRET_ACCESS_KEY`], optional
    /// [`AWS_SESSION_TOKEN`] of Secret `secret`.
    Aws {
        /// Secret name (same namespace as the AIAnalysis).
        secret: String,
    },
    /// An API key under `key` of Secret `secret`.
    ApiKey {
        /// Secret name.
        secret: String,
        /// Key in the Secret's data.
        key: String,
    },
}

/// The Secret keys the provider of `spec` needs.
pub fn credential_keys(spec: &AIAnalysisSpec) -> CredentialKeys {
    let p = &spec.provider;
    match p.type_ {
        ProviderType::Bedrock => match &p.aws_credentials_secret_ref {
            Some(r) => CredentialKeys::Aws {
                secret: r.name.clone(),
            },
            None => CredentialKeys::None,
        },
        ProviderType::Openai | ProviderType::Ollama => match &p.credentials_secret_ref {
            Some(r) => CredentialKeys::ApiKey {
                secret: r.name.clone(),
                key: r.key.clone(),
            },
            None => CredentialKeys::None,
        },
    }
}

/// Builds the analyzer settings of `spec` with already-resolved `credentials`.
///
/// Budget: no `spec.budget` means the analyzer's defaults (1 USD per UTC day, 8000 tokens per
/// run); with a `spec.budget`, an unset `dailyUsd` means no daily limit and an unset
/// `maxTokensPerRun` 8000. `spec.budget.prices` applies to the spec's model. An Ollama
/// endpoint gets `/v1` appended when missing (its OpenAI-compatible API).
///
/// # Errors
/// A message naming the field when `spec.provider.timeout` does not parse.
pub fn settings(
    spec: &AIAnalysisSpec,
    credentials: ProviderCredentials,
) -> Result<AnalysisSettings, String> {
    let p = &spec.provider;
    let kind = match p.type_ {
        ProviderType::Bedrock => ProviderKind::Bedrock,
        ProviderType::Openai => ProviderKind::Openai,
        ProviderType::Ollama => ProviderKind::Ollama,
    };
    let mut provider = ProviderConfig::new(kind, p.model.clone());
    provider.region = p.region.clone();
    provider.endpoint = p.endpoint.as_ref().map(|e| {
        let e = e.trim_end_matches('/');
        if kind == ProviderKind::Ollama && !e.ends_with("/v1") {
            format!("{e}/v1")
        } else {
            e.to_string()
        }
    });
    provider.credentials = credentials;
    provider.max_output_tokens = p.max_tokens;
    provider.timeout = p
        .timeout
        .to_std()
        .map_err(|e| format!("spec.provider.timeout: {e}"))?;
    let defaults = Budget::default();
    let budget = match &spec.budget {
        None => defaults,
        Some(b) => Budget {
            daily_usd: b.daily_usd,
            max_tokens_per_run: b
                .max_tokens_per_run
                .map_or(defaults.max_tokens_per_run, u64::from),
            prices: b
                .prices
                .iter()
                .map(|pr| ModelPrice {
                    model: p.model.clone(),
                    price: Price {
                        input_per_1k: pr.input_per1k_tokens,
                        output_per_1k: pr.output_per1k_tokens,
                    },
                })
                .collect(),
        },
    };
    Ok(AnalysisSettings {
        provider,
        budget,
        anonymize: spec.anonymize,
    })
}

/// Credentials from the values of a Bedrock Secret (`data` decoded); `None` when a required
/// key is missing or empty. Values are wrapped at once so they print as `[redacted]`.
pub fn aws_credentials(get: impl Fn(&str) -> Option<String>) -> Option<ProviderCredentials> {
    let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    Some(ProviderCredentials::AwsKeys {
        access_key_id: SecretString::new(non_empty(AWS_ACCESS_KEY_ID)?.trim()),
        secret_access_key: SecretString::new(non_empty(AWS_SECRET_ACCESS_KEY)?.trim()),
        session_token: non_empty(AWS_SESSION_TOKEN).map(|v| SecretString::new(v.trim())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(y: &str) -> AIAnalysisSpec {
        serde_yaml::from_str(&format!(
            "targetRefs: [{{kind: MonitorTarget, name: fabric}}]\n{y}"
        ))
        .expect("spec")
    }

    #[test]
    fn bedrock_with_and_without_secret() {
        let s = spec("provider: {type: bedrock, model: anthropic.claude-3-5-haiku-20241022-v1:0, region: us-east-1, endpoint: 'http://127.0.0.1:9/', timeout: 20s, maxTokens: 512}");
        assert_eq!(credential_keys(&s), CredentialKeys::None);
        let st = settings(&s, ProviderCredentials::Default).expect("settings");
        assert_eq!(st.provider.kind, ProviderKind::Bedrock);
        assert_eq!(st.provider.region.as_deref(), Some("us-east-1"));
        assert_eq!(st.provider.endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(st.provider.timeout, std::time::Duration::from_secs(20));
        assert_eq!(st.provider.max_output_tokens, 512);
        assert_eq!(st.budget, Budget::default());
        assert!(st.anonymize);
        let s = spec(
            "provider: {type: bedrock, model: m, region: r, awsCredentialsSecretRef: {name: aws}}",
        );
        assert_eq!(
            credential_keys(&s),
            CredentialKeys::Aws {
                secret: "aws".into()
            }
        );
    }

    #[test]
    fn openai_and_ollama() {
        let s = spec("provider: {type: openai, model: gpt-4o-mini, credentialsSecretRef: {name: k, key: apiKey}}\nanonymize: false\nbudget: {maxTokensPerRun: 4000, dailyUsd: 2, prices: {inputPer1kTokens: 0.1, outputPer1kTokens: 0.2}}");
        assert_eq!(
            credential_keys(&s),
            CredentialKeys::ApiKey {
                secret: "k".into(),
                key: "apiKey".into()
            }
        );
        let st = settings(&s, ProviderCredentials::ApiKey(SecretString::new("sk"))).expect("ok");
        assert!(!st.anonymize);
        assert_eq!(st.budget.daily_usd, Some(2.0));
        assert_eq!(st.budget.max_tokens_per_run, 4000);
        assert_eq!(st.budget.prices[0].model, "gpt-4o-mini");
        assert_eq!(st.budget.prices[0].price.output_per_1k, 0.2);
        let s = spec("provider: {type: ollama, model: llama3.1, endpoint: 'http://ollama:11434'}\nbudget: {}");
        let st = settings(&s, ProviderCredentials::Default).expect("ok");
        assert_eq!(
            st.provider.endpoint.as_deref(),
            Some("http://ollama:11434/v1")
        );
        assert_eq!(
            st.budget.daily_usd, None,
            "a budget without dailyUsd has no daily limit"
        );
    }

    #[test]
    fn aws_keys_need_id_and_secret() {
        let full = |k: &str| match k {
            AWS_ACCESS_KEY_ID => Some("AKIA".to_string()),
            AWS_SECRET_ACCESS_KEY => Some("s3cr3t\n".to_string()),
            _ => None,
        };
        let c = aws_credentials(full).expect("creds");
        assert_eq!(c.secrets(), vec!["AKIA", "s3cr3t"]);
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert_eq!(
            aws_credentials(|k| (k == AWS_ACCESS_KEY_ID).then(|| "A".into())),
            None
        );
    }
}
