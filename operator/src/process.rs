//! Start-up and exit shared by the operator's binaries.

use fabricwatch_common::telemetry::{self, LogFormat};

/// Log filter unless `RUST_LOG` says otherwise.
pub const DEFAULT_LOG_FILTER: &str = "info,kube=warn,tower=warn,hyper=warn";

/// Selects rustls' crypto provider and starts logging in `format`.
pub fn start(format: LogFormat) {
    // Both `ring` (kube) and `aws-lc-rs` (AWS SDK) are linked into `fabricwatch-operator`;
    // pick one explicitly. An error only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    telemetry::init(format, DEFAULT_LOG_FILTER);
}

/// The exit status for a workload's result; an error is logged and printed to stderr as
/// `<binary>: <error chain>`.
pub fn exit(binary: &str, result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("{binary}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
