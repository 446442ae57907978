//! `llm-standin`: serves the Bedrock Converse and OpenAI chat-completions stand-in (see
//! `fabricwatch_ai::testing`) on 127.0.0.1 for the e2e suite.
//!
//! Usage: `llm-standin [--listen 127.0.0.1:8089] [--api-key KEY] [--answer-file FILE]`.
//! Without `--answer-file` every request gets a canned valid findings answer; the file's
//! content (any text) replaces it. Replies can be scripted at runtime through
//! `POST /_standin/script`.

use std::net::SocketAddr;
use std::process::ExitCode;

use fabricwatch_ai::testing::{Reply, StandIn};

fn usage() -> ExitCode {
    eprintln!("usage: llm-standin [--listen ADDR:PORT] [--api-key KEY] [--answer-file FILE]");
    ExitCode::from(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8089));
    let mut api_key = None;
    let mut answer = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let Some(value) = args.next() else {
            return usage();
        };
        match arg.as_str() {
            "--listen" => match value.parse() {
                Ok(a) => listen = a,
                Err(e) => {
                    eprintln!("--listen {value:?}: {e}");
                    return ExitCode::from(2);
                }
            },
            "--api-key" => api_key = Some(value),
            "--answer-file" => match std::fs::read_to_string(&value) {
                Ok(text) => answer = Some(text),
                Err(e) => {
                    eprintln!("--answer-file {value:?}: {e}");
                    return ExitCode::from(2);
                }
            },
            _ => return usage(),
        }
    }
    let server = match StandIn::start(listen, api_key).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(text) = answer {
        server.set_default(Reply::Answer(text));
    }
    println!("llm-standin listening on {}", server.url());
    match tokio::signal::ctrl_c().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signal handler: {e}");
            ExitCode::FAILURE
        }
    }
}
