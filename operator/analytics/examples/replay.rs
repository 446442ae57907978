//! `analytics replay` without the operator binary (the same code): for quick local runs.
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: fabricwatch_analytics::anomaly::replay::ReplayArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match fabricwatch_analytics::anomaly::replay::run(&cli.args, &mut out) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("replay: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
