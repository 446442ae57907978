//! Writes the CRD YAML of the fabricwatch.io API into a directory (default: the crate's
//! directory, i.e. `crds/`), one file per kind. With `--check`, compares instead of writing
//! and exits 1 when a file is stale.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!(
                    "usage: crdgen [--check] [DIR]   (DIR defaults to {})",
                    dir.display()
                );
                return ExitCode::SUCCESS;
            }
            other => dir = PathBuf::from(other),
        }
    }
    let mut stale = false;
    for (file, crd) in fabricwatch_crds::crd::all() {
        let path = dir.join(file);
        let yaml = match fabricwatch_crds::crd::to_yaml(&crd) {
            Ok(y) => y,
            Err(e) => {
                eprintln!("crdgen: cannot render {file}: {e}");
                return ExitCode::FAILURE;
            }
        };
        if check {
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            if current != yaml {
                eprintln!("crdgen: {} is stale", path.display());
                stale = true;
            }
        } else if let Err(e) = std::fs::write(&path, yaml) {
            eprintln!("crdgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("wrote {}", path.display());
        }
    }
    if stale {
        eprintln!("run `cargo run -p fabricwatch-crds --bin crdgen` to regenerate");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
