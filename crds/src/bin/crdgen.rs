//! Writes the CRD YAML of the fabricwatch.io API into a directory (default: the crate's
//! directory, i.e. `crds/`), one file per kind, and the same CRDs without CEL rules into its
//! `kubernetes-1.20-1.22/` subdirectory (for API servers that do not know
//! `x-kubernetes-validations`). With `--check`, compares instead of writing and exits 1 when
//! a file is stale.

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
    let legacy = dir.join(fabricwatch_crds::crd::WITHOUT_CEL_DIR);
    if !check {
        if let Err(e) = std::fs::create_dir_all(&legacy) {
            eprintln!("crdgen: cannot create {}: {e}", legacy.display());
            return ExitCode::FAILURE;
        }
    }
    let sets = [
        (dir.clone(), fabricwatch_crds::crd::all()),
        (legacy, fabricwatch_crds::crd::all_without_cel()),
    ];
    for (dir, file, crd) in sets
        .into_iter()
        .flat_map(|(dir, set)| set.into_iter().map(move |(f, c)| (dir.clone(), f, c)))
    {
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
